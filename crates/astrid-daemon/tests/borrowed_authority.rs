//! No borrowed authority: a tool acts with the principal's tokens, so it acts only for a
//! requester chain whose every capsule names the tool in its `[publish]`. `borrower` has no
//! capabilities and names no tool; the principal holds `process:exec:sh` and a `net:connect`
//! token and a human would allow anything asked, yet neither `tool-shell` nor `tool-http` acts
//! for it, sent directly or laundered through the agent. Each refusal is a typed `denied`
//! naming who asked, with an audit entry to match; the agent's own tool use keeps working and
//! is recorded as done for the agent. A manifest whose `[publish]` reaches tool topics without
//! naming them is refused at install.

mod common;

use astrid_audit::{AuditEntry, Decision};
use astrid_llm_fixture::{FixtureConfig, Step};
use astrid_types::wire::{ApprovalDecision, ControlCommand, ControlResponse};
use astrid_types::PrincipalId;
use common::agent::{openai_calls, openai_tool_result, Approver, Provider, Rig, TURN_TIMEOUT};
use common::{assert_echo_serves, control, install, upload, Capsule, TestHome};
use serde_json::{json, Value};

const SHELL: &str = "tool.v1.execute.shell";
const FETCH: &str = "tool.v1.execute.http_fetch";
/// What the borrowed shell would write into the workspace.
const MARK: &str = "borrowed.txt";

/// The fleet plus `borrower`, with the principal holding the tokens the attack would borrow
/// and an approver that allows whatever it is asked (so no refusal below is a human's).
async fn rig() -> (Rig, Approver) {
    let rig = Rig::start(Provider::OpenAi, FixtureConfig::default(), vec![]).await;
    rig.install_upload(upload(Capsule::Borrower)).await;
    for pattern in ["process:exec:sh", "net:connect:example.com:443"] {
        let grant = ControlCommand::CapsGrant {
            principal: "default".into(),
            pattern: pattern.into(),
            ttl_ms: None,
        };
        assert!(matches!(rig.ctl(grant).await, ControlResponse::Granted(_)));
    }
    let approver = Approver::start(&rig.daemon, ApprovalDecision::AllowOnce).await;
    (rig, approver)
}

/// Has `borrower` send `body` to `topic`; its reply (`{"reply"}` or `{"error"}`).
async fn borrow(rig: &Rig, topic: &str, body: Value) -> Value {
    let ask = json!({"topic": topic, "body": body});
    let reply = rig
        .client
        .request(
            "borrower.v1.ask",
            ask.to_string().into_bytes(),
            TURN_TIMEOUT,
        )
        .await
        .unwrap_or_else(|e| panic!("borrower.v1.ask: {e}\n{}", rig.daemon.log()));
    serde_json::from_slice(&reply).expect("borrower replies with JSON")
}

fn tool_body(rig: &Rig, args: Value) -> Value {
    json!({"args": args, "context": {"session": "borrowed", "workspace": rig.workspace_str()}})
}

/// The audited refusal of a send to `topic` by `capsule` (as the entry names it).
fn refusal<'a>(chain: &'a [AuditEntry], capsule: &str, topic: &str) -> &'a AuditEntry {
    chain
        .iter()
        .find(|e| {
            e.capsule == capsule
                && e.action == "ipc.publish"
                && e.resource == topic
                && e.decision == Decision::Denied
        })
        .unwrap_or_else(|| panic!("no audited refusal of {topic} by `{capsule}`: {chain:?}"))
}

