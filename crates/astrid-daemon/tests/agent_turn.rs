//! Whole agent turns through a real daemon and the real agent, session, registry, provider
//! and tool capsules, against the scripted model server (`astrid-llm-fixture`) on
//! 127.0.0.1: a streamed OpenAI turn that reads a file, an Anthropic turn whose tool input
//! arrives in pieces, resuming a named session, a rate limit told to the user, and a cancel
//! sent while a tool waits for approval.

mod common;

use astrid_audit::Decision;
use astrid_llm_fixture::{FixtureConfig, Step};
use astrid_types::wire::{AnsweredBy, ApprovalDecision};
use common::agent::{
    openai_calls, openai_messages, openai_tool_result, Provider, Rig, TURN_TIMEOUT,
};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_streaming_turn_reads_a_file() {
    let notes = "Buy oat milk.\nCall the plumber on Tuesday.\n";
    let answer = "Your notes say to buy oat milk and to call the plumber on Tuesday.";
    let script = vec![
        Step::tool_call("fs_read", json!({"path": "notes.txt"})),
        Step::text(answer),
    ];
    let rig = Rig::start(Provider::OpenAi, FixtureConfig::default(), script).await;
    std::fs::write(rig.workspace.join("notes.txt"), notes).unwrap();

    let t = rig.turn(None, "What do my notes say?").await;
    let reply = t.ok();
    assert_eq!(reply["answer"], answer, "{reply}");
    assert_eq!(reply["steps"], 2, "{reply}");
    assert_eq!(reply["stop"], "end", "{reply}");
    assert_eq!(
        reply["tool_calls"],
        json!([{"name": "fs_read", "ok": true}])
    );
    assert_eq!(reply["session"]["id"], t.session["id"]);

    // What the model was told.
    let reqs = rig.model_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let first = &reqs[0];
    assert_eq!(first.body["model"], "gpt-4o-mini");
    assert_eq!(first.body["stream"], true);
    let tools: Vec<&str> = first.body["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    for name in ["fs_read", "fs_write", "shell", "http_fetch"] {
        assert!(tools.contains(&name), "{name} missing from {tools:?}");
    }
    let system = openai_messages(first, "system");
    assert!(
        system[0]["content"]
            .as_str()
            .unwrap()
            .contains(&rig.workspace_str()),
        "the system prompt names the workspace: {system:?}"
    );
    let users = openai_messages(first, "user");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["content"], "What do my notes say?");
    let second = &reqs[1];
    let calls = openai_calls(second);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].1, "fs_read");
    assert_eq!(calls[0].2, json!({"path": "notes.txt"}));
    let told = openai_tool_result(second, &calls[0].0);
    assert!(
        told.contains(notes),
        "the model was not shown the file: {told}"
    );

    // What the uplink watched: steps, the call and its result, and the answer in pieces.
    let steps: Vec<&Value> = t.events_of("step").iter().map(|e| &e["n"]).collect();
    assert_eq!(steps, [&json!(1), &json!(2)]);
    let call = t.events_of("tool_call");
    assert_eq!(call.len(), 1, "{:?}", t.events);
    assert_eq!(call[0]["name"], "fs_read");
    assert_eq!(call[0]["arguments"], json!({"path": "notes.txt"}));
    assert_eq!(call[0]["id"], calls[0].0.as_str());
    let result = t.events_of("tool_result");
    assert_eq!(result.len(), 1, "{:?}", t.events);
    assert_eq!(result[0]["ok"], true);
    assert!(result[0]["output"].as_str().unwrap().contains(notes));
    let (text, pieces) = t.last_step_text();
    assert_eq!(text, answer);
    assert!(pieces > 1, "the answer arrived in {pieces} delta(s)");

    // The read went through the capability layer and is in the audit chain.
    let file = format!("{}/notes.txt", rig.workspace_str());
    assert!(
        rig.audit().iter().any(|e| e.capsule == "tool-fs for agent"
            && e.action == "fs.read"
            && e.resource.contains(&file)
            && e.decision == Decision::Allowed),
        "no allowed fs.read of {file} in the chain"
    );
    // And the turn was stored in the session.
    let id = reply["session"]["id"].as_str().unwrap();
    let history = rig.ask_json("session.v1.history", &json!({"id": id})).await;
    let roles: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_turn_reassembles_tool_input_streamed_in_pieces() {
    // Quotes, braces, escapes and multi-byte characters, cut into many pieces on the wire.
    let content = "line one\n\"quoted\" {braces} back\\slash, é ✓ done\n";
    let args = json!({"path": "out/greeting.txt", "content": content});
    let answer = "I wrote the greeting to out/greeting.txt.";
    let config = FixtureConfig {
        chunk_pieces: 7,
        ..FixtureConfig::default()
    };
    let script = vec![
        Step::tool_call("fs_write", args.clone()),
        Step::text(answer),
    ];
    let rig = Rig::start(Provider::Anthropic, config, script).await;

    let t = rig.turn(None, "Write a greeting file.").await;
    let reply = t.ok();
    assert_eq!(reply["answer"], answer, "{reply}");
    assert_eq!(
        reply["tool_calls"],
        json!([{"name": "fs_write", "ok": true}])
    );
    let written = std::fs::read_to_string(rig.workspace.join("out/greeting.txt"))
        .expect("fs_write created the file in the workspace");
    assert_eq!(written, content);

    let call = t.events_of("tool_call");
    assert_eq!(call.len(), 1, "{:?}", t.events);
    assert_eq!(call[0]["arguments"], args);
    let (text, pieces) = t.last_step_text();
    assert_eq!(text, answer);
    assert!(pieces > 1, "the answer arrived in {pieces} delta(s)");

    let reqs = rig.model_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    for r in &reqs {
        assert_eq!(r.path, "/v1/messages");
        assert!(r.header("anthropic-version").is_some(), "{:?}", r.headers);
        assert_eq!(r.body["model"], "claude-sonnet-4-5");
        assert_eq!(r.body["stream"], true);
    }
    // The second request carries the call back as the model made it, then its result.
    let msgs = reqs[1].body["messages"].as_array().expect("messages");
    let assistant = msgs
        .iter()
        .find(|m| m["role"] == "assistant")
        .expect("the assistant turn");
    let tool_use = assistant["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .expect("a tool_use block");
    assert_eq!(tool_use["name"], "fs_write");
    assert_eq!(tool_use["input"], args);
    let last = msgs.last().unwrap();
    assert_eq!(last["role"], "user");
    let result = &last["content"][0];
    assert_eq!(result["type"], "tool_result");
    assert_eq!(result["tool_use_id"], tool_use["id"]);
    assert_eq!(result["is_error"], false, "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_session_resumes_with_its_history() {
    let script = vec![
        Step::text("Noted: the word is papaya."),
        Step::text("You asked me to remember papaya."),
    ];
    let rig = Rig::start(Provider::OpenAi, FixtureConfig::default(), script).await;

    let first = rig.turn(Some("proj"), "Remember the word papaya.").await;
    let r1 = first.ok();
    assert_eq!(r1["session"]["name"], "proj");
    let second = rig
        .turn(Some("proj"), "Which word did I ask you to remember?")
        .await;
    let r2 = second.ok();
    assert_eq!(r2["session"]["id"], r1["session"]["id"], "the same session");
    assert_eq!(r2["answer"], "You asked me to remember papaya.");

    let reqs = rig.model_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let convo: Vec<(String, String)> = reqs[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] != "system")
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected = [
        ("user", "Remember the word papaya."),
        ("assistant", "Noted: the word is papaya."),
        ("user", "Which word did I ask you to remember?"),
    ]
    .map(|(r, c)| (r.to_string(), c.to_string()));
    assert_eq!(convo, expected);

    let list = rig.ask_json("session.v1.list", &json!({})).await;
    let sessions = list["sessions"].as_array().expect("sessions");
    let proj: Vec<&Value> = sessions.iter().filter(|s| s["name"] == "proj").collect();
    assert_eq!(proj.len(), 1, "{list}");
    assert_eq!(proj[0]["id"], r1["session"]["id"]);
    assert_eq!(proj[0]["messages"], 4, "{list}");
    assert_eq!(proj[0]["workspace"], rig.workspace_str().as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_fails_the_turn_with_a_clear_message() {
    for provider in [Provider::OpenAi, Provider::Anthropic] {
        let rig = Rig::start(
            provider,
            FixtureConfig::default(),
            vec![Step::rate_limited(17)],
        )
        .await;
        let t = rig.turn(Some("limited"), "Hello?").await;
        let message = t.failure();
        assert!(
            message.starts_with(&format!("{}: ", provider.name())),
            "{message}"
        );
        assert!(message.contains("rate limited (429)"), "{message}");
        assert!(message.contains("retry after 17 s"), "{message}");
        // Told once, not retried behind the user's back.
        assert_eq!(rig.model_requests().len(), 1);
        // Nothing happened that the session should keep.
        let opened = rig.open_session(Some("limited")).await;
        assert_eq!(opened["messages"], 0, "{opened}");
    }
}

/// What a terminal does on Ctrl-C while an approval dialog is open: publish the cancel, then
/// deny the pending call. The agent must see the cancel between the tool's result and the
/// next model call (a zero-timeout poll of its inbox), so the model is not asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_while_a_tool_waits_for_approval_ends_the_turn_cancelled() {
    let rig = Rig::start(Provider::OpenAi, FixtureConfig::default(), vec![]).await;
    // In the user's home: inside tool-fs's ceiling, outside the workspace, so a person is
    // asked before it is read.
    let note = rig.user_home.path().join("visible.txt");
    rig.fixture
        .push(Step::tool_call("fs_read", json!({"path": note})));
    rig.fixture
        .push(Step::text("the model must not be asked a second time"));
    let id = rig.open_session(None).await["id"]
        .as_str()
        .expect("a session id")
        .to_owned();

    let person = rig.daemon.client().await;
    let mut asks = person.register_approver().await.expect("an approver");
    let body = json!({"session": id, "input": "Read my note.", "workspace": rig.workspace_str()});
    let turn = rig
        .client
        .send_request("agent.v1.turn", body.to_string(), TURN_TIMEOUT)
        .await
        .expect("sending the turn");
    let mut turn = Box::pin(turn.wait());
    let ask = tokio::select! {
        ask = asks.next() => ask.expect("the approval stream ended"),
        done = &mut turn => panic!("the turn ended without asking: {done:?}"),
    };
    assert!(ask.resource.target.contains("visible.txt"), "{ask:?}");
    person
        .publish(&format!("agent.v1.cancel.{id}"), Vec::new())
        .await
        .expect("publishing the cancel");
    person.flush().await.expect("flushing the cancel");
    person
        .answer_approval_by(ask.id, ApprovalDecision::Deny, AnsweredBy::Person)
        .await
        .expect("answering the approval");

    let reply: Value = serde_json::from_slice(&turn.await.expect("the turn's reply"))
        .expect("a reply that is JSON");
    assert_eq!(reply["stop"], "cancelled", "{reply}");
    assert_eq!(
        reply["tool_calls"],
        json!([{"name": "fs_read", "ok": false}])
    );
    assert_eq!(rig.model_requests().len(), 1, "the model was asked again");
    // The refusal is in the chain as the person's.
    assert!(
        rig.audit()
            .iter()
            .any(|e| e.resource.contains("visible.txt") && e.decision == Decision::Denied),
        "no denied read of the file in the chain"
    );
}
