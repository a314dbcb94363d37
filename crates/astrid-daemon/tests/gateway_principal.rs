//! What a principal holds, through the gateway: its capsules and tools, its model (listed
//! and selected), and its audit chain (paged, exported, verified). Two principals on one
//! daemon, each with its own device token: each sees only its own, and the kernel, not the
//! gateway, is what refuses a device another principal's chain.

mod common;
mod gateway_rig;

use astrid_audit::{log_path, read_entries};
use astrid_client::{Client, ClientError};
use astrid_llm_fixture::Step;
use astrid_types::wire::{ControlCommand, ControlResponse, Credential};
use astrid_types::PrincipalId;
use gateway_rig::{problem, GwRig};
use serde_json::{json, Value};

async fn get_json(gw: &GwRig, path: &str, token: &str) -> Value {
    let r = gw.get(path, token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "GET {path}: {r:?}");
    r.json().await.unwrap()
}

fn names(v: &Value, list: &str, field: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap_or_else(|| panic!("no `{list}` in {v}"))
        .iter()
        .map(|c| c[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capsules_tools_and_model_are_the_principals_own() {
    let gw = GwRig::start(vec![Step::text("done")]).await;
    gw.add_principal("alice").await;
    // alice loses the shell and gains a token default does not have.
    gw.rig
        .ctl(ControlCommand::AgentModify {
            name: "alice".into(),
            add_capsules: vec![],
            remove_capsules: vec!["tool-shell".into()],
        })
        .await;
    let pattern = "fs:read:/srv/alice-only/**";
    gw.rig
        .ctl(ControlCommand::CapsGrant {
            principal: "alice".into(),
            pattern: pattern.into(),
            ttl_ms: None,
        })
        .await;
    let (_, mine) = gw.device("default").await;
    let (_, alices) = gw.device("alice").await;

    let own = get_json(&gw, "/v1/capsules", &mine).await;
    let hers = get_json(&gw, "/v1/capsules", &alices).await;
    let own_capsules = names(&own, "capsules", "name");
    for c in ["agent", "session", "registry", "tool-fs", "tool-shell"] {
        assert!(own_capsules.contains(&c.to_string()), "{c} missing: {own}");
    }
    assert!(!names(&hers, "capsules", "name").contains(&"tool-shell".into()));
    let fs = own["capsules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "tool-fs")
        .unwrap();
    assert!(fs["tools"].as_array().unwrap().contains(&json!("fs_read")));
    assert!(!fs["state"].as_str().unwrap().is_empty());
    assert!(names(&hers, "grants", "pattern").contains(&pattern.to_string()));
    assert!(!names(&own, "grants", "pattern").contains(&pattern.to_string()));

    // The tools each agent can call, as their capsules describe them.
    let own_tools = get_json(&gw, "/v1/tools", &mine).await;
    let her_tools = get_json(&gw, "/v1/tools", &alices).await;
    let read = own_tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "fs_read")
        .expect("fs_read listed");
    assert_eq!(read["capsule"], "tool-fs");
    assert!(!read["description"].as_str().unwrap().is_empty());
    assert!(read["input_schema"].is_object());
    assert!(names(&own_tools, "tools", "name").contains(&"shell".into()));
    assert!(!names(&her_tools, "tools", "name").contains(&"shell".into()));

    // Models: the live list, the current choice, a selection that later turns use.
    let listed = get_json(&gw, "/v1/models", &mine).await;
    let ids = names(&listed, "data", "id");
    assert!(ids.contains(&"claude-sonnet-4-5".into()), "{listed}");
    let cur = get_json(&gw, "/v1/model", &mine).await;
    assert_eq!(
        cur,
        json!({"provider": "openai", "model": "gpt-4o-mini", "source": "config"})
    );
    let put = |token: &str, body: Value| {
        gw.http
            .put(gw.url("/v1/model"))
            .bearer_auth(token)
            .json(&body)
    };
    let detail = problem(
        put(&mine, json!({"model": "gpt-nonesuch"}))
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    assert!(
        detail.contains("gpt-nonesuch") && detail.contains("claude-sonnet-4-5"),
        "{detail}"
    );
    let r = put(&mine, json!({"model": "claude-sonnet-4-5"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let chosen: Value = r.json().await.unwrap();
    assert_eq!(chosen["model"], "claude-sonnet-4-5");
    assert_eq!(chosen["source"], "selected");
    // alice's choice is hers: untouched by default's.
    assert_eq!(
        get_json(&gw, "/v1/model", &alices).await["model"],
        "gpt-4o-mini"
    );
    let ask = json!({"messages": [{"role": "user", "content": "hi"}]});
    let r = gw
        .post("/v1/chat/completions", &mine, &ask)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let asked = gw.rig.model_requests();
    assert_eq!(
        asked.last().expect("the model was asked").body["model"],
        "claude-sonnet-4-5"
    );
    // null goes back to the operator's setting.
    let back: Value = put(&mine, json!({"model": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(back["model"], "gpt-4o-mini");
    assert_eq!(back["source"], "config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_is_paged_exported_and_verified_for_its_principal_only() {
    let gw = GwRig::start(vec![]).await;
    gw.add_principal("alice").await;
    let (_, mine) = gw.device("default").await;
    let (alice_device, alices) = gw.device("alice").await;

    // Page through default's chain, 7 at a time, to its end.
    let mut seen = Vec::new();
    let mut after = 0;
    let head = loop {
        let page = get_json(&gw, &format!("/v1/audit?after={after}&limit=7"), &mine).await;
        let entries = page["entries"].as_array().unwrap();
        assert!(entries.len() <= 7);
        for e in entries {
            assert_eq!(e["principal"], "default", "{e}");
            assert_eq!(e["type"], "entry");
            seen.push(e["seq"].as_u64().unwrap());
        }
        match page["next_after"].as_u64() {
            Some(n) => {
                assert!(page["head"].is_null());
                after = n;
            }
            None => break page["head"].clone(),
        }
    };
    assert!(seen.len() > 7, "a few pages: {seen:?}");
    // A seq the document does not allow (past i64::MAX, or below 0) is refused, not read.
    for bad in ["9223372036854775808", "-1"] {
        let r = gw
            .get(&format!("/v1/audit?after={bad}"), &mine)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "after={bad}");
    }
    assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");
    assert_eq!(head["type"], "head");
    assert_eq!(head["principal"], "default");
    // The last page holds this very request, recorded before it was answered.
    let on_disk: Vec<_> = read_entries(&log_path(
        &gw.rig.home.home.principals_dir(),
        &PrincipalId::new("default").unwrap(),
    ))
    .unwrap()
    .map(|e| e.unwrap().entry)
    .collect();
    let last = on_disk
        .iter()
        .find(|e| e.seq == *seen.last().unwrap())
        .unwrap();
    assert_eq!(last.action, "control.audit-page");
    assert!(last.outcome.contains("device:"), "{}", last.outcome);

    // The export is the chain as JSON Lines, the head last.
    let r = gw.get("/v1/audit/export", &alices).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (head, entries) = lines.split_last().unwrap();
    assert_eq!(head["type"], "head");
    assert!(!entries.is_empty());
    for e in entries {
        assert_eq!(e["principal"], "alice", "{e}");
    }
    assert_eq!(head["seq"], entries.last().unwrap()["seq"]);

    // Verification, then again against the witness it gave.
    let v = get_json(&gw, "/v1/audit/verify", &alices).await;
    assert_eq!(v["intact"], true, "{v}");
    assert_eq!(v["principal"], "alice");
    let witness = v["witness"].as_str().unwrap().to_string();
    let again = get_json(&gw, &format!("/v1/audit/verify?witness={witness}"), &alices).await;
    assert_eq!(again["intact"], true, "{again}");
    // default's chain does not hold alice's entry.
    let elsewhere = get_json(&gw, &format!("/v1/audit/verify?witness={witness}"), &mine).await;
    assert_eq!(elsewhere["intact"], false, "{elsewhere}");
    assert!(
        elsewhere["problem"].as_str().unwrap().contains("witness"),
        "{elsewhere}"
    );
    problem(
        gw.get("/v1/audit/verify?witness=nonsense", &alices)
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;

    // The gateway never names another principal, and the kernel would refuse it anyway:
    // alice's device asking for default's chain directly on the socket is denied.
    let direct = Client::connect_with(
        &gw.rig.home.home,
        Credential::Device(alices.clone()),
        "alice",
        "isolation-test",
    )
    .await
    .unwrap();
    for cmd in [
        ControlCommand::AuditPage {
            principal: "default".into(),
            after_seq: 0,
            limit: 10,
        },
        ControlCommand::AuditVerify {
            principal: "default".into(),
            witness: None,
        },
    ] {
        match direct.control(cmd).await {
            Err(ClientError::Denied(why)) => assert!(why.contains("alice"), "{why}"),
            other => panic!("a device read another principal's chain: {other:?}"),
        }
    }
    match direct
        .control(ControlCommand::AuditPage {
            principal: "alice".into(),
            after_seq: 0,
            limit: 1,
        })
        .await
    {
        Ok(ControlResponse::Audit(p)) => assert_eq!(p.entries.len(), 1),
        other => panic!("alice's own chain: {other:?}"),
    }

    // A revoked device reads nothing more.
    gw.revoke("alice", &alice_device).await;
    for path in [
        "/v1/audit",
        "/v1/audit/export",
        "/v1/audit/verify",
        "/v1/capsules",
    ] {
        problem(gw.get(path, &alices).send().await.unwrap(), 401).await;
    }
}
