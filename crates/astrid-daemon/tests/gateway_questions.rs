//! Capsules' questions (`astrid:elicit`) through the HTTP gateway, against a real daemon and
//! the `elicit-probe` capsule: a question is a `question` event on its principal's live feed
//! and never on another's; `POST /v1/questions/{id}` answers it (text, a choice, a credential
//! that goes to the secret store and is never echoed, or a refusal); another principal's
//! answer, or one that does not fit, changes nothing. Then the web console in a real browser
//! (headless Chromium, Playwright) answers the same four kinds with its forms.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

mod common;
mod gateway_rig;

use std::time::Duration;

use astrid_types::wire::{ControlCommand, ControlResponse};
use gateway_rig::{problem, GwRig, SseReader};
use serde_json::{json, Value};

const TEXT: &str = "elicit-probe.v1.text";
const CHOOSE: &str = "elicit-probe.v1.choose";
const SECRET: &str = "elicit-probe.v1.secret";
const TYPED_SECRET: &str = "sk-typed-over-http-4711";

/// Asks through the probe (as the operator's default principal) on a task of its own.
fn asking(gw: &GwRig, topic: &'static str, payload: &str) -> tokio::task::JoinHandle<String> {
    let (c, payload) = (gw.rig.client.clone(), payload.to_string());
    tokio::spawn(async move { common::ask(&c, topic, payload.as_bytes()).await })
}

async fn next_question(feed: &mut SseReader) -> Value {
    loop {
        let (name, ev) = tokio::time::timeout(Duration::from_secs(60), feed.next_event())
            .await
            .expect("no question arrived")
            .expect("the feed ended");
        if name == "question" {
            return ev;
        }
    }
}

