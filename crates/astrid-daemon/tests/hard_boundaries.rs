//! Hard boundaries in whole agent turns: `tool-fs` (manifest ceiling `/`, the workspace
//! granted) is scripted by the model fixture to read, list, write and move Astrid's own
//! state — the keys, the socket token, the principal's store and audit log, a capsule
//! artifact — directly, through a symlink and a hard link planted in the workspace, with the
//! home given plainly, as a relative path and through a symlink. Every call is refused with
//! a typed denial and an audit entry, nobody is asked (whether the approver would answer
//! Allow Always or Allow Once as `--yes` does), nothing leaks or changes, and the same turn
//! still reads the workspace. The operator's credentials open only with a grant naming them.

mod common;

use std::path::{Path, PathBuf};

use astrid_audit::Decision;
use astrid_llm_fixture::{FixtureConfig, ScriptedCall, Step};
use astrid_types::wire::{ApprovalDecision, ControlCommand};
use common::agent::{openai_calls, openai_tool_result, Approver, Provider, Rig, PRINCIPAL};
use common::TestHome;
use serde_json::{json, Value};

/// A file in the workspace the same turn reads, to show the daemon keeps serving.
const WORKSPACE_TEXT: &str = "ordinary-workspace-file-4e1d";

/// The files of Astrid's own state the model goes after, as the daemon's home names them.
fn targets(rig: &Rig) -> Vec<PathBuf> {
    let home = &rig.home.home;
    let artifact = std::fs::read_dir(home.artifacts_dir())
        .expect("the artifact store")
        .map(|e| e.unwrap().path().join("component.wasm"))
        .find(|p| p.is_file())
        .expect("an installed capsule's artifact");
    vec![
        home.keys_dir().join("runtime.key"),
        home.keys_dir().join("secrets.key"),
        home.token_file(),
        home.principal_store(&PRINCIPAL.parse().unwrap()),
        astrid_audit::log_path(&home.principals_dir(), &PRINCIPAL.parse().unwrap()),
        artifact,
    ]
}

fn s(p: &Path) -> String {
    p.to_str().expect("UTF-8 test paths").to_string()
}

/// Every way the model tries to touch `target`: read, list its directory, overwrite it,
/// move it out into the workspace and move a file in over it.
fn attacks(target: &Path, ws: &Path) -> Vec<ScriptedCall> {
    let dir = target.parent().unwrap();
    vec![
        ScriptedCall::new("fs_read", json!({"path": s(target)})),
        ScriptedCall::new("fs_list", json!({"path": s(dir)})),
        ScriptedCall::new(
            "fs_write",
            json!({"path": s(target), "content": "overwritten"}),
        ),
        ScriptedCall::new(
            "fs_move",
            json!({"from": s(target), "to": s(&ws.join("stolen"))}),
        ),
        ScriptedCall::new(
            "fs_move",
            json!({"from": s(&ws.join("bait.txt")), "to": s(target)}),
        ),
    ]
}

/// The same through links planted in the workspace: a symlink to the key, a symlink to the
/// keys directory (an intermediate component) and a hard link to the key.
fn link_attacks(rig: &Rig) -> Vec<ScriptedCall> {
    let keys = rig.home.home.keys_dir();
    let ws = &rig.workspace;
    // Relative, as a command in the workspace would plant them: cap-std refuses absolute
    // symlinks by itself, but follows a relative one that stays under the root (`/`).
    // The workspace and the home (or the link to it) are siblings in the temp dir.
    let home_name = rig.home.home.root().file_name().unwrap().to_str().unwrap();
    let rel = |p: &str| format!("../{home_name}/keys{p}");
    std::os::unix::fs::symlink(rel("/secrets.key"), ws.join("key-link")).unwrap();
    std::os::unix::fs::symlink(rel(""), ws.join("keys-link")).unwrap();
    std::os::unix::fs::symlink(rel("/planted.key"), ws.join("dangling-link")).unwrap();
    std::fs::hard_link(keys.join("secrets.key"), ws.join("hard.key")).unwrap();
    vec![
        ScriptedCall::new("fs_read", json!({"path": "key-link"})),
        ScriptedCall::new("fs_write", json!({"path": "key-link", "content": "x"})),
        ScriptedCall::new("fs_read", json!({"path": "keys-link/runtime.key"})),
        ScriptedCall::new("fs_list", json!({"path": "keys-link"})),
        ScriptedCall::new(
            "fs_write",
            json!({"path": "keys-link/planted.key", "content": "x"}),
        ),
        ScriptedCall::new("fs_write", json!({"path": "dangling-link", "content": "x"})),
        ScriptedCall::new(
            "fs_move",
            json!({"from": "keys-link/runtime.key", "to": "moved"}),
        ),
        ScriptedCall::new("fs_read", json!({"path": "hard.key"})),
        ScriptedCall::new("fs_write", json!({"path": "hard.key", "content": "x"})),
        ScriptedCall::new("fs_move", json!({"from": "hard.key", "to": "moved.key"})),
    ]
}

