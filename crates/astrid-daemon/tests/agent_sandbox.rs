//! The shell tool in whole agent turns: commands run inside bubblewrap (credentials masked,
//! no network, only the workspace writable, the daemon's home hidden) after a human allowed
//! `process:exec:sh`; denied approvals (the shell, and reading a file next to the workspace)
//! reach the model as error results while the turn still completes.
//! The daemon's `$HOME` holds fake `.ssh` and `.aws` credentials.

mod common;

use astrid_audit::Decision;
use astrid_llm_fixture::{FixtureConfig, ScriptedCall, Step};
use astrid_types::wire::{AlwaysOffer, ApprovalDecision, ControlCommand};
use common::agent::{
    openai_calls, openai_tool_result, Approver, Provider, Rig, FAKE_AWS_SECRET, FAKE_SSH_KEY,
    VISIBLE_TEXT,
};
use common::servers::SilentListener;
use serde_json::json;

/// A file next to the workspace, which no call of the model may read.
const OUTSIDE_TEXT: &str = "outside-the-workspace-93c1";

/// Probes the sandbox from inside and prints one `name=value` line per finding. `astrid` is
/// the daemon's home (keys, token, stores), `port` a listener on the host's loopback.
fn probe_command(astrid: &str, port: u16) -> String {
    let read = |name: &str, path: &str| {
        format!("if cat \"{path}\"; then echo {name}=READ; else echo {name}=UNREADABLE; fi")
    };
    let write = |name: &str, path: &str| {
        format!(
            "if echo planted > \"{path}\"; then echo {name}=WROTE; else echo {name}=REFUSED; fi"
        )
    };
    [
        "echo \"ssh_entries=$(ls -A \"$HOME/.ssh\" 2>/dev/null | wc -l)\"".to_string(),
        read("ssh_key", "$HOME/.ssh/id_rsa"),
        read("aws", "$HOME/.aws/credentials"),
        "echo \"visible=$(cat \"$HOME/visible.txt\")\"".to_string(),
        format!("echo \"astrid_entries=$(ls -A \"{astrid}\" 2>/dev/null | wc -l)\""),
        read("token", &format!("{astrid}/run/token")),
        write("plant_ssh", "$HOME/.ssh/authorized_keys"),
        write("plant_home", "$HOME/planted.txt"),
        "echo \"ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ,)\""
            .to_string(),
        format!(
            "if bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>/dev/null; \
             then echo tcp=CONNECTED; else echo tcp=REFUSED; fi"
        ),
        "echo made-in-sandbox > from_shell.txt && echo wrote=yes".to_string(),
    ]
    .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_runs_inside_the_sandbox_after_approval() {
    let listener = SilentListener::v4();
    let rig = Rig::start(Provider::OpenAi, FixtureConfig::default(), vec![]).await;
    let astrid = rig.home.home.root().to_str().unwrap().to_string();
    let command = probe_command(&astrid, listener.port());
    rig.fixture
        .push(Step::tool_call("shell", json!({"command": command})));
    rig.fixture.push(Step::text("Probed."));
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
        "astrid_entries=0",
        "token=UNREADABLE",
        "plant_ssh=REFUSED",
        "plant_home=REFUSED",
        "ifaces=lo,",
        "tcp=REFUSED",
        "wrote=yes",
    ] {
        assert!(
            lines.contains(&expected),
            "`{expected}` missing from:\n{told}"
        );
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
    for planted in [".ssh/authorized_keys", "planted.txt"] {
        assert!(!rig.user_home.path().join(planted).exists(), "{planted}");
    }
    let token = common::token(&rig.home.home);
    assert!(!told.contains(&token), "the daemon's token leaked:\n{told}");

    // One question, about running sh (the workspace grant covered the working directory).
    let asked = approver.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].capsule, "tool-shell for agent");
    assert_eq!(asked[0].action, "process.run");
    assert_eq!(asked[0].resource.pattern(), "process:exec:sh");
    // `sh` runs anything: allow-always is not offered for it.
    assert!(
        matches!(asked[0].always, AlwaysOffer::NotOffered { .. }),
        "{asked:?}"
    );
    // The person is shown what will run and where it may write.
    let reason = &asked[0].detail;
    assert!(reason.contains("wants to run `sh -c "), "{reason}");
    assert!(reason.contains(&rig.workspace_str()), "{reason}");

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
    // The approver answered as `astrid -p --yes` does: recorded as automatic.
    assert!(chain[1].outcome.contains("by auto-yes"), "{chain:?}");
    assert!(
        chain.iter().all(|e| e.capsule == "tool-shell for agent"),
        "{chain:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_calls_are_told_to_the_model() {
    let rig = Rig::start(Provider::OpenAi, FixtureConfig::default(), vec![]).await;
    let outside = rig.home.outside().join("outside.txt");
    std::fs::write(&outside, OUTSIDE_TEXT).unwrap();
    let outside = outside.to_str().unwrap().to_string();
    let visible = rig.user_home.path().join("visible.txt");
    let visible = visible.to_str().unwrap().to_string();
    rig.fixture.push(Step::Reply {
        text: String::new(),
        tool_calls: vec![
            ScriptedCall::new("shell", json!({"command": "echo ran > ran.txt"})),
            ScriptedCall::new("fs_read", json!({"path": "../outside.txt"})),
            ScriptedCall::new("fs_read", json!({"path": outside})),
            ScriptedCall::new("fs_read", json!({"path": visible})),
        ],
    });
    rig.fixture
        .push(Step::text("I was not allowed to do any of that."));
    let approver = Approver::start(&rig.daemon, ApprovalDecision::Deny).await;

    let t = rig.turn(None, "Run it and read the file next door.").await;
    let reply = t.ok();
    assert_eq!(reply["answer"], "I was not allowed to do any of that.");
    assert_eq!(reply["stop"], "end");
    assert_eq!(
        reply["tool_calls"],
        json!([{"name": "shell", "ok": false}, {"name": "fs_read", "ok": false},
               {"name": "fs_read", "ok": false}, {"name": "fs_read", "ok": false}])
    );
    assert!(!rig.workspace.join("ran.txt").exists(), "the command ran");

    let reqs = rig.model_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let calls = openai_calls(&reqs[1]);
    let told: Vec<String> = calls
        .iter()
        .map(|(id, _, _)| openai_tool_result(&reqs[1], id))
        .collect();
    for text in &told {
        assert!(
            text.starts_with("error: "),
            "not marked as an error: {text}"
        );
        assert!(text.contains("denied"), "{text}");
    }
    assert!(
        told[0].contains("process:exec:sh") && told[0].contains("approval request was denied"),
        "{}",
        told[0]
    );
    // `..` is resolved against the workspace: it names the same file outside it. That file is
    // outside tool-fs's ceiling (neither the user's home nor a token), so nobody is asked and
    // the model is told how the user could grant it.
    for text in &told[1..3] {
        assert!(
            text.contains(&format!("fs:read:{outside}"))
                && text.contains("manifest ceiling")
                && text.contains("nobody is asked"),
            "{text}"
        );
    }
    // A file in the user's home is within the ceiling: the human is asked, and said no.
    assert!(
        told[3].contains(&format!("fs:read:{visible}"))
            && told[3].contains("approval request was denied"),
        "{}",
        told[3]
    );
    // Neither file reached the model.
    for secret in [OUTSIDE_TEXT, VISIBLE_TEXT] {
        assert!(
            !reqs[1].body.to_string().contains(secret),
            "{}",
            reqs[1].body
        );
    }
    let results = t.events_of("tool_result");
    assert_eq!(results.len(), 4, "{:?}", t.events);
    assert!(results.iter().all(|r| r["ok"] == false), "{results:?}");

    // The person was asked about the shell and the file in the home only.
    let asked: Vec<(String, String)> = approver
        .requests()
        .into_iter()
        .map(|a| (a.capsule, a.resource.pattern()))
        .collect();
    assert_eq!(
        asked,
        [
            (
                "tool-shell for agent".to_string(),
                "process:exec:sh".to_string()
            ),
            (
                "tool-fs for agent".to_string(),
                format!("fs:read:{visible}")
            ),
        ]
    );
    // The reads past the ceiling are in the chain as denials by tool-fs for the agent.
    let ceiling: Vec<_> = rig
        .audit()
        .into_iter()
        .filter(|e| {
            e.resource == format!("fs:read:{outside}")
                && e.decision == Decision::Denied
                && e.outcome.contains("manifest ceiling")
        })
        .collect();
    assert_eq!(ceiling.len(), 2, "{ceiling:?}");
    assert!(
        ceiling.iter().all(|e| e.capsule == "tool-fs for agent"),
        "{ceiling:?}"
    );
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

/// tool-fs's ceiling (`~/`, `$user_home`, `$granted`): a system file is refused without
/// asking, even when the human would say yes to everything; `astrid caps grant` of exactly
/// that file then opens it, with no question asked either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_ceiling_only_a_token_reaches() {
    let rig = Rig::start(Provider::OpenAi, FixtureConfig::default(), vec![]).await;
    let outside = rig.home.outside().join("outside.txt");
    std::fs::write(&outside, OUTSIDE_TEXT).unwrap();
    let outside = outside.to_str().unwrap().to_string();
    let approver = Approver::start(&rig.daemon, ApprovalDecision::AllowAlways).await;

    for path in ["/etc/hostname", outside.as_str()] {
        rig.fixture
            .push(Step::tool_call("fs_read", json!({"path": path})));
        rig.fixture.push(Step::text("done"));
    }
    rig.turn(None, "Read /etc/hostname.").await.ok();
    rig.turn(None, "Read the file next door.").await.ok();
    let reqs = rig.model_requests();
    let told = |req: usize| {
        // The latest call of the request: a session's history may hold earlier ones.
        let (id, _, _) = openai_calls(&reqs[req]).pop().expect("a tool call");
        openai_tool_result(&reqs[req], &id)
    };
    for (req, path) in [(1, "/etc/hostname"), (3, outside.as_str())] {
        let text = told(req);
        assert!(
            text.starts_with("error: ") && text.contains("nobody is asked"),
            "{path}: {text}"
        );
        assert!(
            text.contains(&format!("astrid caps grant default fs:read:{path}")),
            "{text}"
        );
    }
    assert!(approver.requests().is_empty(), "{:?}", approver.requests());
    assert!(!reqs[3].body.to_string().contains(OUTSIDE_TEXT));

    // The deliberate grant, exactly that file: now it is read, and still nobody is asked.
    rig.ctl(ControlCommand::CapsGrant {
        principal: "default".into(),
        pattern: format!("fs:read:{outside}"),
        ttl_ms: None,
    })
    .await;
    rig.fixture
        .push(Step::tool_call("fs_read", json!({"path": outside})));
    rig.fixture.push(Step::text("done"));
    rig.turn(None, "Read it again.").await.ok();
    let reqs = rig.model_requests();
    let (id, _, _) = openai_calls(&reqs[5]).pop().expect("a tool call");
    let text = openai_tool_result(&reqs[5], &id);
    assert!(text.contains(OUTSIDE_TEXT), "{text}");
    assert!(approver.requests().is_empty(), "{:?}", approver.requests());
    let audit = rig.audit();
    assert!(
        audit.iter().any(|e| e.resource.ends_with(&outside)
            && e.decision == Decision::Allowed
            && e.outcome.starts_with("ok")
            && e.capsule == "tool-fs for agent"),
        "{audit:?}"
    );
}