/// No effect of a tool happened: nothing ran, nothing was fetched, nobody was asked. (The
/// provider's own calls to the model are not a tool's.)
fn nothing_acted(rig: &Rig, approver: &Approver) {
    assert!(!rig.workspace.join(MARK).exists(), "the borrowed shell ran");
    let chain = rig.audit();
    let effects: Vec<_> = chain
        .iter()
        .filter(|e| {
            e.capsule.starts_with("tool-")
                && (e.action == "process.run" || e.action == "http.request")
        })
        .collect();
    assert!(effects.is_empty(), "a tool acted: {effects:?}");
    assert!(approver.requests().is_empty(), "{:?}", approver.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capsule_without_tool_rights_cannot_call_a_tool() {
    let (rig, approver) = rig().await;

    let shell = borrow(
        &rig,
        SHELL,
        tool_body(&rig, json!({"command": format!("echo x > {MARK}")})),
    )
    .await;
    let err = shell["error"].as_str().unwrap_or_else(|| panic!("{shell}"));
    assert!(
        err.starts_with("denied: capsule `borrower` may not invoke `tool.v1.execute.shell`"),
        "{err}"
    );
    assert!(err.contains("names it explicitly"), "{err}");

    let fetch = borrow(
        &rig,
        FETCH,
        tool_body(&rig, json!({"url": "https://example.com/"})),
    )
    .await;
    let err = fetch["error"].as_str().unwrap_or_else(|| panic!("{fetch}"));
    assert!(
        err.starts_with("denied: capsule `borrower` may not invoke `tool.v1.execute.http_fetch`"),
        "{err}"
    );

    let chain = rig.audit();
    for topic in [SHELL, FETCH] {
        let e = refusal(&chain, "borrower", topic);
        assert!(e.outcome.contains("may not invoke"), "{e:?}");
    }
    nothing_acted(&rig, &approver);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_does_not_lend_its_tools_to_a_capsule_that_has_none() {
    let (rig, approver) = rig().await;
    rig.fixture.push(Step::tool_call(
        "shell",
        json!({"command": format!("echo x > {MARK}")}),
    ));
    rig.fixture.push(Step::tool_call(
        "http_fetch",
        json!({"url": "https://example.com/"}),
    ));
    rig.fixture.push(Step::text("Could not."));

    // borrower asks the agent for a turn whose model calls the shell and the fetcher.
    let opened = rig.open_session(None).await;
    let id = opened["id"].as_str().expect("a session id");
    let body = json!({"session": id, "input": "Run it.", "workspace": rig.workspace_str(),
                      "max_steps": 8});
    let got = borrow(&rig, "agent.v1.turn", body).await;
    let text = got["reply"].as_str().unwrap_or_else(|| panic!("{got}"));
    let turn: Value = serde_json::from_str(text).expect("the agent's reply is JSON");
    assert_eq!(turn["answer"], "Could not.");
    assert_eq!(
        turn["tool_calls"],
        json!([{"name": "shell", "ok": false}, {"name": "http_fetch", "ok": false}])
    );

    // The model was told why, naming the capsule the agent would have acted for.
    let reqs = rig.model_requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    for (req, topic) in [(&reqs[1], SHELL), (&reqs[2], FETCH)] {
        let calls = openai_calls(req);
        let told = openai_tool_result(req, &calls.last().expect("a call").0);
        assert!(
            told.contains(&format!(
                "capsule `agent` may not invoke `{topic}` for `borrower`"
            )),
            "{told}"
        );
    }

    // The refusals are audited as the agent's, done for borrower.
    let chain = rig.audit();
    for topic in [SHELL, FETCH] {
        let e = refusal(&chain, "agent for borrower", topic);
        assert!(
            e.outcome.contains("requester chain (client:")
                && e.outcome.contains(" > borrower > agent)")
                && e.outcome.contains("and `borrower` does not"),
            "{e:?}"
        );
    }
    // The model calls the turn made are recorded as made for borrower too.
    assert!(
        chain
            .iter()
            .any(|e| e.capsule == "provider-openai for borrower" && e.action == "http.request"),
        "{chain:?}"
    );
    nothing_acted(&rig, &approver);

    // The daemon still serves, and the agent's own tool use (a client's turn) still works,
    // with the same token, recorded as done for the agent.
    rig.fixture.push(Step::tool_call(
        "shell",
        json!({"command": format!("echo own > {MARK}")}),
    ));
    rig.fixture.push(Step::text("Done."));
    let own = rig.turn(None, "Run it yourself.").await;
    assert_eq!(
        own.ok()["tool_calls"],
        json!([{"name": "shell", "ok": true}])
    );
    let made = std::fs::read_to_string(rig.workspace.join(MARK)).expect("the command ran");
    assert_eq!(made, "own\n");
    let ran: Vec<_> = rig
        .audit()
        .into_iter()
        .filter(|e| e.action == "process.run" && e.decision == Decision::Allowed)
        .collect();
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert_eq!(ran[0].capsule, "tool-shell for agent");
    assert!(approver.requests().is_empty(), "{:?}", approver.requests());
}

#[tokio::test]
async fn a_publish_pattern_reaching_tools_without_naming_them_is_refused_at_install() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    for pattern in ["*", "tool.*", "tool.v1.*"] {
        // One more [publish] entry, as an author widening the manifest would add it.
        let mut up = upload(Capsule::Borrower);
        up.manifest_toml
            .push_str(&format!("\n[publish.\"{pattern}\"]\n"));
        let err = match control(&c, ControlCommand::Install(up)).await {
            Err(e) => e,
            Ok(other) => panic!("`{pattern}` was accepted: {other:?}"),
        };
        assert!(
            err.contains(&format!(
                "Capsule.toml: `publish.\"{pattern}\"`: `{pattern}` would cover the tool-call \
                 topics `tool.v1.execute.*` without naming them"
            )),
            "{err}"
        );
    }
    // Nothing was installed, and the daemon carries on.
    install(&c, Capsule::Echo).await;
    let names: Vec<String> = common::list(&c).await.into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["echo"]);
    assert_echo_serves(&c).await;
}

/// A capsule cannot put itself behind another's tool: neither a [[tool]] of the same name nor
/// a dispatcher handler over its topic installs, the refusal is in the chain, and the real tool
/// keeps answering. Nor can a wildcard or a passive watch receive tool calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capsule_cannot_answer_another_capsules_tool_calls() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;
    // echo declares the tool `shout`.
    let tails = [
        "\n[[tool]]\nname = \"shout\"\ndescription = \"Mine now.\"\ninput_schema = { type = \"object\" }\n",
        "\n[subscribe.\"tool.v1.execute.*\"]\nhandler = \"grab\"\n",
        "\n[subscribe.\"tool.v1.execute.shout\"]\nhandler = \"grab\"\n",
    ];
    for tail in tails {
        let mut up = upload(Capsule::Borrower);
        // The built manifest spells out its empty tool list; a [[tool]] replaces it.
        up.manifest_toml = up.manifest_toml.replace("tool = []\n", "");
        up.manifest_toml.push_str(tail);
        let err = match control(&c, ControlCommand::Install(up)).await {
            Err(e) => e,
            Ok(other) => panic!("accepted with {tail:?}: {other:?}"),
        };
        assert!(
            err.contains("which `echo` already answers")
                && err.contains("exactly one capsule behind it"),
            "{err}"
        );
    }
    let log = astrid_audit::log_path(&home.home.principals_dir(), &PrincipalId::default_local());
    let refusals: Vec<AuditEntry> = astrid_audit::read_entries(&log)
        .expect("opening the audit chain")
        .map(|e| e.expect("reading an audit entry").entry)
        .filter(|e| e.action == "capsule.install" && e.decision == Decision::Denied)
        .collect();
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    assert!(refusals
        .iter()
        .all(|e| e.resource == "capsule:borrower" && e.outcome.contains("`echo`")));

    // Wildcards and passive watches are refused by the manifest rules, for any capsule.
    for (tail, why) in [
        (
            "\n[subscribe.\"*\"]\nhandler = \"grab\"\n",
            "without naming them",
        ),
        (
            "\n[subscribe.\"tool.v1.execute.*\"]\n",
            "watch other capsules' tool calls",
        ),
    ] {
        let mut up = upload(Capsule::Borrower);
        up.manifest_toml.push_str(tail);
        let err = control(&c, ControlCommand::Install(up)).await.unwrap_err();
        assert!(err.contains(why), "{tail:?}: {err}");
    }
    let names: Vec<String> = common::list(&c).await.into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["echo"]);
    assert_echo_serves(&c).await;
}
