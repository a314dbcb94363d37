//! `astrid mcp serve` against a real MCP client, not written by us: the official Python SDK
//! (`mcp` from PyPI; scripts/test.sh installs it and sets ASTRID_TEST_PYTHON). A real daemon
//! (started by the CLI, as an MCP host would start it), real capsules built from this
//! repository, real tokens and the real audit chain.
//!
//! Needs the `astrid-daemon` binary beside `astrid` (`cargo build --release --workspace
//! --bins`, which scripts/test.sh runs first).
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{astrid, daemon_exe, ok, repo, StopDaemon};
use serde_json::Value;

fn python() -> String {
    std::env::var("ASTRID_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs tests/mcp/serve_client.py; `device` starts the server with that device token.
fn run_client(
    home: &Path,
    allowed: &Path,
    denied: &Path,
    install: Option<&Path>,
    device: Option<&str>,
) -> Value {
    let script = repo().join("crates/astrid-cli/tests/mcp/serve_client.py");
    let mut cmd = Command::new(python());
    cmd.arg(&script)
        .arg(env!("CARGO_BIN_EXE_astrid"))
        .arg(home)
        .arg(allowed)
        .arg(denied)
        .arg(install.map_or("-".into(), |p| p.display().to_string()))
        .env("ASTRID_DAEMON", daemon_exe())
        .env_remove("ASTRID_DEVICE_TOKEN");
    if let Some(token) = device {
        cmd.env("ASTRID_DEVICE_TOKEN", token);
    }
    let stdout = ok(
        cmd.output().expect("running the MCP client"),
        "the MCP client",
    );
    serde_json::from_str(stdout.trim()).expect("client output is JSON")
}

fn audit_entries(home: &Path, principal: &str) -> Vec<Value> {
    let out = ok(
        astrid(home, &["--principal", principal, "audit", "show", "--json"]),
        "audit show",
    );
    out.lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

/// The protocol 2026-07-28, where forms come back inside the tool call as input rounds.
const MODERN: Option<&str> = Some("2026-07-28");
/// The initialize handshake, where forms are server-to-client requests.
const HANDSHAKE: Option<&str> = None;

/// Runs `tests/mcp/elicit_client.py` against `astrid mcp serve` on `home` (pinned to
/// `protocol`, or with the handshake): `tool` called with `args` once per answer, each
/// form's `field` answered with it; one round per answer.
fn elicit_client(
    home: &Path,
    protocol: Option<&str>,
    tool: &str,
    args: &str,
    field: &str,
    answers: &[&str],
) -> Vec<Value> {
    let script = repo().join("crates/astrid-cli/tests/mcp/elicit_client.py");
    let pin: Vec<&str> = protocol.map_or(vec![], |v| vec!["--protocol", v]);
    let stdout = ok(
        Command::new(python())
            .arg(&script)
            .args(&pin)
            .arg(env!("CARGO_BIN_EXE_astrid"))
            .arg(home)
            .args([tool, args, field])
            .args(answers)
            .env("ASTRID_DAEMON", daemon_exe())
            .env_remove("ASTRID_DEVICE_TOKEN")
            .output()
            .expect("running the MCP client"),
        "the MCP client",
    );
    let rounds: Vec<Value> = serde_json::from_str(stdout.trim()).expect("client output is JSON");
    assert_eq!(rounds.len(), answers.len(), "{rounds:#?}");
    rounds
}

fn check_python() {
    let py = python();
    let probe = Command::new(&py)
        .args(["-c", "import mcp"])
        .output()
        .expect("running python");
    assert!(
        probe.status.success(),
        "`{py}` cannot import the MCP SDK; run scripts/test.sh or set ASTRID_TEST_PYTHON to \
         a python with `mcp` installed: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
}

/// A home under `dir` with `tool-fs` installed and the daemon running (stopped when the
/// returned guard drops), `default` granted reads under `dir/shared`: the file returned first
/// (holding `readable`) is covered, the second (holding `refused`, in `dir/private`) is not.
fn serving_home(
    dir: &Path,
    readable: &str,
    refused: &str,
) -> (PathBuf, PathBuf, PathBuf, StopDaemon) {
    let home = dir.join("home");
    let (shared, private) = (dir.join("shared"), dir.join("private"));
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::create_dir_all(&private).unwrap();
    let (allowed, denied) = (shared.join("hello.txt"), private.join("key.txt"));
    std::fs::write(&allowed, readable).unwrap();
    std::fs::write(&denied, refused).unwrap();
    let tool_fs = repo().join("capsules/tool-fs");
    ok(
        astrid(&home, &["capsule", "install", tool_fs.to_str().unwrap()]),
        "install tool-fs",
    );
    let stop = StopDaemon(home.clone());
    let pattern = format!("fs:read:{}/**", shared.display());
    ok(
        astrid(&home, &["caps", "grant", "default", &pattern]),
        "caps grant",
    );
    (home, allowed, denied, stop)
}

#[test]
fn python_sdk_lists_calls_is_denied_with_an_audit_entry_and_sees_the_list_change() {
    check_python();
    let dir = tempfile::tempdir().unwrap();
    let (home, allowed, denied, _stop) =
        serving_home(dir.path(), "hello from astrid\n", "do not read\n");

    let tool_http = repo().join("capsules/tool-http");
    let seen = run_client(&home, &allowed, &denied, Some(&tool_http), None);

    assert_eq!(seen["server_name"], "astrid", "{seen}");
    assert_eq!(seen["list_changed_capability"], true, "{seen}");
    let tools: Vec<&str> = seen["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tools.contains(&"fs_read"), "{seen}");
    assert!(!tools.contains(&"http_fetch"), "{seen}");
    assert_eq!(seen["fs_read_schema_required"], serde_json::json!(["path"]));

    assert_eq!(seen["allowed"]["is_error"], false, "{seen}");
    assert_eq!(
        seen["allowed"]["text"],
        serde_json::json!(["hello from astrid\n"])
    );

    // The refusal is a tool error carrying the daemon's reason, not a success with text.
    assert_eq!(seen["denied"]["is_error"], true, "{seen}");
    let reason = seen["denied"]["text"][0].as_str().unwrap();
    assert!(
        reason.contains("no capability token covers")
            && reason.contains(&format!("fs:read:{}", denied.display())),
        "{reason}"
    );
    assert!(!reason.contains("do not read"), "{reason}");

    assert_eq!(seen["install_exit"], 0, "{seen}");
    assert_eq!(seen["list_changed_seen"], true, "{seen}");
    let after: Vec<&str> = seen["tools_after_install"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        after.contains(&"http_fetch") && after.contains(&"fs_read"),
        "{seen}"
    );

    // Both calls are in the principal's signed chain: the read allowed, the other denied.
    let entries = audit_entries(&home, "default");
    let allowed_entry = entries
        .iter()
        .find(|e| {
            e["action"] == "fs.read"
                && e["resource"] == allowed.to_str().unwrap()
                && e["decision"] == "allowed"
        })
        .unwrap_or_else(|| panic!("{entries:#?}"));
    assert_eq!(allowed_entry["capsule"], "tool-fs", "{allowed_entry}");
    // tool-fs looks at the file first (`fs.stat`); that is where the gate stops it, after
    // asking for an approval nobody could give.
    let denied_pattern = format!("fs:read:{}", denied.display());
    let denied_entry = entries
        .iter()
        .find(|e| {
            e["action"].as_str().unwrap().starts_with("fs.")
                && e["resource"] == denied_pattern.as_str()
                && e["decision"] == "denied"
        })
        .unwrap_or_else(|| panic!("{entries:#?}"));
    assert_eq!(denied_entry["capsule"], "tool-fs", "{denied_entry}");
    assert!(
        denied_entry["outcome"]
            .as_str()
            .unwrap()
            .contains("no capability token covers"),
        "{denied_entry}"
    );
    assert!(
        entries
            .iter()
            .all(|e| !(e["resource"] == denied.to_str().unwrap() && e["decision"] == "allowed")),
        "{entries:#?}"
    );
    ok(astrid(&home, &["audit", "verify"]), "audit verify");
}

/// A client that declared form elicitation is asked: each approval request of its principal
/// becomes a form offering allow-once, allow-session or deny. Anything but an accepted offered
/// choice denies (an `allow-always` a form did not offer included), allow-session is
/// remembered, and every answer is in the chain as the MCP client's.
#[test]
fn an_elicitation_client_answers_approvals_and_its_answers_are_audited() {
    approvals_answered_through_forms(HANDSHAKE);
}

/// The same on protocol 2026-07-28: each form comes back inside the call as an
/// `InputRequiredResult`, and the SDK's client retries the call with the answer.
#[test]
fn on_2026_07_28_approvals_come_back_inside_the_call() {
    approvals_answered_through_forms(MODERN);
}

/// An Astrid home under `dir` with tool-fs installed (which starts its daemon), and a file in
/// the user's home: inside tool-fs's manifest ceiling (`$user_home`), so a person may be
/// asked, and covered by no token, so one is. Returns the home and the file.
fn home_with_tool_fs(dir: &Path) -> (PathBuf, PathBuf) {
    let (home, user) = (dir.join("home"), dir.join("user"));
    std::fs::create_dir_all(user.join("notes")).unwrap();
    let private = user.join("notes/key.txt");
    std::fs::write(&private, "asked for\n").unwrap();
    let tool_fs = repo().join("capsules/tool-fs");
    // The daemon this starts takes its user home from HOME.
    ok(
        Command::new(env!("CARGO_BIN_EXE_astrid"))
            .arg("--home")
            .arg(&home)
            .args(["capsule", "install", tool_fs.to_str().unwrap()])
            .env("ASTRID_DAEMON", daemon_exe())
            .env("HOME", &user)
            .env_remove("ASTRID_PRINCIPAL")
            .env_remove("ASTRID_DEVICE_TOKEN")
            .env_remove("ASTRID_DEVICE_TOKEN_FILE")
            .output()
            .expect("running astrid"),
        "install tool-fs",
    );
    (home, private)
}

fn approvals_answered_through_forms(protocol: Option<&str>) {
    check_python();
    let dir = tempfile::tempdir().unwrap();
    let (home, private) = home_with_tool_fs(dir.path());
    let _stop = StopDaemon(home.clone());

    let answers = [
        "accept:allow-always",
        "decline",
        "cancel",
        "accept:allow-session",
        "accept:allow-session",
    ];
    let args = serde_json::json!({"path": private}).to_string();
    let rounds = elicit_client(&home, protocol, "fs_read", &args, "decision", &answers);

    let pattern = format!("fs:read:{}", private.display());
    for (i, round) in rounds.iter().enumerate().take(3) {
        assert_eq!(round["is_error"], true, "round {i}: {round}");
        let text = round["text"][0].as_str().unwrap();
        assert!(
            text.contains("the approval request was denied"),
            "round {i}: {text}"
        );
        assert!(!text.contains("asked for"), "round {i}: {text}");
        let forms = round["forms"].as_array().unwrap();
        assert!(!forms.is_empty(), "round {i} asked nobody: {round}");
        for form in forms {
            assert_eq!(
                form["choices"],
                serde_json::json!(["allow-once", "allow-session", "deny"]),
                "{form}"
            );
            let message = form["message"].as_str().unwrap();
            assert!(
                message.contains("approval requested by tool-fs") && message.contains(&pattern),
                "{message}"
            );
        }
    }
    assert_eq!(rounds[3]["is_error"], false, "{}", rounds[3]);
    assert_eq!(rounds[3]["text"], serde_json::json!(["asked for\n"]));
    assert!(!rounds[3]["forms"].as_array().unwrap().is_empty());
    // Remembered for the session: the same read again asks nobody.
    assert_eq!(rounds[4]["is_error"], false, "{}", rounds[4]);
    assert_eq!(rounds[4]["forms"], serde_json::json!([]), "{}", rounds[4]);

    let entries = audit_entries(&home, "default");
    let outcomes: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e["resource"] == pattern.as_str())
        .map(|e| {
            (
                e["decision"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    let by_form = "through the MCP client's elicitation form";
    let denied_by_form = outcomes
        .iter()
        .filter(|(d, o)| *d == "rejected" && o.contains(": deny (") && o.contains(by_form))
        .count();
    assert!(denied_by_form >= 3, "{outcomes:#?}");
    assert!(
        outcomes.iter().any(|(d, o)| *d == "approved"
            && o.contains(": allow-session (")
            && o.contains(by_form)),
        "{outcomes:#?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|(_, o)| o.contains("allow-session (remembered)")),
        "{outcomes:#?}"
    );
    // No answer through a form minted a lasting token.
    assert!(
        entries
            .iter()
            .all(|e| !e["outcome"].as_str().unwrap_or("").contains(", token ")),
        "{entries:#?}"
    );
    ok(astrid(&home, &["audit", "verify"]), "audit verify");
}

/// On 2026-07-28 the `requestState` of an input round is a handle to one waiting call, not a
/// credential: a made-up one approves nothing, the real one under another tool answers
/// nothing, and once used it cannot be replayed. Only the real answer, once, reads the file.
#[test]
fn an_input_rounds_state_opens_only_its_own_call_once() {
    check_python();
    let dir = tempfile::tempdir().unwrap();
    let (home, private) = home_with_tool_fs(dir.path());
    let _stop = StopDaemon(home.clone());
    let args = serde_json::json!({"path": private}).to_string();
    let stdout = ok(
        Command::new(python())
            .arg(repo().join("crates/astrid-cli/tests/mcp/rounds_client.py"))
            .arg(env!("CARGO_BIN_EXE_astrid"))
            .arg(&home)
            .args(["fs_read", &args, "fs_list"])
            .env("ASTRID_DAEMON", daemon_exe())
            .env_remove("ASTRID_DEVICE_TOKEN")
            .output()
            .expect("running the MCP client"),
        "the MCP client",
    );
    let steps: Value = serde_json::from_str(stdout.trim()).expect("client output is JSON");
    assert_eq!(
        steps["first"]["input_required"],
        serde_json::json!(["astrid"]),
        "{steps}"
    );
    let refused = |step: &Value, why: &str| {
        assert_eq!(step["is_error"], true, "{step}: {steps}");
        let text = step["text"][0].as_str().unwrap();
        assert!(text.contains(why), "{text}");
        assert!(!text.contains("asked for"), "{text}");
    };
    refused(&steps["forged"], "no longer waiting");
    refused(&steps["other_tool"], "belongs to a call of `fs_read`");
    assert_eq!(steps["answered"]["is_error"], false, "{steps}");
    assert_eq!(
        steps["answered"]["text"],
        serde_json::json!(["asked for\n"])
    );
    let rounds = steps["rounds"].as_u64().unwrap();
    let replayed = steps["replayed"].as_array().unwrap();
    assert_eq!(replayed.len() as u64, rounds);
    for r in replayed {
        refused(r, "no longer waiting");
    }
    assert_eq!(steps["callback"], serde_json::json!([]), "{steps}");

    // One approval per round answered, each by the MCP client; none from the forged state,
    // the other tool's or a replay.
    let pattern = format!("fs:read:{}", private.display());
    let approved: Vec<Value> = audit_entries(&home, "default")
        .into_iter()
        .filter(|e| e["resource"] == pattern.as_str() && e["decision"] == "approved")
        .collect();
    assert_eq!(approved.len() as u64, rounds, "{approved:#?}");
    for e in &approved {
        assert!(
            e["outcome"]
                .as_str()
                .unwrap()
                .contains("through the MCP client's elicitation form"),
            "{approved:#?}"
        );
    }
}

/// A device token binds the server to the device's principal: a path the operator's
/// `default` holds a token for is still refused for `alice`, and the refusal is in alice's
/// chain; alice's own home (her default grant) is readable.
#[test]
fn a_device_token_serves_only_its_principal_with_its_tokens() {
    check_python();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let not_hers = shared.join("report.txt");
    std::fs::write(&not_hers, "default's report\n").unwrap();

    let tool_fs = repo().join("capsules/tool-fs");
    ok(
        astrid(&home, &["capsule", "install", tool_fs.to_str().unwrap()]),
        "install tool-fs",
    );
    let _stop = StopDaemon(home.clone());
    ok(astrid(&home, &["agent", "create", "alice"]), "agent create");
    // A new principal starts with no capsules: alice is granted tool-fs, nothing else.
    ok(
        astrid(
            &home,
            &["agent", "modify", "alice", "--add-capsule", "tool-fs"],
        ),
        "agent modify",
    );
    let pattern = format!("fs:read:{}/**", shared.display());
    ok(
        astrid(&home, &["caps", "grant", "default", &pattern]),
        "caps grant",
    );
    let issued = ok(
        astrid(
            &home,
            &["pair-device", "issue", "-a", "alice", "--scope", "use-only"],
        ),
        "pair-device issue",
    );
    let token = issued
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("astrid-device.alice."))
        .unwrap_or_else(|| panic!("no token in {issued}"))
        .to_string();
    let hers = home.join("principals/alice/home/notes.txt");
    std::fs::write(&hers, "alice's notes\n").unwrap();

    let seen = run_client(&home, &hers, &not_hers, None, Some(&token));
    assert_eq!(seen["allowed"]["is_error"], false, "{seen}");
    assert_eq!(
        seen["allowed"]["text"],
        serde_json::json!(["alice's notes\n"])
    );
    assert_eq!(seen["denied"]["is_error"], true, "{seen}");
    let reason = seen["denied"]["text"][0].as_str().unwrap();
    assert!(reason.contains("no capability token covers"), "{reason}");
    assert!(!reason.contains("default's report"), "{reason}");

    let denied_pattern = format!("fs:read:{}", not_hers.display());
    let alice = audit_entries(&home, "alice");
    assert!(
        alice
            .iter()
            .any(|e| e["resource"] == denied_pattern.as_str() && e["decision"] == "denied"),
        "{alice:#?}"
    );
    // Nothing of alice's call landed in the operator's chain as an fs effect.
    let default = audit_entries(&home, "default");
    assert!(
        default
            .iter()
            .all(|e| !e["action"].as_str().unwrap().starts_with("fs.")),
        "{default:#?}"
    );
}

/// The MCP Inspector's CLI (`@modelcontextprotocol/inspector`, npm; scripts/test.sh installs it
/// and sets ASTRID_TEST_MCP_INSPECTOR to its `mcp-inspector` entry point).
fn inspector() -> PathBuf {
    let path = std::env::var_os("ASTRID_TEST_MCP_INSPECTOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "ASTRID_TEST_MCP_INSPECTOR is not set: run scripts/test.sh, or install \
                 @modelcontextprotocol/inspector@0.15 with npm and point it at \
                 node_modules/.bin/mcp-inspector"
            )
        });
    assert!(path.exists(), "{} does not exist", path.display());
    path
}

/// One `mcp-inspector --cli` invocation against `astrid --home HOME mcp serve`; its JSON.
fn inspect(home: &Path, method_args: &[&str]) -> Value {
    inspect_serving(home, &[], method_args)
}

/// The same, with `serve_args` after `mcp serve`.
fn inspect_serving(home: &Path, serve_args: &[&str], method_args: &[&str]) -> Value {
    let mut cmd = Command::new(inspector());
    cmd.arg("--cli")
        .arg(env!("CARGO_BIN_EXE_astrid"))
        .args(method_args)
        .arg("--")
        .arg("--home")
        .arg(home)
        .args(["mcp", "serve"])
        .args(serve_args)
        .env("ASTRID_DAEMON", daemon_exe())
        .env_remove("ASTRID_DEVICE_TOKEN");
    let stdout = ok(
        cmd.output().expect("running the MCP Inspector"),
        "mcp-inspector",
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("the inspector printed no JSON ({e}): {stdout}"))
}

/// `tools/call fs_read {"path": path}` through the Inspector.
fn inspect_read(home: &Path, path: &Path) -> Value {
    inspect_read_serving(home, &[], &path.display().to_string())
}

/// The same, with `serve_args` after `mcp serve` and `path` as given (it may be relative).
fn inspect_read_serving(home: &Path, serve_args: &[&str], path: &str) -> Value {
    let path_arg = format!("path={path}");
    let method = ["--method", "tools/call", "--tool-name", "fs_read"];
    inspect_serving(
        home,
        serve_args,
        &[&method[..], &["--tool-arg", &path_arg]].concat(),
    )
}

/// A refusal of reading `refused` as a tool error: the kernel's reason, none of the file's
/// `text`, and a denial of the file in `default`'s audit chain.
fn assert_refused_and_audited(home: &Path, refusal: &Value, refused: &Path, text: &str) {
    assert_eq!(refusal["isError"], true, "{refusal}");
    let reason = refusal["content"][0]["text"].as_str().unwrap_or_default();
    assert!(reason.contains("no capability token covers"), "{refusal}");
    assert!(!reason.contains(text), "{refusal}");
    let denied = format!("fs:read:{}", refused.display());
    assert!(
        audit_entries(home, "default")
            .iter()
            .any(|e| e["resource"] == denied.as_str() && e["decision"] == "denied"),
        "no denial of {denied} in the audit chain"
    );
}

/// The Inspector is what MCP server authors test with: it lists our tools with their schemas,
/// gets a file through a granted read, and gets a refusal as a tool error (`isError: true`,
/// the daemon's reason) for a read no token covers, which lands in the audit chain.
#[test]
fn the_mcp_inspector_lists_calls_and_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (home, readable, refused, _stop) =
        serving_home(dir.path(), "inspected by the inspector\n", "never shown\n");

    let listed = inspect(&home, &["--method", "tools/list"]);
    let tools = listed["tools"].as_array().expect("a tool list");
    let fs_read = tools
        .iter()
        .find(|t| t["name"] == "fs_read")
        .unwrap_or_else(|| panic!("no fs_read in {listed}"));
    assert_eq!(fs_read["inputSchema"]["type"], "object", "{fs_read}");
    assert!(
        fs_read["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{fs_read}"
    );

    let got = inspect_read(&home, &readable);
    assert_ne!(got["isError"], true, "{got}");
    assert_eq!(
        got["content"][0]["text"], "inspected by the inspector\n",
        "{got}"
    );

    let refusal = inspect_read(&home, &refused);
    assert_refused_and_audited(&home, &refusal, &refused, "never shown");
}

/// `--workspace` only says where relative paths resolve: a read inside it that no token
/// covers is still refused, with the reason and a denial of the resolved path on record.
#[test]
fn a_workspace_grants_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (home, _readable, refused, _stop) = serving_home(
        dir.path(),
        "granted\n",
        "inside the workspace, not granted\n",
    );
    let workspace = refused.parent().unwrap().to_str().unwrap();
    let file = refused.file_name().unwrap().to_str().unwrap();
    let refusal = inspect_read_serving(&home, &["--workspace", workspace], file);
    assert_refused_and_audited(&home, &refusal, &refused, "not granted");
}

/// A capsule's own question (`astrid:elicit`) asked during an MCP tool call goes to the MCP
/// host's user as a form with the capsule's options; an accepted option is the answer, and
/// a decline or an option not offered reaches the capsule as `declined`.
#[test]
fn an_elicitation_client_answers_a_capsules_question() {
    a_capsules_question_answered_through_forms(HANDSHAKE);
}

/// The same on protocol 2026-07-28, as input rounds within the call.
#[test]
fn on_2026_07_28_a_capsules_question_comes_back_inside_the_call() {
    a_capsules_question_answered_through_forms(MODERN);
}

fn a_capsules_question_answered_through_forms(protocol: Option<&str>) {
    check_python();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let probe = repo().join("capsules/testdata/elicit-probe");
    ok(
        astrid(&home, &["capsule", "install", probe.to_str().unwrap()]),
        "install elicit-probe",
    );
    let _stop = StopDaemon(home.clone());
    let answers = ["accept:1", "decline", "accept:7"];
    let args = serde_json::json!({
        "prompt": "Deploy which branch?",
        "options": ["main", "release"],
    })
    .to_string();
    let rounds = elicit_client(&home, protocol, "elicit_choose", &args, "answer", &answers);
    for round in &rounds {
        let forms = round["forms"].as_array().unwrap();
        assert_eq!(forms.len(), 1, "{round}");
        let message = forms[0]["message"].as_str().unwrap();
        assert!(
            message.contains("capsule elicit-probe asks (its own words, not checked)")
                && message.contains("Deploy which branch?"),
            "{message}"
        );
        assert_eq!(
            forms[0]["choices"],
            serde_json::json!(["0", "1"]),
            "{round}"
        );
    }
    let text = |i: usize| rounds[i]["text"][0].as_str().unwrap().to_string();
    assert!(text(0).contains("ok: 1"), "{}", rounds[0]);
    assert!(text(1).contains("error: declined"), "{}", rounds[1]);
    assert!(text(2).contains("error: declined"), "{}", rounds[2]);
}
