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

/// Thread names `token`'s list shows, as the gateway answers it now.
async fn listed(gw: &GwRig, token: &str) -> Vec<String> {
    let r = gw.get("/v1/threads", token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    body["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// Lists until `pred` holds; the hang guard is far longer than any event takes to arrive.
async fn listed_until(gw: &GwRig, token: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let names = listed(gw, token).await;
        if pred(&names) {
            return names;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the list never changed: {names:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The gateway keeps each token's thread list between reads. A change made elsewhere (the
/// socket, as the CLI makes it) reaches it through the session capsule's change event, not
/// through age: the copies here never expire on their own. Another principal's change never
/// touches a copy, and a change made through the gateway is read back at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kept_thread_list_follows_changes_from_every_uplink_and_only_its_own() {
    let gw = GwRig::start_with(vec![], |c| {
        c.list_max_age = std::time::Duration::from_secs(3600);
    })
    .await;
    gw.add_principal("alice").await;
    let (_, mine) = gw.device("default").await;
    let (_, alices) = gw.device("alice").await;
    assert!(!listed(&gw, &mine).await.contains(&"from-the-cli".into()));
    let hers = listed(&gw, &alices).await;

    // Created over the socket, as `astrid chat --session from-the-cli` would.
    let open = json!({"session": "from-the-cli", "workspace": null, "create": true});
    let made = gw.rig.ask_json("session.v1.open", &open).await;
    let id = made["id"].as_str().unwrap().to_string();
    listed_until(&gw, &mine, |n| n.contains(&"from-the-cli".into())).await;
    assert_eq!(listed(&gw, &alices).await, hers, "alice's list changed");

    // Renamed through the gateway: the next read shows it, no waiting.
    let r = gw
        .http
        .patch(gw.url(&format!("/v1/threads/{id}")))
        .bearer_auth(&mine)
        .json(&json!({"name": "renamed-here"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let names = listed(&gw, &mine).await;
    assert!(names.contains(&"renamed-here".into()), "{names:?}");
    assert!(!names.contains(&"from-the-cli".into()), "{names:?}");

    // Deleted over the socket.
    gw.rig
        .ask_json("session.v1.delete", &json!({"id": id}))
        .await;
    listed_until(&gw, &mine, |n| !n.contains(&"renamed-here".into())).await;
}
