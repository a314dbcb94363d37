//! `astrid:elicit` through a real daemon: a capsule's question reaches only its principal's
//! answering connections, as the capsule's escaped words; the first fitting answer wins
//! (another principal's answer, or an option not offered, is ignored); nobody connected,
//! nobody answering and a refusal are errors for the capsule, never answers; the manifest
//! switch is required. The chain records each question and how it ended, never the answer.

mod common;

use std::time::Duration;

use astrid_audit::Decision;
use astrid_client::{Client, ElicitStream};
use astrid_types::elicit::{ElicitAnswer, ElicitKind, ElicitRequest};
use astrid_types::wire::{ControlCommand, ControlResponse};
use common::{ask, chain, control, install, new_agent, upload, Capsule, TestHome};

const TEXT: &str = "elicit-probe.v1.text";
const CHOOSE: &str = "elicit-probe.v1.choose";

async fn next_question(stream: &mut ElicitStream) -> ElicitRequest {
    tokio::time::timeout(Duration::from_secs(60), stream.next())
        .await
        .expect("no question arrived")
        .expect("the question stream ended")
}

/// Asks through the probe on a task of its own; the reply when it comes.
fn asking(c: &Client, topic: &'static str, payload: &str) -> tokio::task::JoinHandle<String> {
    let (c, payload) = (c.clone(), payload.to_string());
    tokio::spawn(async move { ask(&c, topic, payload.as_bytes()).await })
}

/// The `elicit.*` entries of `p`'s chain, as `(action, decision, outcome)`.
fn elicit_entries(home: &TestHome, p: &str) -> Vec<(String, Decision, String)> {
    common::actions(&home.home, p, "elicit.")
        .into_iter()
        .map(|e| (e.action, e.decision, e.outcome))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_answers_and_the_answer_stays_out_of_the_chain() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::ElicitProbe).await;

    // Nobody answers questions yet: the capsule hears so at once.
    let got = ask(&c, TEXT, b"0 Which branch?").await;
    assert!(
        got.starts_with("error: unavailable: ") && got.contains("astrid chat"),
        "{got}"
    );

    let person = daemon.client().await;
    let mut questions = person.register_elicitor(true).await.unwrap();
    // Another tenant's answering screen.
    let bob = new_agent(&home.home, &c, "bob").await;
    let mut bobs = bob.register_elicitor(false).await.unwrap();

    let reply = asking(&c, TEXT, "0 Which branch? \u{1b}[2Kfake");
    let q = next_question(&mut questions).await;
    assert_eq!(q.capsule, "elicit-probe");
    assert_eq!(q.principal, "default");
    assert_eq!(q.kind, ElicitKind::Text);
    assert!(q.prompt.starts_with("Which branch?"), "{}", q.prompt);
    assert!(!q.prompt.contains('\u{1b}'), "escaped: {:?}", q.prompt);
    // Bob guessing the id, and an answer that does not fit, are ignored.
    bob.answer_elicitation(q.id, ElicitAnswer::Text("bob's branch".into()))
        .await
        .unwrap();
    person
        .answer_elicitation(q.id, ElicitAnswer::Choice(0))
        .await
        .unwrap();
    person
        .answer_elicitation(q.id, ElicitAnswer::Text("release-7".into()))
        .await
        .unwrap();
    assert_eq!(reply.await.unwrap(), "ok: release-7");

    let reply = asking(&c, CHOOSE, "0 Deploy now?|yes|no");
    let q = next_question(&mut questions).await;
    assert_eq!(
        q.kind,
        ElicitKind::Choice {
            options: vec!["yes".into(), "no".into()]
        }
    );
    person
        .answer_elicitation(q.id, ElicitAnswer::Choice(5))
        .await
        .unwrap();
    person
        .answer_elicitation(q.id, ElicitAnswer::Choice(1))
        .await
        .unwrap();
    assert_eq!(reply.await.unwrap(), "ok: 1");

    let reply = asking(&c, TEXT, "0 Your name?");
    let q = next_question(&mut questions).await;
    person
        .answer_elicitation(q.id, ElicitAnswer::Declined)
        .await
        .unwrap();
    assert_eq!(reply.await.unwrap(), "error: declined");

    // Questions that cannot be asked are refused before anyone sees them.
    for (topic, payload) in [(TEXT, "0  "), (CHOOSE, "0 Pick|only one")] {
        let got = ask(&c, topic, payload.as_bytes()).await;
        assert!(
            got.starts_with("error: invalid-argument: "),
            "{payload}: {got}"
        );
    }
    // Bob's screen was never asked anything of default's.
    let leak = tokio::time::timeout(Duration::from_millis(300), bobs.next()).await;
    assert!(leak.is_err(), "bob was asked default's question: {leak:?}");

    let entries = elicit_entries(&home, "default");
    let count = |d: Decision| entries.iter().filter(|(_, dd, _)| *dd == d).count();
    // Three questions asked, plus the one nobody could answer.
    assert_eq!(count(Decision::Recorded), 4, "{entries:#?}");
    assert_eq!(count(Decision::Approved), 2, "{entries:#?}");
    // Nobody connected; declined.
    assert_eq!(count(Decision::Rejected), 2, "{entries:#?}");
    // The two malformed questions.
    assert_eq!(count(Decision::Denied), 2, "{entries:#?}");
    assert!(entries
        .iter()
        .any(|(a, _, o)| a == "elicit.choose" && o.contains("Deploy now?")));
    for e in chain(&home.home, "default") {
        assert!(!e.outcome.contains("release-7"), "{e:?}");
    }
    assert!(elicit_entries(&home, "bob").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_nobody_answers_times_out_and_the_switch_is_required() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    // First without `elicit = true`: refused, and nobody is asked.
    let mut up = upload(Capsule::ElicitProbe);
    let off = up.manifest_toml.replace("elicit = true", "");
    assert_ne!(off, up.manifest_toml);
    up.manifest_toml = off;
    match control(&c, ControlCommand::Install(up)).await {
        Ok(ControlResponse::Installed(_)) => {}
        other => panic!("installing: {other:?}"),
    }
    let person = daemon.client().await;
    let mut questions = person.register_elicitor(false).await.unwrap();
    let got = ask(&c, TEXT, b"0 Anyone?").await;
    assert_eq!(
        got,
        "error: denied: capsule `elicit-probe` does not set `elicit = true` in [capabilities]"
    );
    let asked = tokio::time::timeout(Duration::from_millis(300), questions.next()).await;
    assert!(asked.is_err(), "a person was asked: {asked:?}");

    // With the switch, a question nobody answers ends at the capsule's wait, as a timeout.
    match control(&c, ControlCommand::Update(upload(Capsule::ElicitProbe))).await {
        Ok(ControlResponse::Installed(_)) => {}
        other => panic!("updating: {other:?}"),
    }
    let got = ask(&c, TEXT, b"1500 Anyone there?").await;
    assert_eq!(got, "error: timeout: nobody answered within 1500 ms");
    let q = next_question(&mut questions).await;
    assert_eq!(q.prompt, "Anyone there?");
    assert_eq!(q.timeout_ms, 1500);
    // Answering after the capsule gave up changes nothing.
    person
        .answer_elicitation(q.id, ElicitAnswer::Text("late".into()))
        .await
        .unwrap();

    let entries = elicit_entries(&home, "default");
    assert_eq!(
        entries
            .iter()
            .map(|(a, d, _)| (a.as_str(), *d))
            .collect::<Vec<_>>(),
        [
            ("elicit.text", Decision::Denied),
            ("elicit.text", Decision::Recorded),
            ("elicit.text", Decision::Rejected),
        ]
    );
    assert!(entries[2].2.ends_with("no answer in time"), "{entries:#?}");
}

