//! `astrid audit` against a real chain written by `astrid-audit` with a real runtime key:
//! verify passes on the intact chain and names the damaged entry after one flipped byte; a
//! chain copied from another principal fails verify, export and show; a torn tail is
//! reported; a witness catches a rollback of both files.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

use std::process::{Command, Output};
use std::sync::Arc;

use astrid_audit::{log_path, AuditLog, Decision, NewEntry};
use astrid_crypto::KeyPair;
use astrid_types::{AstridHome, PrincipalId};

fn astrid(home: &AstridHome, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_astrid"))
        .arg("--home")
        .arg(home.root())
        .args(args)
        .env_remove("ASTRID_HOME")
        .output()
        .expect("running astrid")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A home with a runtime key and five entries in `alice`'s chain.
fn chain() -> (tempfile::TempDir, AstridHome, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = AstridHome::new(dir.path().join("home"));
    let path = add_chain(&home, "alice", 5);
    (dir, home, path)
}

/// Appends `n` entries to `principal`'s chain in `home`, signed with the home's runtime key.
fn add_chain(home: &AstridHome, principal: &str, n: u64) -> std::path::PathBuf {
    let key = Arc::new(KeyPair::load_or_create(&home.keys_dir()).unwrap());
    let principal = PrincipalId::new(principal).unwrap();
    let path = log_path(&home.principals_dir(), &principal);
    let log = open_when_unlocked(&path, principal, key);
    for i in log.last_seq() + 1..=log.last_seq() + n {
        let decision = if i == 3 {
            Decision::Denied
        } else {
            Decision::Allowed
        };
        log.append(NewEntry::new(
            "fsprobe",
            "fs.read",
            format!("~/data/{i}.txt"),
            decision,
            format!("outcome {i}"),
        ))
        .unwrap();
    }
    drop(log);
    path
}

/// Opens the chain, waiting out a lock held for a moment by nobody in this test: the tests
/// of this file run in parallel and spawn the CLI, and a child forked by another test holds a
/// copy of every open descriptor (the chain's locked one too) until it execs.
fn open_when_unlocked(path: &std::path::Path, p: PrincipalId, key: Arc<KeyPair>) -> AuditLog {
    let mut tries = 0;
    loop {
        match AuditLog::open(path, p.clone(), key.clone()) {
            Err(astrid_audit::AuditError::Locked(_)) if tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other.unwrap(),
        }
    }
}

#[test]
fn verify_show_and_export_an_intact_chain() {
    let (_dir, home, _) = chain();
    let out = astrid(&home, &["--principal", "alice", "audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("intact: 5 entries"),
        "{}",
        text(&out.stdout)
    );

    let out = astrid(&home, &["--principal", "alice", "audit", "show"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert_eq!(shown.lines().count(), 5, "{shown}");
    let third = shown.lines().nth(2).unwrap();
    assert!(
        third.contains("denied") && third.contains("fsprobe") && third.contains("~/data/3.txt"),
        "{third}"
    );

    let out = astrid(&home, &["--principal", "alice", "audit", "show", "--json"]);
    let first: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["action"], "fs.read");

    let out = astrid(&home, &["--principal", "alice", "audit", "export"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6, "five entries and the head");
    assert_eq!(lines[5]["type"], "head");
    assert_eq!(lines[5]["seq"], 5);
}

#[test]
fn verify_names_the_entry_with_a_flipped_byte() {
    let (_dir, home, path) = chain();
    let mut bytes = std::fs::read(&path).unwrap();
    // The last byte belongs to the last record (entry 5).
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let out = astrid(&home, &["--principal", "alice", "audit", "verify"]);
    assert!(!out.status.success(), "tampering went unnoticed");
    let err = text(&out.stderr);
    assert!(
        err.contains("NOT intact") && err.contains("entry 5"),
        "{err}"
    );
}

#[test]
fn a_principal_without_a_chain_is_an_error() {
    let (_dir, home, _) = chain();
    let out = astrid(&home, &["--principal", "nobody", "audit", "verify"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("has no audit log"));
}

#[test]
fn a_chain_copied_from_another_principal_fails_verify_export_and_show() {
    let (_dir, home, alice_log) = chain();
    let default_log = add_chain(&home, "default", 3);
    let ok = astrid(&home, &["--principal", "default", "audit", "verify"]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));

    // alice's intact chain, signed by the same runtime key, copied over default's.
    std::fs::copy(&alice_log, &default_log).unwrap();
    std::fs::copy(
        astrid_audit::head_path(&alice_log),
        astrid_audit::head_path(&default_log),
    )
    .unwrap();
    for cmd in ["verify", "export", "show"] {
        let out = astrid(&home, &["--principal", "default", "audit", cmd]);
        let err = text(&out.stderr);
        assert!(
            !out.status.success(),
            "{cmd} accepted the transplant: {}",
            text(&out.stdout)
        );
        assert!(
            err.contains("`alice`") && err.contains("`default`"),
            "{cmd} must name both principals: {err}"
        );
        assert!(
            !text(&out.stdout).contains("\"type\":\"entry\""),
            "{cmd} handed out alice's entries as default's"
        );
    }
    let out = astrid(&home, &["--principal", "default", "audit", "verify"]);
    assert!(
        text(&out.stderr).contains("NOT intact"),
        "{}",
        text(&out.stderr)
    );
    // alice's own chain is still hers.
    let out = astrid(&home, &["--principal", "alice", "audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn verify_reports_a_torn_tail() {
    let (_dir, home, path) = chain();
    let mut bytes = std::fs::read(&path).unwrap();
    // The first 37 bytes of a record: what a crash in the middle of an append leaves.
    let partial = bytes[16..16 + 37].to_vec();
    bytes.extend_from_slice(&partial);
    std::fs::write(&path, bytes).unwrap();
    let out = astrid(&home, &["--principal", "alice", "audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("intact: 5 entries") && said.contains("torn tail: 37 bytes"),
        "{said}"
    );
}

#[test]
fn a_witness_catches_a_rollback_of_both_files() {
    let (_dir, home, path) = chain();
    let head = astrid_audit::head_path(&path);
    let (old_log, old_head) = (std::fs::read(&path).unwrap(), std::fs::read(&head).unwrap());
    add_chain(&home, "alice", 3);
    let out = astrid(&home, &["--principal", "alice", "audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    let witness = said
        .lines()
        .find_map(|l| l.strip_prefix("witness "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no witness printed: {said}"))
        .to_owned();
    assert!(witness.starts_with("8:"), "{witness}");

    std::fs::write(&path, old_log).unwrap();
    std::fs::write(&head, old_head).unwrap();
    let out = astrid(&home, &["--principal", "alice", "audit", "verify"]);
    assert!(
        out.status.success(),
        "the documented limit: old files alone verify"
    );
    let out = astrid(
        &home,
        &[
            "--principal",
            "alice",
            "audit",
            "verify",
            "--witness",
            &witness,
        ],
    );
    assert!(!out.status.success(), "the rollback went unnoticed");
    let err = text(&out.stderr);
    assert!(
        err.contains("the witness recorded entry 8 but the chain ends at entry 5"),
        "{err}"
    );
}

#[test]
fn a_reader_that_stops_early_ends_show_quietly() {
    // Enough entries that `show` is still writing when the reader has gone (a pipe holds
    // 64 KiB): `astrid audit show | head -1`.
    let dir = tempfile::tempdir().unwrap();
    let home = AstridHome::new(dir.path().join("home"));
    add_chain(&home, "alice", 1500);
    let mut child = Command::new(env!("CARGO_BIN_EXE_astrid"))
        .arg("--home")
        .arg(home.root())
        .args(["--principal", "alice", "audit", "show"])
        .env_remove("ASTRID_HOME")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(stderr.is_empty(), "no panic, no backtrace hint: {stderr}");
}
