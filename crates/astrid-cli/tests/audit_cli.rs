//! `astrid audit` against a real chain written by `astrid-audit` with a real runtime key:
//! verify passes on the intact chain and names the damaged entry after one flipped byte.

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
    let key = Arc::new(KeyPair::load_or_create(&home.keys_dir()).unwrap());
    let alice = PrincipalId::new("alice").unwrap();
    let path = log_path(&home.principals_dir(), &alice);
    let log = AuditLog::open(&path, alice, key).unwrap();
    for i in 1..=5 {
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
    (dir, home, path)
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