/// A secret asked of a person goes to the secret store bound to the declared host, never to
/// the capsule, the chain or a frontend that did not register for secrets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_secret_goes_to_the_store_and_never_to_the_capsule() {
    const SECRET: &str = "elicit-probe.v1.secret";
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::ElicitProbe).await;

    // Only a frontend that takes no secrets is connected: nobody is asked.
    let plain = daemon.client().await;
    let mut plain_qs = plain.register_elicitor(false).await.unwrap();
    let got = ask(&c, SECRET, b"0 api_key Your API key for api.example.com").await;
    assert!(got.starts_with("error: unavailable: "), "{got}");
    // A secret the manifest does not bind to a host, or does not declare, is not asked.
    for name in ["unbound", "nope"] {
        let got = ask(&c, SECRET, format!("0 {name} Key?").as_bytes()).await;
        assert!(
            got.starts_with("error: invalid-argument: ") && got.contains("with a `host`"),
            "{name}: {got}"
        );
    }

    let person = daemon.client().await;
    let mut questions = person.register_elicitor(true).await.unwrap();
    let reply = asking(&c, SECRET, "0 api_key Your API key for api.example.com");
    let q = next_question(&mut questions).await;
    assert_eq!(
        q.kind,
        ElicitKind::Secret {
            name: "api_key".into(),
            origin: "https://api.example.com".into()
        }
    );
    // An empty value does not fit; the question keeps waiting for one that does.
    person
        .answer_elicitation(q.id, ElicitAnswer::Text(String::new()))
        .await
        .unwrap();
    person
        .answer_elicitation(q.id, ElicitAnswer::Text("sk-typed-4711".into()))
        .await
        .unwrap();
    let got = reply.await.unwrap();
    assert_eq!(got, "ok: stored");
    assert!(!got.contains("sk-typed"));

    match control(
        &c,
        ControlCommand::SecretList {
            principal: "default".into(),
        },
    )
    .await
    {
        Ok(ControlResponse::Secrets(list)) => {
            assert_eq!(list.len(), 1, "{list:?}");
            assert_eq!(
                (list[0].capsule.as_str(), list[0].name.as_str()),
                ("elicit-probe", "api_key")
            );
            assert_eq!(list[0].origin, "https://api.example.com:443");
        }
        other => panic!("{other:?}"),
    }
    let never = tokio::time::timeout(Duration::from_millis(300), plain_qs.next()).await;
    assert!(
        never.is_err(),
        "a plain frontend was asked for a secret: {never:?}"
    );
    for e in chain(&home.home, "default") {
        assert!(!e.outcome.contains("sk-typed"), "{e:?}");
        assert!(!e.resource.contains("sk-typed"), "{e:?}");
    }
    let entries = elicit_entries(&home, "default");
    assert!(
        entries.iter().any(|(a, d, o)| a == "elicit.secret"
            && *d == Decision::Approved
            && o.ends_with("a person typed the secret; stored")),
        "{entries:#?}"
    );
}

/// A frontend that will not answer a question passes it; once everyone asked has passed, the
/// capsule hears at once that nobody could answer, rather than waiting out its time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_everyone_asked_passes_the_capsule_hears_so_at_once() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::ElicitProbe).await;
    let person = daemon.client().await;
    let mut questions = person.register_elicitor(false).await.unwrap();
    // The capsule would wait up to 60 s for an answer.
    let reply = asking(&c, TEXT, "60000 Which branch?");
    let q = next_question(&mut questions).await;
    person.pass_elicitation(q.id).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(30), reply)
        .await
        .expect("the question still waits after everyone passed")
        .unwrap();
    assert!(got.starts_with("error: unavailable: "), "{got}");
}
