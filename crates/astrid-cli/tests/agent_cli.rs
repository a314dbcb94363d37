//! The agent-facing commands where they must work without a daemon: `doctor` on a fresh
//! machine diagnoses without starting one, and `init` refuses a missing distro before
//! touching anything.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

use std::path::Path;
use std::process::{Command, Output};

fn astrid(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_astrid"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("ASTRID_HOME")
        .env_remove("ASTRID_DISTRO")
        .env_remove("ASTRID_PRINCIPAL")
        // If anything tried to start a daemon, it would find none to start.
        .env("ASTRID_DAEMON", "/nonexistent/astrid-daemon")
        .output()
        .expect("running astrid")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn doctor_on_a_fresh_machine_reports_the_daemon_down_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = astrid(&home, &["doctor"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with(&format!(
            "✗ daemon not running ({})\n    fix: astrid start\n",
            home.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("subprocess sandbox"), "{stdout}");
    assert!(
        !home.exists(),
        "doctor must not create the home or start a daemon"
    );
}

#[test]
fn init_with_a_missing_distro_fails_before_starting_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let missing = dir.path().join("no-distro");
    let out = astrid(
        &home,
        &["init", "--yes", "--distro", missing.to_str().unwrap()],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "distro directory {} (from --distro) does not exist",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(!home.exists());
}

#[test]
fn prompt_options_without_a_prompt_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = astrid(dir.path(), &["--yes", "status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--prompt"),
        "{}",
        text(&out.stderr)
    );
    let out = astrid(dir.path(), &["-p", "hi", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot be combined"));
}
