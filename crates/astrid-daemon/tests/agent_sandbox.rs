//! The shell tool in whole agent turns: commands run inside bubblewrap (credentials masked,
//! no network, only the workspace writable) after a human allowed `process:exec:sh`, and a
//! denied approval reaches the model as an error result while the turn still completes.
//! The daemon's `$HOME` holds fake `.ssh` and `.aws` credentials.

mod common;

use astrid_audit::Decision;
use astrid_llm_fixture::{FixtureConfig, Step};
use astrid_types::wire::ApprovalDecision;
use common::agent::{
    openai_calls, openai_tool_result, Approver, Provider, Rig, FAKE_AWS_SECRET, FAKE_SSH_KEY,
    VISIBLE_TEXT,
};
use common::servers::SilentListener;
use serde_json::json;

/// Probes the sandbox from inside and prints one `name=value` line per finding.
fn probe_command(port: u16) -> String {
    [
        "echo \"ssh_entries=$(ls -A \"$HOME/.ssh\" 2>/dev/null | wc -l)\"",
        "if cat \"$HOME/.ssh/id_rsa\"; then echo ssh_key=READ; else echo ssh_key=UNREADABLE; fi",
        "if cat \"$HOME/.aws/credentials\"; then echo aws=READ; else echo aws=UNREADABLE; fi",
        "echo \"visible=$(cat \"$HOME/visible.txt\")\"",
        "echo \"ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ,)\"",
        &format!(
            "if bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>/dev/null; \
             then echo tcp=CONNECTED; else echo tcp=REFUSED; fi"
        ),
        "echo made-in-sandbox > from_shell.txt && echo wrote=yes",
    ]
    .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_runs_inside_the_sandbox_after_approval() {
    let listener = SilentListener::v4();
    let command = probe_command(listener.port());
    let script = vec![
        Step::tool_call("shell", json!({"command": command})),
        Step::text("Probed."),
    ];
    let rig = Rig::start(Provider::OpenAi, FixtureConfig::default(), script).await;
    let approver = Approver::start(&rig.daemon, ApprovalDecision::AllowOnce).await;

    let t = rig.turn(None, "Look around.").await;
    let reply = t.ok();
    assert_eq!(reply["answer"], "Probed.");
    assert_eq!(reply["tool_calls"], json!([{"name": "shell", "ok": true}]));

    // What the model was told the command printed.
    let reqs = rig.model_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let calls = openai_calls(&reqs[1]);
    assert_eq!(calls[0].2, json!({"command": command}));
    let told = openai_tool_result(&reqs[1], &calls[0].0);
    let lines: Vec<&str> = told.lines().collect();
    for expected in [
        "exit code: 0",
        "ssh_entries=0",
        "ssh_key=UNREADABLE",
        "aws=UNREADABLE",
        &format!("visible={VISIBLE_TEXT}"),
        "ifaces=lo,",
        "tcp=REFUSED",
        "wrote=yes",
    ] {
        assert!(lines.contains(&expected), "`{expected}` missing from:\n{told}");
    }
    for secret in [FAKE_SSH_KEY, FAKE_AWS_SECRET] {
        assert!(!told.contains(secret), "a credential leaked:\n{told}");
    }
    listener.assert_untouched("the sandboxed shell");

    // The workspace was the writable place, and the host sees the file.
    let made = std::fs::read_to_string(rig.workspace.join("from_shell.txt"))
        .expect("the command's file is in the workspace");
    assert_eq!(made, "made-in-sandbox\n");
    // The masks hid the credentials; they are untouched on the host.
    let key = std::fs::read_to_string(rig.user_home.path().join(".ssh/id_rsa")).unwrap();
    assert_eq!(key, FAKE_SSH_KEY);

    // One question, about running sh (the workspace grant covered the working directory).
    let asked = approver.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].capsule, "tool-shell");
    assert_eq!(asked[0].action, "process.run");
    assert_eq!(asked[0].resource, "process:exec:sh");
    assert!(asked[0].reason.contains("from_shell.txt"), "{:?}", asked[0]);

    let chain: Vec<_> = rig
        .audit()
        .into_iter()
        .filter(|e| e.resource == "process:exec:sh")
        .collect();
    let decisions: Vec<Decision> = chain.iter().map(|e| e.decision).collect();
    assert_eq!(
        decisions,
        [Decision::Recorded, Decision::Approved, Decision::Allowed],
        "{chain:?}"
    );
    assert!(chain[1].outcome.contains("allow-once"), "{chain:?}");
    assert!(chain.iter().all(|e| e.capsule == "tool-shell"), "{chain:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_shell_call_is_told_to_the_model() {
    let script = vec![
        Step::tool_call("shell", json!({"command": "echo ran > ran.txt"})),
        Step::text("I was not allowed to run that command."),
    ];
    let rig = Rig::start(Provider::OpenAi, FixtureConfig::default(), script).await;
    let approver = Approver::start(&rig.daemon, ApprovalDecision::Deny).await;

    let t = rig.turn(None, "Run it.").await;
    let reply = t.ok();
    assert_eq!(reply["answer"], "I was not allowed to run that command.");
    assert_eq!(reply["stop"], "end");
    assert_eq!(reply["tool_calls"], json!([{"name": "shell", "ok": false}]));
    assert!(!rig.workspace.join("ran.txt").exists(), "the command ran");

    let reqs = rig.model_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let calls = openai_calls(&reqs[1]);
    let told = openai_tool_result(&reqs[1], &calls[0].0);
    assert!(told.starts_with("error: "), "not marked as an error: {told}");
    assert!(
        told.contains("process:exec:sh") && told.contains("approval request was denied"),
        "{told}"
    );
    let result = t.events_of("tool_result");
    assert_eq!(result.len(), 1, "{:?}", t.events);
    assert_eq!(result[0]["ok"], false);
    assert!(result[0]["output"]
        .as_str()
        .unwrap()
        .contains("approval request was denied"));

    let asked = approver.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].resource, "process:exec:sh");
    let chain: Vec<_> = rig
        .audit()
        .into_iter()
        .filter(|e| e.resource == "process:exec:sh")
        .collect();
    let decisions: Vec<Decision> = chain.iter().map(|e| e.decision).collect();
    assert_eq!(
        decisions,
        [Decision::Recorded, Decision::Rejected, Decision::Denied],
        "{chain:?}"
    );
    assert!(
        chain[2].outcome.contains("approval request was denied"),
        "{chain:?}"
    );
}