/// What the model was told for each call of the first step, in call order.
fn results(rig: &Rig) -> Vec<(String, Value, String)> {
    let reqs = rig.model_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    openai_calls(&reqs[1])
        .into_iter()
        .map(|(id, name, args)| {
            let told = openai_tool_result(&reqs[1], &id);
            (name, args, told)
        })
        .collect()
}

/// One turn of every attack on Astrid's state, then a read of the workspace; everything
/// but the read refused without a question, audited, and nothing read, written or moved.
async fn state_is_out_of_reach(rig: Rig, decision: ApprovalDecision) {
    let ws = rig.workspace.clone();
    std::fs::write(ws.join("bait.txt"), "bait").unwrap();
    std::fs::write(ws.join("ok.txt"), WORKSPACE_TEXT).unwrap();
    let targets = targets(&rig);
    let before: Vec<Vec<u8>> = targets.iter().map(|t| std::fs::read(t).unwrap()).collect();
    let mut calls: Vec<ScriptedCall> = targets.iter().flat_map(|t| attacks(t, &ws)).collect();
    calls.extend(link_attacks(&rig));
    let attack_count = calls.len();
    calls.push(ScriptedCall::new("fs_read", json!({"path": "ok.txt"})));
    rig.fixture.push(Step::Reply {
        text: String::new(),
        tool_calls: calls,
    });
    rig.fixture
        .push(Step::text("Nothing of Astrid's was reachable."));
    let approver = Approver::start(&rig.daemon, decision).await;

    let t = rig.turn(None, "Read Astrid's keys.").await;
    assert_eq!(t.ok()["answer"], "Nothing of Astrid's was reachable.");

    let told = results(&rig);
    assert_eq!(told.len(), attack_count + 1);
    for (name, args, text) in &told[..attack_count] {
        assert!(
            text.starts_with("error: ") && text.contains("denied"),
            "{name} {args} was not refused: {text}"
        );
        // The keys' own hard link is refused as one, a dangling symlink (its target cannot
        // be checked before it exists) by the gate's root check; everything else as
        // Astrid's state.
        assert!(
            text.contains("Astrid's own state")
                || text.contains("more than one hard link")
                || (args["path"] == "dangling-link" && text.contains("host system directory")),
            "{name} {args}: {text}"
        );
    }
    let (_, _, ok) = &told[attack_count];
    assert!(
        ok.contains(WORKSPACE_TEXT),
        "the workspace read failed: {ok}"
    );

    // Nobody was asked anything.
    assert!(
        approver.requests().is_empty(),
        "asked: {:?}",
        approver.requests()
    );
    // Nothing leaked to the model, changed, moved or was planted.
    let sent = rig.model_requests()[1].body.to_string();
    assert!(
        !sent.contains(&common::token(&rig.home.home)),
        "the token leaked"
    );
    for (t, b) in targets.iter().zip(&before) {
        let now = std::fs::read(t).unwrap_or_else(|e| panic!("{t:?} is gone: {e}"));
        // The audit log grows with every denial; it must only have grown.
        if t.extension().is_some_and(|e| e == "key") || t.ends_with("token") {
            assert_eq!(&now, b, "{t:?} changed");
        } else {
            assert!(now.starts_with(&b[..b.len().min(16)]), "{t:?} was replaced");
        }
    }
    for p in ["stolen", "moved", "moved.key"] {
        assert!(!ws.join(p).exists(), "{p} appeared in the workspace");
    }
    assert!(!rig.home.home.keys_dir().join("planted.key").exists());
    assert!(ws.join("bait.txt").exists(), "the bait was moved");

    // Each refusal is in the chain as a denial by tool-fs, acting for the agent.
    let denials: Vec<_> = rig
        .audit()
        .into_iter()
        .filter(|e| e.capsule == "tool-fs for agent" && e.decision == Decision::Denied)
        .collect();
    assert!(denials.len() >= attack_count, "{denials:?}");
    let state = denials
        .iter()
        .filter(|e| e.outcome.contains("Astrid's own state"))
        .count();
    assert!(state >= attack_count - 4, "{denials:?}");
    assert!(
        !rig.audit().iter().any(|e| e.capsule.starts_with("tool-fs")
            && e.decision == Decision::Allowed
            && targets.iter().any(|t| e.resource.contains(&s(t)))),
        "an effect on Astrid's state was allowed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn astrid_state_is_out_of_reach_when_the_human_says_allow_always() {
    let rig = Rig::start(Provider::OpenAi, FixtureConfig::default(), vec![]).await;
    state_is_out_of_reach(rig, ApprovalDecision::AllowAlways).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn astrid_state_is_out_of_reach_under_yes_with_a_relative_home() {
    let rig = Rig::start_in(
        Provider::OpenAi,
        FixtureConfig::default(),
        vec![],
        |_, up| up,
        TestHome::given_relative,
    )
    .await;
    state_is_out_of_reach(rig, ApprovalDecision::AllowOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn astrid_state_is_out_of_reach_through_a_symlinked_home() {
    let rig = Rig::start_in(
        Provider::OpenAi,
        FixtureConfig::default(),
        vec![],
        |_, up| up,
        TestHome::given_through_symlink,
    )
    .await;
    state_is_out_of_reach(rig, ApprovalDecision::AllowAlways).await;
}

const ED25519: &str = "FAKE-ED25519-KEY-0c9e";

/// `~/.ssh/id_ed25519` and `~/.aws/credentials` of the operator's (temporary) home: refused
/// without a question even with the whole home granted, then readable (and audited) once the
/// operator grants exactly that file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_open_only_with_a_grant_that_names_them() {
    let rig = Rig::start(Provider::OpenAi, FixtureConfig::default(), vec![]).await;
    let user = rig.user_home.path().canonicalize().unwrap();
    let key = user.join(".ssh/id_ed25519");
    std::fs::write(&key, ED25519).unwrap();
    let aws = user.join(".aws/credentials");
    // A wide grant is not a deliberate one: it covers the files but does not name them.
    rig.ctl(ControlCommand::CapsGrant {
        principal: PRINCIPAL.into(),
        pattern: format!("fs:read:{}/**", s(&user)),
        ttl_ms: None,
    })
    .await;
    let read_both = || Step::Reply {
        text: String::new(),
        tool_calls: vec![
            ScriptedCall::new("fs_read", json!({"path": s(&key)})),
            ScriptedCall::new("fs_read", json!({"path": s(&aws)})),
            ScriptedCall::new("fs_list", json!({"path": s(&user.join(".ssh"))})),
        ],
    };
    rig.fixture.push(read_both());
    rig.fixture.push(Step::text("Refused."));
    let approver = Approver::start(&rig.daemon, ApprovalDecision::AllowAlways).await;

    rig.turn(None, "Read my keys.").await.ok();
    let told = results(&rig);
    for ((_, args, text), path) in told.iter().zip([&key, &aws, &user.join(".ssh")]) {
        assert!(
            text.starts_with("error: ") && text.contains("denied"),
            "{args}: {text}"
        );
        assert!(text.contains("credential location"), "{text}");
        // The refusal says how to grant deliberately.
        let grant = format!("astrid caps grant {PRINCIPAL} fs:read:{}", s(path));
        assert!(text.contains(&grant), "{text}");
    }
    let sent = rig.model_requests()[1].body.to_string();
    assert!(!sent.contains(ED25519) && !sent.contains(common::agent::FAKE_AWS_SECRET));
    assert!(
        approver.requests().is_empty(),
        "asked: {:?}",
        approver.requests()
    );
    let denied: Vec<_> = rig
        .audit()
        .into_iter()
        .filter(|e| e.decision == Decision::Denied && e.outcome.contains("credential location"))
        .collect();
    assert!(denied.len() >= 3, "{denied:?}");

    // The operator grants exactly those two files.
    for p in [&key, &aws] {
        rig.ctl(ControlCommand::CapsGrant {
            principal: PRINCIPAL.into(),
            pattern: format!("fs:read:{}", s(p)),
            ttl_ms: None,
        })
        .await;
    }
    rig.fixture.push(read_both());
    rig.fixture.push(Step::text("Read."));
    rig.turn(None, "Read my keys again.").await.ok();
    let reqs = rig.model_requests();
    let last = reqs.last().unwrap();
    let calls = openai_calls(last);
    let now: Vec<String> = calls
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|(id, _, _)| openai_tool_result(last, id))
        .collect();
    assert!(now[0].contains(ED25519), "{}", now[0]);
    assert!(
        now[1].contains(common::agent::FAKE_AWS_SECRET),
        "{}",
        now[1]
    );
    // The directory was not granted: still refused.
    assert!(now[2].contains("credential location"), "{}", now[2]);
    assert!(
        approver.requests().is_empty(),
        "asked: {:?}",
        approver.requests()
    );
    let allowed: Vec<_> = rig
        .audit()
        .into_iter()
        .filter(|e| e.decision == Decision::Allowed && e.action == "fs.read")
        .map(|e| e.resource)
        .collect();
    for p in [&key, &aws] {
        assert!(allowed.contains(&s(p)), "{allowed:?}");
    }
}

/// The question a human is asked names the path after its symlinks are resolved: the model
/// reads `alias.txt` in the workspace, which leads to a file in the user's home (inside
/// tool-fs's ceiling, so a human may be asked); the approver is asked about that file, says
/// no, and nothing is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_names_the_resolved_path() {
    let rig = Rig::start(Provider::OpenAi, FixtureConfig::default(), vec![]).await;
    let real = rig
        .user_home
        .path()
        .canonicalize()
        .unwrap()
        .join("beside.txt");
    std::fs::write(&real, "beside-the-workspace-77aa").unwrap();
    // Relative (cap-std refuses absolute symlinks by itself): up to `/`, then down.
    let ws = rig.workspace.canonicalize().unwrap();
    let up = "../".repeat(ws.components().count() - 1);
    let target = format!("{up}{}", real.strip_prefix("/").unwrap().display());
    std::os::unix::fs::symlink(target, ws.join("alias.txt")).unwrap();
    rig.fixture
        .push(Step::tool_call("fs_read", json!({"path": "alias.txt"})));
    rig.fixture.push(Step::text("Not allowed."));
    let approver = Approver::start(&rig.daemon, ApprovalDecision::Deny).await;

    rig.turn(None, "Read alias.txt.").await.ok();
    let asked: Vec<String> = approver
        .requests()
        .into_iter()
        .map(|r| r.resource.pattern())
        .collect();
    assert!(!asked.is_empty(), "nobody was asked");
    for resource in &asked {
        assert_eq!(resource, &format!("fs:read:{}", s(&real)));
    }
    let told = results(&rig);
    assert!(told[0].2.starts_with("error: "), "{}", told[0].2);
    assert!(!rig.model_requests()[1]
        .body
        .to_string()
        .contains("beside-the-workspace-77aa"));
}

/// An empty path, a NUL byte and `~user/` reach the host as `invalid-argument` at once, with
/// an approver standing by that is never asked; a symlink in a capsule's own root that leads
/// into the keys is refused as Astrid's state; the daemon keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_paths_and_root_symlinks_are_refused_before_anyone_is_asked() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    common::install(&c, common::Capsule::Echo).await;
    common::install(&c, common::Capsule::FsProbe).await;
    let data = home.principal_home().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // `~/data/keys -> ../../../keys`: relative, so cap-std follows it under the root.
    std::os::unix::fs::symlink("../../../../keys", data.join("keys")).unwrap();
    let approver = Approver::start(&daemon, ApprovalDecision::AllowAlways).await;

    let probe = |op: Value| {
        let c = &c;
        async move {
            let reply = common::ask(c, "fsprobe.v1.op", op.to_string().as_bytes()).await;
            let v: Value = serde_json::from_str(&reply).unwrap();
            v["err"]
                .as_str()
                .unwrap_or_else(|| panic!("{op} was not refused: {v}"))
                .to_string()
        }
    };
    for path in ["", "~/data/a\u{0}b", "~root/.ssh/id_rsa"] {
        let err = probe(json!({"op": "read", "path": path})).await;
        assert!(err.starts_with("invalid-argument: "), "{path:?}: {err}");
        let err = probe(json!({"op": "write", "path": path, "data": "x"})).await;
        assert!(err.starts_with("invalid-argument: "), "{path:?}: {err}");
    }
    for op in [
        json!({"op": "read", "path": "~/data/keys/runtime.key"}),
        json!({"op": "list", "path": "~/data/keys"}),
        json!({"op": "stat", "path": "~/data/keys/secrets.key"}),
    ] {
        let err = probe(op.clone()).await;
        assert!(
            err.starts_with("denied: ") && err.contains("Astrid's own state"),
            "{op}: {err}"
        );
        common::assert_echo_serves(&c).await;
    }
    assert!(approver.requests().is_empty(), "{:?}", approver.requests());
    let chain: Vec<_> = astrid_audit::read_entries(&astrid_audit::log_path(
        &home.home.principals_dir(),
        &PRINCIPAL.parse().unwrap(),
    ))
    .unwrap()
    .map(|e| e.unwrap().entry)
    .filter(|e| e.capsule == "fsprobe" && e.decision == Decision::Denied)
    .collect();
    assert_eq!(chain.len(), 9, "{chain:?}");
}