async fn answer(gw: &GwRig, token: &str, id: u64, body: Value) -> reqwest::Response {
    gw.post(&format!("/v1/questions/{id}"), token, &body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capsules_question_is_answered_over_http_by_its_principal_only() {
    let gw = GwRig::start(vec![]).await;
    gw.add_principal("alice").await;
    let (_, mine) = gw.device("default").await;
    let (_, alices) = gw.device("alice").await;
    common::install(&gw.rig.client, common::Capsule::ElicitProbe).await;

    // Each feed is registered by the time its response head arrives.
    let mut theirs = SseReader::new(gw.get("/v1/events", &alices).send().await.unwrap());
    let mut feed = SseReader::new(gw.get("/v1/events", &mine).send().await.unwrap());

    // Free text: the capsule's words, escaped, under its stamped name.
    let reply = asking(&gw, TEXT, "0 Which branch? \u{1b}[2K<b>now</b>");
    let q = next_question(&mut feed).await;
    assert_eq!(q["kind"], "text", "{q}");
    assert_eq!(q["capsule"], "elicit-probe", "{q}");
    let prompt = q["prompt"].as_str().unwrap();
    assert!(prompt.starts_with("Which branch?"), "{q}");
    assert!(!prompt.contains('\u{1b}'), "escaped: {q}");
    let id = q["id"].as_u64().unwrap();
    // Alice guessing the id is delivered and ignored; so is an answer of the wrong kind.
    let r = answer(
        &gw,
        &alices,
        id,
        json!({"kind": "text", "text": "alice's branch"}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 202);
    let r = answer(&gw, &mine, id, json!({"kind": "choice", "index": 0})).await;
    assert_eq!(r.status().as_u16(), 202);
    // What no question takes is refused with a reason.
    let r = answer(
        &gw,
        &mine,
        id,
        json!({"kind": "text", "text": "two\nlines"}),
    )
    .await;
    assert!(problem(r, 422).await.contains("control character"));
    let long = "x".repeat(astrid_types::elicit::MAX_SECRET_BYTES + 1);
    let r = answer(&gw, &mine, id, json!({"kind": "text", "text": long})).await;
    assert!(problem(r, 422).await.contains("bytes"));
    let r = answer(&gw, &mine, id, json!({"kind": "shout"})).await;
    problem(r, 422).await;
    let r = answer(&gw, &mine, id, json!({"kind": "choice", "index": 10})).await;
    assert!(problem(r, 422).await.contains("more than 10 options"));
    let r = answer(&gw, &mine, id, json!({"kind": "text", "text": "release-7"})).await;
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": id, "kind": "text"})
    );
    assert_eq!(reply.await.unwrap(), "ok: release-7");

    // A choice.
    let reply = asking(&gw, CHOOSE, "0 Deploy now?|yes|no");
    let q = next_question(&mut feed).await;
    assert_eq!(q["kind"], "choice", "{q}");
    assert_eq!(q["options"], json!(["yes", "no"]), "{q}");
    let id = q["id"].as_u64().unwrap();
    let r = answer(&gw, &mine, id, json!({"kind": "choice", "index": 1})).await;
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(reply.await.unwrap(), "ok: 1");

    // A credential: to the store, never to the capsule, never echoed by the gateway.
    let reply = asking(&gw, SECRET, "0 api_key Your API key for api.example.com");
    let q = next_question(&mut feed).await;
    assert_eq!(q["kind"], "secret", "{q}");
    assert_eq!(
        q["secret"],
        json!({"name": "api_key", "origin": "https://api.example.com"}),
        "{q}"
    );
    let id = q["id"].as_u64().unwrap();
    let r = answer(
        &gw,
        &mine,
        id,
        json!({"kind": "text", "text": TYPED_SECRET}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 202);
    assert!(!r.text().await.unwrap().contains(TYPED_SECRET));
    let got = reply.await.unwrap();
    assert_eq!(got, "ok: stored");
    match common::control(
        &gw.rig.client,
        ControlCommand::SecretList {
            principal: "default".into(),
        },
    )
    .await
    {
        Ok(ControlResponse::Secrets(list)) => {
            assert!(
                list.iter()
                    .any(|s| s.capsule == "elicit-probe" && s.name == "api_key"),
                "{list:?}"
            );
        }
        other => panic!("{other:?}"),
    }

    // A refusal.
    let reply = asking(&gw, TEXT, "0 Your name?");
    let q = next_question(&mut feed).await;
    let r = answer(
        &gw,
        &mine,
        q["id"].as_u64().unwrap(),
        json!({"kind": "decline"}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(reply.await.unwrap(), "error: declined");

    // Alice's feed was never asked anything of default's.
    let leak = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            match theirs.next_event().await {
                Some((name, ev)) if name == "question" => return ev,
                Some(_) => continue,
                None => return Value::Null,
            }
        }
    })
    .await;
    assert!(
        leak.is_err(),
        "alice's feed showed default's question: {leak:?}"
    );
    // The chain holds the questions and how they ended, never what was typed.
    for e in common::chain(&gw.rig.home.home, "default") {
        assert!(!e.outcome.contains("release-7"), "{e:?}");
        assert!(!e.outcome.contains(TYPED_SECRET), "{e:?}");
        assert!(!e.resource.contains(TYPED_SECRET), "{e:?}");
    }
}

/// Asks until someone can be asked (the page's feed connects after sign-in); the reply.
async fn ask_once_heard(gw: &GwRig, topic: &'static str, payload: &str) -> String {
    for _ in 0..600 {
        let got = common::ask(&gw.rig.client, topic, payload.as_bytes()).await;
        if !got.starts_with("error: unavailable") {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the console never registered to answer questions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_answers_capsules_questions_in_the_console() {
    let browser = gateway_rig::chromium();
    let gw = GwRig::start(vec![]).await;
    let (_, token) = gw.device("default").await;
    common::install(&gw.rig.client, common::Capsule::ElicitProbe).await;

    let page = tokio::spawn(gateway_rig::run_python(
        "console_questions.py",
        vec![],
        vec![
            ("BASE_URL", gw.base.clone()),
            ("TOKEN", token),
            ("CHROMIUM", browser),
            ("SECRET", TYPED_SECRET.into()),
        ],
    ));
    // The page answers each kind as the script says: this text, the second option, the
    // secret, and a refusal of the question that asks to be refused.
    let markup = "0 Which branch? <img src=x onerror=\"window.__pwned=1\">";
    assert_eq!(ask_once_heard(&gw, TEXT, markup).await, "ok: release-7");
    let got = common::ask(&gw.rig.client, CHOOSE, b"0 Deploy now?|yes|no").await;
    assert_eq!(got, "ok: 1");
    let got = common::ask(
        &gw.rig.client,
        SECRET,
        b"0 api_key Your API key for api.example.com",
    )
    .await;
    assert_eq!(got, "ok: stored");
    let got = common::ask(&gw.rig.client, TEXT, b"0 Please decline this one").await;
    assert_eq!(got, "error: declined");

    let out = page.await.unwrap();
    let seen: Value = serde_json::from_str(out.trim()).expect("the script prints JSON");
    let prompts = seen["prompts"].to_string();
    // The capsule's markup was shown as text and nothing of it ran.
    assert!(prompts.contains("<img src=x"), "{seen}");
    assert_eq!(seen["img_elements_in_questions"], 0, "{seen}");
    assert_eq!(seen["injected_flag"], Value::Null, "{seen}");
    // The secret was typed into a password field and is nowhere on the page afterwards.
    assert_eq!(seen["secret_input_type"], "password", "{seen}");
    assert_eq!(seen["secret_on_page"], false, "{seen}");
    assert!(
        seen["secret_note"]
            .as_str()
            .unwrap()
            .contains("secret store"),
        "{seen}"
    );
    let after = seen["after"].to_string();
    assert!(after.contains("answered “release-7”"), "{seen}");
    assert!(after.contains("answered “no”"), "{seen}");
    assert!(after.contains("declined"), "{seen}");
}
