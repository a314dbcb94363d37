//! MCP over streamable HTTP on the gateway (`/mcp`), driven by the official MCP Python SDK
//! (PyPI `mcp`, in the venv scripts/test.sh provides as ASTRID_TEST_PYTHON) with a device
//! token: the tools are the token's principal's, a read a capability token covers succeeds,
//! one none covers is a tool error (`isError: true`) with the kernel's reason and a denial in
//! that principal's audit chain. Without a valid token nothing reaches MCP (401); another
//! principal without `tool-fs` neither sees nor can call `fs_read`.
mod common;
mod gateway_rig;

use astrid_audit::Decision;
use astrid_types::wire::ControlCommand;
use gateway_rig::{problem, GwRig};
use serde_json::{json, Value};

const NOTES: &str = "Buy oat milk.\nCall the plumber on Tuesday.\n";

async fn python_client(gw: &GwRig, token: &str, allowed: &str, denied: &str) -> Value {
    let args = vec![gw.url("/mcp"), allowed.to_string(), denied.to_string()];
    let env = vec![("ASTRID_DEVICE_TOKEN", token.to_string())];
    let stdout = gateway_rig::run_python("mcp_http_client.py", args, env).await;
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_mcp_client_calls_the_principals_tools_over_http() {
    let gw = GwRig::start(vec![]).await;
    let allowed = gw.rig.workspace.join("notes.txt");
    std::fs::write(&allowed, NOTES).unwrap();
    let denied = gw.rig.home.outside().join("outside.txt");
    std::fs::write(&denied, "not for the client").unwrap();
    let (allowed_s, denied_s) = (allowed.to_str().unwrap(), denied.to_str().unwrap());
    let (device, token) = gw.device("default").await;

    let seen = python_client(&gw, &token, allowed_s, denied_s).await;
    assert_eq!(seen["server_name"], "astrid", "{seen}");
    let tools: Vec<&str> = seen["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tools.contains(&"fs_read"), "{seen}");
    assert_eq!(seen["allowed"]["is_error"], false, "{seen}");
    assert!(
        seen["allowed"]["text"][0]
            .as_str()
            .unwrap()
            .contains("Buy oat milk."),
        "{seen}"
    );
    // Refused by the kernel (no token covers it, and nobody can be asked), as a tool error
    // carrying the reason, never a success.
    assert_eq!(seen["denied"]["is_error"], true, "{seen}");
    let reason = seen["denied"]["text"][0].as_str().unwrap();
    assert!(reason.contains("denied"), "{seen}");
    assert!(!reason.contains("not for the client"));
    assert!(
        gw.rig.audit().iter().any(|e| e.capsule == "tool-fs"
            && matches!(e.decision, Decision::Denied | Decision::Rejected)
            && e.resource.contains(denied_s)),
        "no denial of {denied_s} in default's audit chain"
    );

    // Nothing reaches MCP without a token the kernel accepts.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let post = |auth: Option<String>| {
        let mut r = gw
            .http
            .post(gw.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    problem(post(None).await.unwrap(), 401).await;
    problem(
        post(Some("Bearer not-a-device-token".into()))
            .await
            .unwrap(),
        401,
    )
    .await;
    let forged = format!("{}x", token);
    problem(post(Some(format!("Bearer {forged}"))).await.unwrap(), 401).await;
    gw.revoke("default", &device).await;
    problem(post(Some(format!("Bearer {token}"))).await.unwrap(), 401).await;

    // Another principal, without tool-fs: its list has no fs_read, and calling it anyway is
    // refused (the tool is not among its principal's).
    gw.add_principal("alice").await;
    gw.rig
        .ctl(ControlCommand::AgentModify {
            name: "alice".into(),
            add_capsules: vec![],
            remove_capsules: vec!["tool-fs".into()],
        })
        .await;
    let (_, alices) = gw.device("alice").await;
    let hers = python_client(&gw, &alices, allowed_s, denied_s).await;
    assert!(
        !hers["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("fs_read")),
        "{hers}"
    );
    let refused = hers["allowed"]["protocol_error"]
        .as_str()
        .unwrap_or_default();
    assert!(refused.contains("unknown tool `fs_read`"), "{hers}");
}

/// A client on protocol 2026-07-28 that fills forms is asked within its calls over HTTP too:
/// the approval comes back as an input round, is answered by the device that made the call
/// and by no other (even of the same principal), and lets the read through once; a declined
/// form is a tool error. The chain records the person's answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_2026_07_28_a_devices_approvals_come_back_inside_its_calls_over_http() {
    let gw = GwRig::start(vec![]).await;
    // In the user's home: inside tool-fs's ceiling, outside the workspace tokens cover.
    let file = gw.rig.user_home.path().join("heron.txt");
    std::fs::write(&file, "the heron lands at dawn").unwrap();
    let (_, token) = gw.device("default").await;
    let (_, other) = gw.device("default").await;

    let args = vec![
        gw.url("/mcp"),
        "fs_read".into(),
        json!({"path": file}).to_string(),
    ];
    let env = vec![
        ("ASTRID_DEVICE_TOKEN", token),
        ("OTHER_DEVICE_TOKEN", other),
    ];
    let stdout = gateway_rig::run_python("mcp_http_rounds.py", args, env).await;
    let seen: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));

    assert_eq!(
        seen["first"],
        json!({"input_required": ["astrid"]}),
        "{seen}"
    );
    assert_eq!(seen["other_device"]["is_error"], true, "{seen}");
    assert!(
        seen["other_device"]["text"][0]
            .as_str()
            .unwrap()
            .contains("no longer waiting"),
        "{seen}"
    );
    // tool-fs asks twice (a stat, then the read), each answered within the same call.
    assert_eq!(seen["answered"]["is_error"], false, "{seen}");
    assert_eq!(
        seen["answered"]["text"],
        json!(["the heron lands at dawn"]),
        "{seen}"
    );
    assert!(seen["rounds"].as_u64().unwrap() >= 2, "{seen}");
    assert_eq!(seen["declined"]["is_error"], true, "{seen}");
    let forms = seen["declined_forms"].to_string();
    assert!(
        forms.contains("approval requested by tool-fs") && forms.contains("heron.txt"),
        "{seen}"
    );

    let file_s = file.display().to_string();
    let reads: Vec<_> = gw
        .rig
        .audit()
        .into_iter()
        .filter(|e| e.capsule == "tool-fs" && e.resource.contains(&file_s))
        .collect();
    assert!(
        reads.iter().any(|e| e.decision == Decision::Approved),
        "{reads:#?}"
    );
    assert!(
        reads
            .iter()
            .any(|e| matches!(e.decision, Decision::Denied | Decision::Rejected)),
        "{reads:#?}"
    );
}

/// A client on a protocol before 2026-07-28 (every MCP host today) that fills forms is asked
/// too: the gateway gives it a session, and the approval arrives as an `elicitation/create`
/// request within the call. Allowing once lets the read through; declining is a tool error;
/// the chain records both. The session also hears that its principal's capsules changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_era_clients_approvals_are_asked_on_its_session_over_http() {
    let gw = GwRig::start(vec![]).await;
    // In the user's home: inside tool-fs's ceiling, outside the workspace tokens cover.
    let first = gw.rig.user_home.path().join("heron.txt");
    std::fs::write(&first, "the heron lands at dawn").unwrap();
    let second = gw.rig.user_home.path().join("crane.txt");
    std::fs::write(&second, "not for a declined form").unwrap();
    let (_, token) = gw.device("default").await;

    let ready = gw.rig.home.outside().join("session-ready");
    let args = vec![
        gw.url("/mcp"),
        first.display().to_string(),
        second.display().to_string(),
        ready.display().to_string(),
    ];
    let env = vec![("ASTRID_DEVICE_TOKEN", token)];
    let client =
        tokio::spawn(
            async move { gateway_rig::run_python("mcp_http_session.py", args, env).await },
        );
    // Once the client has made its calls, the principal loses a capsule: the session is told.
    let waited = std::time::Instant::now();
    while !ready.exists() {
        assert!(
            !client.is_finished() && waited.elapsed() < std::time::Duration::from_secs(180),
            "the client ended or stalled before its calls were done"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    gw.rig
        .ctl(ControlCommand::AgentModify {
            name: "default".into(),
            add_capsules: vec![],
            remove_capsules: vec!["tool-fs".into()],
        })
        .await;
    let stdout = client.await.unwrap();
    let seen: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(seen["list_changed_capability"], true, "{seen}");
    assert!(seen["tools"].to_string().contains("fs_read"), "{seen}");
    assert_eq!(seen["list_changed_seen"], true, "{seen}");
    assert!(
        !seen["tools_after"].to_string().contains("fs_read"),
        "{seen}"
    );

    assert!(
        seen["protocol"].as_str().unwrap() < "2026-07-28",
        "the SDK's ClientSession negotiates a handshake-era protocol: {seen}"
    );
    assert_eq!(seen["allowed"]["is_error"], false, "{seen}");
    assert_eq!(
        seen["allowed"]["text"],
        json!(["the heron lands at dawn"]),
        "{seen}"
    );
    let allowed_forms = seen["forms"]["allowed"].to_string();
    assert!(
        allowed_forms.contains("approval requested by tool-fs")
            && allowed_forms.contains("heron.txt"),
        "{seen}"
    );
    assert_eq!(seen["declined"]["is_error"], true, "{seen}");
    assert!(
        !seen["declined"]
            .to_string()
            .contains("not for a declined form"),
        "{seen}"
    );
    assert!(
        seen["forms"]["declined"].to_string().contains("crane.txt"),
        "{seen}"
    );

    let chain = gw.rig.audit();
    let entries = |f: &std::path::Path| -> Vec<_> {
        let f = f.display().to_string();
        chain
            .iter()
            .filter(|e| e.capsule == "tool-fs" && e.resource.contains(&f))
            .cloned()
            .collect()
    };
    let heron = entries(&first);
    assert!(
        heron.iter().any(|e| e.decision == Decision::Approved),
        "{heron:#?}"
    );
    let crane = entries(&second);
    assert!(
        crane
            .iter()
            .any(|e| matches!(e.decision, Decision::Denied | Decision::Rejected)),
        "{crane:#?}"
    );
    assert!(
        !crane.iter().any(|e| e.decision == Decision::Approved),
        "{crane:#?}"
    );
}

/// A session belongs to the device token that opened it: another token, even of the same
/// principal, naming it gets 404 as for no session at all, cannot end it, and its owner goes
/// on using it; ended by its owner, it is gone. A device holds a bounded number of sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_session_answers_only_the_token_that_opened_it() {
    let gw = GwRig::start(vec![]).await;
    let (_, owner) = gw.device("default").await;
    let (_, other) = gw.device("default").await;
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "session-test", "version": "1"}
        }
    });
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let send =
        |method: reqwest::Method, token: &str, session: Option<&str>, body: Option<&Value>| {
            let mut r = gw
                .http
                .request(method, gw.url("/mcp"))
                .header("authorization", format!("Bearer {token}"))
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-06-18");
            if let Some(s) = session {
                r = r.header("mcp-session-id", s);
            }
            if let Some(b) = body {
                r = r.json(b);
            }
            r.send()
        };
    let opened = send(reqwest::Method::POST, &owner, None, Some(&init))
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let reply = opened.text().await.unwrap();
    assert!(reply.contains("\"serverInfo\""), "{reply}");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let done = send(
        reqwest::Method::POST,
        &owner,
        Some(&session),
        Some(&initialized),
    )
    .await
    .unwrap();
    assert_eq!(done.status(), 202);

    // Another device of the same principal: as if there were no such session.
    for method in [reqwest::Method::POST, reqwest::Method::GET] {
        let body = (method == reqwest::Method::POST).then_some(&list);
        let r = send(method.clone(), &other, Some(&session), body)
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{method} with another token");
    }
    let ended = send(reqwest::Method::DELETE, &other, Some(&session), None)
        .await
        .unwrap();
    assert_eq!(ended.status(), 404);

    // The owner's session is still there.
    let listed = send(reqwest::Method::POST, &owner, Some(&session), Some(&list))
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let tools = listed.text().await.unwrap();
    assert!(tools.contains("fs_read"), "{tools}");

    // Ended by its owner, it is gone for everyone.
    let ended = send(reqwest::Method::DELETE, &owner, Some(&session), None)
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
    let after = send(reqwest::Method::POST, &owner, Some(&session), Some(&list))
        .await
        .unwrap();
    assert_eq!(after.status(), 404);

    // A device holds at most MAX_SESSIONS_PER_DEVICE; another device is not affected.
    for _ in 0..astrid_mcp::MAX_SESSIONS_PER_DEVICE {
        let r = send(reqwest::Method::POST, &other, None, Some(&init))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let refused = send(reqwest::Method::POST, &other, None, Some(&init))
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let why = refused.text().await.unwrap();
    assert!(why.contains("sessions"), "{why}");
    let r = send(reqwest::Method::POST, &owner, None, Some(&init))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
