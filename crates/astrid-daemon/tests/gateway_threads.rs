//! The gateway's thread routes against a real daemon and the agent fleet: a turn streamed as
//! server-sent events whose tool call waits for an approval answered over HTTP, seen by a
//! second "tab" on the live feed; then the thread read back, found by full-text search,
//! renamed and deleted.

mod common;
mod gateway_rig;

use astrid_audit::Decision;
use gateway_rig::{problem, GwRig, SseReader};
use serde_json::{json, Value};

const ANSWER: &str = "The file says the heron lands at dawn.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_turn_streams_waits_for_an_approval_and_is_searchable() {
    let gw = GwRig::start(vec![]).await;
    let (_, token) = gw.device("default").await;
    let file = gw.script_a_read_needing_approval(ANSWER);

    let created = gw
        .post("/v1/threads", &token, &json!({"name": "birds"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let thread: Value = created.json().await.unwrap();
    let id = thread["id"].as_str().unwrap().to_string();
    assert_eq!(thread["name"], "birds");

    // A second tab watching everything the principal's agent does.
    let mut feed = SseReader::new(gw.get("/v1/events", &token).send().await.unwrap());

    let turn = gw
        .post(
            "/v1/threads/birds/turns",
            &token,
            &json!({"input": "What does heron.txt say?"}),
        )
        .send()
        .await
        .unwrap();
    let mut turn = SseReader::new(turn);
    let (name, first) = turn.next_event().await.unwrap();
    assert_eq!((name.as_str(), &first["id"]), ("thread", &json!(id)));
    let mut kinds = Vec::new();
    let reply = loop {
        let (name, ev) = turn
            .next_event()
            .await
            .expect("the turn stream ended early");
        kinds.push(name.clone());
        match name.as_str() {
            "approval" => {
                // tool-fs asks per operation (stat, then read), each for the file.
                assert!(ev["action"].as_str().unwrap().starts_with("fs."), "{ev}");
                let resource = format!("fs:read:{}", file.display());
                assert_eq!(ev["resource"], json!(resource), "{ev}");
                let answered = gw
                    .post(
                        &format!("/v1/approvals/{}", ev["id"]),
                        &token,
                        &json!({"decision": "allow_once"}),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answered.status().as_u16(), 202);
            }
            "tool_result" => assert_eq!(ev["ok"], true, "{ev}"),
            "done" => break ev,
            "error" => panic!("the turn failed: {ev}"),
            _ => {}
        }
    };
    assert_eq!(reply["answer"], ANSWER);
    for k in [
        "step",
        "tool_call",
        "approval",
        "tool_result",
        "delta",
        "done",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no `{k}` event in {kinds:?}");
    }
    assert!(turn.next().await.is_none(), "the stream ends after `done`");
    assert!(gw
        .rig
        .audit()
        .iter()
        .any(|e| e.decision == Decision::Approved && e.resource.contains("heron.txt")));

    // The feed saw the same turn, labelled with its thread, and the approval request.
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|(n, e): &(String, Value)| n == "agent" && e["event"]["kind"] == "tool_result")
    {
        seen.push(feed.next_event().await.expect("the feed ended"));
    }
    assert!(seen.iter().any(|(n, _)| n == "approval"), "{seen:?}");
    assert!(seen
        .iter()
        .filter(|(n, _)| n == "agent")
        .all(|(_, e)| e["thread"] == json!(id)));

    // Read back, searched, renamed, deleted.
    let one: Value = gw
        .get("/v1/threads/birds", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let history = one["history"].as_array().unwrap();
    assert_eq!(history.len(), 4, "{one}");
    assert!(history[2]["content"]
        .as_str()
        .unwrap()
        .contains("heron lands"));

    let found: Value = gw
        .get("/v1/search?q=heron%20dawn", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hits = found["hits"].as_array().unwrap();
    assert!(!hits.is_empty(), "{found}");
    assert_eq!(hits[0]["thread"]["id"], json!(id));
    assert!(
        hits[0]["snippet"].as_str().unwrap().contains("«heron»"),
        "{found}"
    );
    let none: Value = gw
        .get("/v1/search?q=zebra", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none["hits"], json!([]));

    let renamed = gw
        .http
        .patch(gw.url("/v1/threads/birds"))
        .bearer_auth(&token)
        .json(&json!({"name": "herons"}))
        .send()
        .await
        .unwrap();
    let renamed: Value = renamed.json().await.unwrap();
    assert_eq!(renamed["name"], "herons");
    assert_eq!(renamed["id"], json!(id));
    problem(
        gw.get("/v1/threads/birds", &token).send().await.unwrap(),
        404,
    )
    .await;
    let bad = gw
        .http
        .patch(gw.url("/v1/threads/herons"))
        .bearer_auth(&token)
        .json(&json!({"name": "no spaces"}))
        .send()
        .await
        .unwrap();
    assert!(problem(bad, 400).await.contains("invalid session name"));

    let deleted = gw
        .http
        .delete(gw.url("/v1/threads/herons"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    problem(
        gw.get(&format!("/v1/threads/{id}"), &token)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let list: Value = gw
        .get("/v1/threads", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["threads"], json!([]));
    let after: Value = gw
        .get("/v1/search?q=heron", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        after["hits"],
        json!([]),
        "a deleted thread leaves the index"
    );
}
