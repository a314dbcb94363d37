//! Isolation through the gateway: two principals' device tokens on one daemon. Every thread
//! route tried with the other principal's thread id, search for the other's words, the live
//! feed during the other's turn, an approval answered with the other's token, and a device
//! revoked while its stream is open. The gateway holds no authority: each of these is the
//! kernel refusing, and the tests check the refusal and the audit chain.

mod common;
mod gateway_rig;

use astrid_audit::{log_path, read_entries, AuditEntry, Decision};
use astrid_llm_fixture::Step;
use astrid_types::PrincipalId;
use gateway_rig::{problem, GwRig, SseReader};
use serde_json::{json, Value};

const SECRET_WORD: &str = "zebracorn";

fn chain(gw: &GwRig, principal: &str) -> Vec<AuditEntry> {
    let p: PrincipalId = principal.parse().unwrap();
    read_entries(&log_path(&gw.rig.home.home.principals_dir(), &p))
        .expect("opening the audit chain")
        .map(|e| e.expect("an audit entry").entry)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_principals_token_reaches_nothing_of_another() {
    let gw = GwRig::start(vec![]).await;
    gw.add_principal("alice").await;
    let (_, mine) = gw.device("default").await;
    let (_, alices) = gw.device("alice").await;
    // Reaching a new host needs a human's yes (no token or consent covers it, and it is asked
    // before any lookup): alice is asked, and only alice's answer counts.
    let outside = "net:connect:alice-wants.example:443";
    for step in [
        Step::text(format!("Noted: the password hint is {SECRET_WORD}.")),
        Step::text("Hello alice."),
        Step::tool_call("http_fetch", json!({"url": "https://alice-wants.example/"})),
        Step::text("I could not read it."),
    ] {
        gw.rig.fixture.push(step);
    }

    // default's thread, holding a word only default said.
    let ask = json!({"messages": [{"role": "user", "content": format!("remember {SECRET_WORD}")}]});
    let r = gw
        .post("/v1/chat/completions", &mine, &ask)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let theirs = r.headers()["x-astrid-thread"].to_str().unwrap().to_string();

    // alice's feed is open while she runs a turn; default's turn came before, so anything of
    // default's that leaked would arrive before alice's own events.
    let mut feed = SseReader::new(gw.get("/v1/events", &alices).send().await.unwrap());
    let hello = json!({"messages": [{"role": "user", "content": "hi"}]});
    let r = gw
        .post("/v1/chat/completions", &alices, &hello)
        .send()
        .await
        .unwrap();
    let own = r.headers()["x-astrid-thread"].to_str().unwrap().to_string();
    // The turn is over (its completion came back), so its events are all on their way.
    let mut text = String::new();
    while text != "Hello alice." {
        let (name, ev) = feed.next_event().await.expect("the feed ended");
        assert_eq!(name, "agent");
        assert_eq!(
            ev["thread"],
            json!(own),
            "alice's feed showed another's event: {ev}"
        );
        text.push_str(ev["event"]["text"].as_str().unwrap_or_default());
    }

    // Every thread route with default's thread id, as alice: unknown to her.
    let path = format!("/v1/threads/{theirs}");
    problem(gw.get(&path, &alices).send().await.unwrap(), 404).await;
    let rename = gw
        .http
        .patch(gw.url(&path))
        .bearer_auth(&alices)
        .json(&json!({"name": "mine"}));
    problem(rename.send().await.unwrap(), 404).await;
    problem(
        gw.http
            .delete(gw.url(&path))
            .bearer_auth(&alices)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let turn = gw.post(
        &format!("{path}/turns"),
        &alices,
        &json!({"input": "what did they say?"}),
    );
    problem(turn.send().await.unwrap(), 404).await;
    problem(
        gw.post(&format!("{path}/cancel"), &alices, &json!({}))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let continue_theirs = gw
        .post("/v1/chat/completions", &alices, &hello)
        .header("x-astrid-thread", theirs.as_str());
    problem(continue_theirs.send().await.unwrap(), 404).await;
    let list: Value = gw
        .get("/v1/threads", &alices)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [own.as_str()]);
    let found: Value = gw
        .get(&format!("/v1/search?q={SECRET_WORD}"), &alices)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["hits"], json!([]), "{found}");
    // default still has it all.
    let mine_found: Value = gw
        .get(&format!("/v1/search?q={SECRET_WORD}"), &mine)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine_found["hits"][0]["thread"]["id"], json!(theirs));
    let kept: Value = gw
        .get(&path, &mine)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kept["history"].as_array().unwrap().len(), 2, "{kept}");

    // alice's tool needs an approval; default answers it "allow" with its own token, which
    // the kernel ignores; alice's own "deny" decides.
    let turn = gw
        .post(
            &format!("/v1/threads/{own}/turns"),
            &alices,
            &json!({"input": "read it"}),
        )
        .send()
        .await
        .unwrap();
    let mut turn = SseReader::new(turn);
    let result = loop {
        let (name, ev) = turn.next_event().await.expect("alice's turn ended early");
        match name.as_str() {
            "approval" => {
                let url = format!("/v1/approvals/{}", ev["id"]);
                let meddle = gw.post(&url, &mine, &json!({"decision": "allow_always"}));
                assert_eq!(meddle.send().await.unwrap().status().as_u16(), 202);
                let deny = gw.post(&url, &alices, &json!({"decision": "deny"}));
                assert_eq!(deny.send().await.unwrap().status().as_u16(), 202);
            }
            "tool_result" => break ev,
            "error" => panic!("{ev}"),
            _ => {}
        }
    };
    assert_eq!(
        result["ok"], false,
        "default's answer decided alice's approval: {result}"
    );
    let outside_s = outside;
    let alice_chain = chain(&gw, "alice");
    let asked: Vec<_> = alice_chain
        .iter()
        .filter(|e| e.resource.contains(outside_s))
        .collect();
    assert!(
        asked
            .iter()
            .any(|e| e.decision == Decision::Rejected && e.outcome.contains("deny")),
        "{asked:?} {result}"
    );
    assert!(!alice_chain
        .iter()
        .any(|e| e.decision == Decision::Approved && e.resource.contains(outside_s)));
    assert!(!chain(&gw, "default")
        .iter()
        .any(|e| e.resource.contains(outside_s)));
    while turn.next().await.is_some() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_device_ends_its_open_stream_and_its_requests() {
    let gw = GwRig::start(vec![]).await;
    gw.add_principal("alice").await;
    let (device, token) = gw.device("alice").await;
    let (_, other) = gw.device("alice").await;
    let r = gw.get("/v1/threads", &token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut feed = SseReader::new(gw.get("/v1/events", &token).send().await.unwrap());
    assert!(feed.next().await.is_some(), "the feed opens with a comment");

    gw.revoke("alice", &device).await;
    let (name, ev) = feed
        .next_event()
        .await
        .expect("an event telling why the feed ended");
    assert_eq!(name, "error");
    assert_eq!(ev["status"], 401, "{ev}");
    assert!(ev["detail"].as_str().unwrap().contains("revoked"), "{ev}");
    assert!(feed.next().await.is_none(), "the stream ended");

    let after = gw.get("/v1/threads", &token).send().await.unwrap();
    assert!(problem(after, 401).await.contains("revoked"));
    assert!(chain(&gw, "alice")
        .iter()
        .any(|e| e.action == "auth.refuse" && e.outcome.contains("revoked")));
    // Another device of the same principal is untouched.
    let r = gw.get("/v1/threads", &other).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// A capsule's `astrid:uplink` notice is a `notice` event on its principal's live feed, and
/// never on another principal's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capsules_notice_reaches_its_principals_feed_and_no_other() {
    let gw = GwRig::start(vec![]).await;
    gw.add_principal("alice").await;
    let (_, mine) = gw.device("default").await;
    let (_, alices) = gw.device("alice").await;
    let op = &gw.rig.client;
    common::install(op, common::Capsule::UplinkProbe).await;
    common::grant(op, "default", "uplink:frontends").await;

    // Each feed has subscribed by the time its response head arrives.
    let mut theirs = SseReader::new(gw.get("/v1/events", &alices).send().await.unwrap());
    let mut feed = SseReader::new(gw.get("/v1/events", &mine).send().await.unwrap());
    let sent = common::ask(op, "uplink-probe.v1.notify", b"warning index rebuilt").await;
    assert_eq!(sent, "ok: 1", "only default's feed shows it");
    let (name, ev) = feed.next_event().await.expect("the feed ended");
    assert_eq!(name, "notice");
    assert_eq!(
        ev,
        json!({"capsule": "uplink-probe", "level": "warning", "text": "index rebuilt"})
    );
    // Delivery to every subscriber happens in one pass, so anything meant for alice's feed
    // would be on its way by now.
    let leak =
        tokio::time::timeout(std::time::Duration::from_millis(300), theirs.next_event()).await;
    assert!(
        leak.is_err(),
        "alice's feed showed default's notice: {leak:?}"
    );
}
