//! Tools are capsules like any other: a principal's agent neither sees nor reaches a tool
//! capsule its principal was not granted (the model is never offered it, a call to it runs
//! nothing, a direct request is a typed denial with an audit entry). And a principal's
//! process quota narrows the daemon's subprocess limits: a fork bomb through `tool-shell` is
//! stopped at the principal's count, named to the model, and the daemon keeps serving.

mod common;

use astrid_audit::Decision;
use astrid_client::ClientError;
use astrid_llm_fixture::{FixtureConfig, Step};
use astrid_types::wire::{
    ApprovalDecision, ControlCommand, ControlResponse, QuotaSpec, RequestError,
};
use common::agent::{openai_calls, openai_tool_result, Approver, Provider, Rig};
use serde_json::json;

fn offered_tools(body: &serde_json::Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["function"]["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_never_sees_or_reaches_a_tool_its_principal_was_not_granted() {
    let rig = Rig::start(Provider::OpenAi, FixtureConfig::default(), vec![]).await;
    // tool-shell belongs to bob now; `default` keeps the rest of the fleet.
    rig.ctl(ControlCommand::AgentCreate { name: "bob".into() })
        .await;
    let modify = |name: &str, add: &[&str], remove: &[&str]| ControlCommand::AgentModify {
        name: name.into(),
        add_capsules: add.iter().map(|s| s.to_string()).collect(),
        remove_capsules: remove.iter().map(|s| s.to_string()).collect(),
    };
    rig.ctl(modify("bob", &["tool-shell"], &[])).await;
    match rig.ctl(modify("default", &[], &["tool-shell"])).await {
        ControlResponse::Agent(info) => assert!(!info.capsules.contains(&"tool-shell".into())),
        other => panic!("{other:?}"),
    }
    let _approver = Approver::start(&rig.daemon, ApprovalDecision::AllowOnce).await;
    // The model asks for the shell anyway (it may have seen it in an earlier life).
    rig.fixture.push(Step::tool_call(
        "shell",
        json!({"command": "touch pwned.txt"}),
    ));
    rig.fixture.push(Step::text("No shell here."));

    let t = rig.turn(None, "Run a command.").await;
    assert_eq!(t.ok()["answer"], "No shell here.");
    let reqs = rig.model_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let offered = offered_tools(&reqs[0].body);
    assert!(!offered.is_empty(), "the other tools are still offered");
    assert!(!offered.contains(&"shell".to_string()), "{offered:?}");
    let (id, name, _) = openai_calls(&reqs[1]).pop().expect("the shell call");
    assert_eq!(name, "shell");
    let told = openai_tool_result(&reqs[1], &id);
    assert!(told.starts_with("error: "), "{told}");
    assert!(!rig.workspace.join("pwned.txt").exists(), "the shell ran");

    // Asked directly: a typed denial, recorded in default's chain.
    let body = json!({"args": {"command": "touch pwned.txt"},
                      "context": {"session": "direct", "workspace": rig.workspace_str()}});
    let err = rig
        .client
        .request(
            "tool.v1.execute.shell",
            body.to_string().into_bytes(),
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap_err();
    let ClientError::Request(RequestError::Denied(why)) = &err else {
        panic!("expected a typed denial, got {err:?}");
    };
    assert!(
        why.contains("tool-shell") && why.contains("default"),
        "{why}"
    );
    assert!(!rig.workspace.join("pwned.txt").exists(), "the shell ran");
    let refusal = rig
        .audit()
        .into_iter()
        .find(|e| {
            e.action == "capsule.invoke"
                && e.resource == "capsule:tool-shell"
                && e.decision == Decision::Denied
        })
        .expect("the refused invoke is in default's chain");
    assert!(
        refusal.capsule.starts_with("client:"),
        "{}",
        refusal.capsule
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principals_process_quota_narrows_the_sandbox() {
    let rig = Rig::start_configured(Provider::OpenAi, "[process]\nmax_processes = 64\n").await;
    let quota = QuotaSpec {
        processes: Some(16),
        ..QuotaSpec::default()
    };
    let set = ControlCommand::QuotaSet {
        principal: "default".into(),
        quota,
    };
    match rig.ctl(set).await {
        ControlResponse::Quota(q) => assert_eq!(q.processes, 16),
        other => panic!("{other:?}"),
    }
    rig.fixture.push(Step::tool_call(
        "shell",
        json!({"command": "bomb() { bomb | bomb & }; bomb; sleep 600"}),
    ));
    rig.fixture.push(Step::tool_call(
        "shell",
        json!({"command": "echo still-serving"}),
    ));
    rig.fixture.push(Step::text("Contained."));
    let _approver = Approver::start(&rig.daemon, ApprovalDecision::AllowOnce).await;

    let t = rig.turn(None, "Fork.").await;
    assert_eq!(t.ok()["answer"], "Contained.");
    let reqs = rig.model_requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    let (id, _, _) = openai_calls(&reqs[1]).pop().unwrap();
    let told = openai_tool_result(&reqs[1], &id);
    assert!(
        told.contains("stopped by a sandbox limit: processes: ") && told.contains("(16 processes)"),
        "the principal's limit is not the one named: {told}"
    );
    let (id, _, _) = openai_calls(&reqs[2]).pop().unwrap();
    let told = openai_tool_result(&reqs[2], &id);
    assert!(told.contains("still-serving"), "{told}");
    // And the daemon still answers.
    let status = rig.ctl(ControlCommand::Status).await;
    assert!(matches!(status, ControlResponse::Status(_)), "{status:?}");
}

/// `$user_home` (tool-fs's ceiling) is the operator's home for `default` only: another
/// principal granted the same tool-fs has its own principal home there, so a file in the
/// operator's home is outside its ceiling. Refused without asking anyone (an approver of that
/// principal is registered and allows everything), recorded in its chain; the same request
/// from `default` is asked and read, which is what makes the refusal mean something.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_principal_cannot_be_approved_into_the_operators_home() {
    let rig = Rig::start(Provider::OpenAi, FixtureConfig::default(), vec![]).await;
    let secret = rig.user_home.path().join("diary.txt");
    std::fs::write(&secret, "the operator's own words").unwrap();
    rig.ctl(ControlCommand::AgentCreate { name: "bob".into() })
        .await;
    rig.ctl(ControlCommand::AgentModify {
        name: "bob".into(),
        add_capsules: vec!["tool-fs".into()],
        remove_capsules: vec![],
    })
    .await;
    let bob = astrid_client::Client::connect(&rig.home.home, "bob", "test")
        .await
        .unwrap();
    let mut bob_approvals = bob.register_approver().await.unwrap();
    let asked_bob = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = asked_bob.clone();
    let answering = tokio::spawn(async move {
        while let Some(req) = bob_approvals.next().await {
            record.lock().unwrap().push(format!("{:?}", req.resource));
            let _ = bob
                .answer_approval(req.id, ApprovalDecision::AllowAlways)
                .await;
        }
    });
    let read = json!({"args": {"path": secret, "limit": 100},
                      "context": {"session": "direct", "workspace": null}});
    let as_bob = astrid_client::Client::connect(&rig.home.home, "bob", "test")
        .await
        .unwrap();
    let err = as_bob
        .request(
            "tool.v1.execute.fs_read",
            read.to_string().into_bytes(),
            std::time::Duration::from_secs(60),
        )
        .await
        .expect_err("bob read the operator's file");
    assert!(
        err.to_string().contains("denied") && err.to_string().contains("manifest ceiling"),
        "{err}"
    );
    let chain = common::chain(&rig.home.home, "bob");
    let refusal = chain
        .iter()
        .find(|e| e.decision == Decision::Denied && e.resource.contains("diary.txt"))
        .unwrap_or_else(|| panic!("no refusal in bob's chain: {chain:?}"));
    assert_eq!(refusal.capsule, "tool-fs", "{refusal:?}");
    assert!(
        refusal
            .outcome
            .contains("outside capsule `tool-fs`'s manifest ceiling")
            && refusal.outcome.contains("nobody is asked"),
        "{}",
        refusal.outcome
    );

    // `default`, whose home it is, is asked (and here allowed).
    let approver = Approver::start(&rig.daemon, ApprovalDecision::AllowOnce).await;
    let reply = rig
        .client
        .request(
            "tool.v1.execute.fs_read",
            read.to_string().into_bytes(),
            std::time::Duration::from_secs(60),
        )
        .await
        .expect("default reads its own home");
    assert!(
        String::from_utf8_lossy(&reply).contains("the operator's own words"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert!(!approver.requests().is_empty(), "default was not asked");

    // Bob's approver would have been asked before the refusal came back: nothing since.
    let asked = asked_bob.lock().unwrap().clone();
    assert!(asked.is_empty(), "bob's approver was asked: {asked:?}");
    answering.abort();
}
