//! `astrid-emit` against the real daemon and a real capsule built from this repository: the
//! daemon started on first use, requests answered by the capsule, events it publishes seen
//! through `--subscribe`, and every kind of bad line answered in input order.
#![allow(
    clippy::disallowed_methods,
    reason = "the test drives the real binaries as a user would"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

/// A binary `scripts/test.sh` builds beside `astrid-emit` (`cargo build --workspace --bins`).
fn sibling(name: &str) -> PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_astrid-emit"))
        .parent()
        .expect("binary directory")
        .join(name);
    assert!(
        exe.is_file(),
        "{} is missing: build it first with `cargo build --release --workspace --bins` \
         (scripts/test.sh does)",
        exe.display()
    );
    exe
}

fn astrid(home: &Path, args: &[&str]) -> Output {
    Command::new(sibling("astrid"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env("ASTRID_DAEMON", sibling("astrid-daemon"))
        .env_remove("ASTRID_PRINCIPAL")
        .output()
        .expect("running astrid")
}

fn emit(home: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_astrid-emit"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env("ASTRID_DAEMON", sibling("astrid-daemon"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting astrid-emit");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("waiting for astrid-emit")
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// Stops the daemon, also when an assertion fails.
struct StopDaemon(PathBuf);

impl Drop for StopDaemon {
    fn drop(&mut self) {
        let _ = astrid(&self.0, &["stop"]);
    }
}

#[test]
fn lines_reach_a_real_daemon_and_its_capsule() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");

    // Nothing runs yet: --no-start says so instead of starting one.
    let refused = emit(&home, &["--no-start"], "{\"topic\":\"echo.v1.request\"}\n");
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.starts_with("error: "), "{why}");
    assert!(
        refused.stdout.is_empty(),
        "nothing was sent, nothing printed"
    );

    // The first emit starts the daemon itself, as a user's first command would.
    let started = emit(&home, &[], "{\"topic\":\"nobody.v1.here\",\"payload\":1}\n");
    let _stop = StopDaemon(home.clone());
    let first = lines(&started);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["topic"], "nobody.v1.here");
    let why = first[0]["error"].as_str().unwrap();
    assert!(why.contains("nobody is subscribed"), "{why}");
    assert!(!started.status.success(), "a failed line fails the run");

    let echo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../capsules/echo");
    let installed = astrid(&home, &["capsule", "install", echo.to_str().unwrap()]);
    assert!(
        installed.status.success(),
        "installing echo: {}",
        String::from_utf8_lossy(&installed.stderr)
    );

    let input = [
        r#"{"topic": "echo.v1.request", "payload": {"n": 1}}"#,
        r#"{"topic": "echo.v1.forward", "payload": "passed on"}"#,
        "",
        "this is not json",
        r#"{"topic": "echo.v1.whoami", "payload": {}}"#,
        r#"{"topic": "echo.v1.out", "payload": "mine", "request": false}"#,
        r#"{"topic": "Not A Topic", "payload": 1}"#,
        r#"{"topic": "echo.v1.request", "payload": "last", "timeout_ms": 10000}"#,
    ]
    .join("\n");
    let out = emit(&home, &["--subscribe", "echo.v1.out"], &input);
    assert!(!out.status.success(), "two lines failed");
    let printed = lines(&out);
    let (events, answers): (Vec<&Value>, Vec<&Value>) =
        printed.iter().partition(|l| l.get("event").is_some());

    // One answer per non-blank line, in input order.
    assert_eq!(answers.len(), 7, "{printed:?}");
    assert_eq!(
        answers[0],
        &json!({"topic": "echo.v1.request", "reply": {"n": 1}})
    );
    assert_eq!(
        answers[1],
        &json!({"topic": "echo.v1.forward", "reply": "ok"})
    );
    assert!(answers[2].get("topic").is_none());
    let bad = answers[2]["error"].as_str().unwrap();
    assert!(bad.contains("line 4"), "names the line: {bad}");
    assert_eq!(answers[3]["topic"], "echo.v1.whoami");
    let who = &answers[3]["reply"];
    assert_eq!(who["principal"], "default", "{who}");
    assert_eq!(who["capsule"], "echo", "{who}");
    assert!(
        who["source"].as_str().unwrap().starts_with("client:"),
        "{who}"
    );
    assert_eq!(
        answers[4],
        &json!({"topic": "echo.v1.out", "published": true})
    );
    assert!(answers[5].get("error").is_some(), "{:?}", answers[5]);
    assert_eq!(
        answers[6],
        &json!({"topic": "echo.v1.request", "reply": "last"})
    );

    // The capsule's re-publication reached the subscription before the input ended, and was
    // printed rather than cut off at exit; so was this connection's own publication.
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["source"].as_str().unwrap(),
                e["payload"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(seen.contains(&("capsule:echo", "passed on")), "{printed:?}");
    assert_eq!(seen.len(), 2, "{printed:?}");

    // A principal that does not exist is refused by the daemon, not created.
    let ghost = emit(
        &home,
        &["--principal", "ghost"],
        "{\"topic\":\"echo.v1.request\"}\n",
    );
    assert!(!ghost.status.success());
    let why = String::from_utf8_lossy(&ghost.stderr);
    assert!(why.contains("ghost"), "{why}");
    assert!(!home.join("principals/ghost").exists());
}
