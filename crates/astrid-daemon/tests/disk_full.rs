//! A full disk under `ASTRID_HOME` during audited effects (issue 15, "Faults"): the home is a
//! small tmpfs, a filler file takes every free block, and capsules keep asking for audited
//! effects. An effect whose entry cannot be written is refused with a clear error and does not
//! happen; nothing is ever performed without its entry; the daemon keeps answering; and once
//! space returns the same effects succeed, are recorded, and the chain verifies.
//!
//! The effect tried on the full disk is `fs.remove` of an empty file: it needs no free space
//! and frees none, so when the remove is refused it is because its audit entry could not be
//! written, and when it is performed its entry must be in the chain.
//!
//! Needs root (or CAP_SYS_ADMIN) to mount the tmpfs. Without it the test fails, saying so; it
//! does not skip.
#![allow(
    clippy::disallowed_methods,
    reason = "the test mounts a filesystem and drives a real daemon"
)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use astrid_audit::{log_path, verify, AuditEntry, Decision};
use astrid_client::Client;
use astrid_crypto::{PublicKey, RUNTIME_PUB_FILE};
use astrid_types::wire::{ControlCommand, ControlResponse};
use astrid_types::{AstridHome, PrincipalId};
use common::{ask, assert_echo_serves, control, install, request, status, Capsule, TestHome};
use serde_json::{json, Value};

/// Room for the keys, the store, the capsules and the chain; small enough to fill at once.
const TMPFS_SIZE: &str = "64m";
/// Removes tried on the full disk before the chain must have needed a new block (an entry is
/// a few hundred bytes; a tmpfs block is a page).
const ATTEMPTS: usize = 64;
/// `ENOSPC` on Linux.
const ENOSPC: i32 = 28;

/// A tmpfs mounted over a directory for the test's lifetime, unmounted on drop (also when the
/// test panics).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0700"))
            .arg("tmpfs")
            .arg(dir)
            .output()
            .unwrap_or_else(|e| panic!("running mount(8): {e}"));
        assert!(
            out.status.success(),
            "this test needs to mount a tmpfs over {} (run it as root or with CAP_SYS_ADMIN); \
             mount said ({}): {}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = |args: &[&str]| {
            Command::new("umount")
                .args(args)
                .arg(&self.0)
                .status()
                .is_ok_and(|s| s.success())
        };
        // The daemon is killed first, but it and its prepared launchers (which hold a FIFO
        // under `run/` until they read its end) may take a moment to go: retry, then detach
        // lazily.
        for _ in 0..20 {
            if ok(&[]) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if !ok(&["-l"]) {
            eprintln!("could not unmount the tmpfs at {}", self.0.display());
        }
    }
}

/// Writes `path` until the filesystem has no free block left, and proves it: a further
/// one-block write elsewhere fails with `ENOSPC`.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).expect("creating the filler");
    for chunk in [1 << 20, 4096, 1] {
        let buf = vec![0xa5u8; chunk];
        loop {
            match f.write(&buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    let probe = path.with_extension("probe");
    let err = std::fs::write(&probe, vec![0u8; 4096]).expect_err("the filesystem is full");
    assert_eq!(err.raw_os_error(), Some(ENOSPC), "{err}");
    std::fs::remove_file(&probe).expect("removing the probe");
}

fn entries(home: &AstridHome) -> Vec<AuditEntry> {
    common::chain(home, "default")
}

fn recorded(all: &[AuditEntry], action: &str, resource: &str) -> usize {
    all.iter()
        .filter(|e| {
            e.capsule == "fsprobe"
                && e.action == action
                && e.resource == resource
                && e.decision == Decision::Allowed
        })
        .count()
}

async fn probe(c: &Client, op: Value) -> Value {
    let reply = ask(c, "fsprobe.v1.op", op.to_string().as_bytes()).await;
    serde_json::from_str(&reply).unwrap()
}

async fn remove(c: &Client, guest: &str) -> Value {
    probe(c, json!({ "op": "remove", "path": guest })).await
}

fn verify_chain(home: &AstridHome) -> u64 {
    let key: PublicKey = std::fs::read_to_string(home.keys_dir().join(RUNTIME_PUB_FILE))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let default = PrincipalId::default_local();
    let report = verify(&log_path(&home.principals_dir(), &default), &key, &default)
        .unwrap_or_else(|e| panic!("the chain does not verify: {e}"));
    report.entries
}

#[tokio::test]
async fn a_full_disk_refuses_audited_effects_and_the_daemon_recovers() {
    let home = TestHome::new();
    let _tmpfs = Tmpfs::mount(home.home.root(), TMPFS_SIZE);
    let mut daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::FsProbe).await;
    install(&c, Capsule::Echo).await;
    install(&c, Capsule::Counter).await;
    let out = home.principal_home().join("data/out");
    std::fs::create_dir_all(&out).unwrap();
    let victims: Vec<String> = (0..ATTEMPTS).map(|i| format!("v{i}")).collect();
    // Empty: removing one frees no block the chain could then use.
    for v in &victims {
        std::fs::write(out.join(v), "").unwrap();
    }
    // Every lazily opened piece (the chain, its head slots, the store) is in use before the
    // disk fills.
    std::fs::write(out.join("warm"), "x").unwrap();
    assert_eq!(remove(&c, "~/data/out/warm").await, json!({ "ok": true }));
    assert_eq!(ask(&c, "counter.v1.incr", b"").await, "1");

    let filler = home.home.root().join("filler");
    fill(&filler);

    // Remove one victim after another until the chain needs a block it cannot get. A remove
    // that went through has its entry; the one refused is still there and has none.
    let mut refused = None;
    for v in &victims {
        let guest = format!("~/data/out/{v}");
        let reply = remove(&c, &guest).await;
        let all = entries(&home.home);
        if reply == json!({ "ok": true }) {
            assert!(
                !out.join(v).exists(),
                "{guest} reported removed but is there"
            );
            assert_eq!(
                recorded(&all, "fs.remove", &guest),
                1,
                "{guest} removed unaudited"
            );
            continue;
        }
        let err = reply["err"].as_str().unwrap_or_default();
        assert!(
            err.starts_with("denied: the audit trail is unavailable")
                && err.contains("No space left on device"),
            "a remove on the full disk failed for another reason than its entry: {reply}\n{}",
            daemon.log()
        );
        assert!(out.join(v).exists(), "{guest} was removed although refused");
        assert_eq!(recorded(&all, "fs.remove", &guest), 0, "{all:?}");
        refused = Some((guest, v.clone()));
        break;
    }
    let (refused, name) = refused.unwrap_or_else(|| {
        panic!("{ATTEMPTS} removes on a full disk all got their entries written; is it full?")
    });

    // Still full: the same effect is refused again, and a kv write is either refused (and
    // not stored) or recorded.
    let again = remove(&c, &refused).await;
    assert!(
        again["err"].as_str().is_some_and(|e| e.contains("audit")),
        "{again}"
    );
    let before = entries(&home.home)
        .iter()
        .filter(|e| e.action == "kv.compare-and-swap")
        .count();
    match request(&c, "counter.v1.incr", b"").await {
        Ok(n) => {
            assert_eq!(n, b"2");
            let after = entries(&home.home)
                .iter()
                .filter(|e| e.action == "kv.compare-and-swap")
                .count();
            assert_eq!(after, before + 1, "a kv write was stored unaudited");
        }
        Err(e) => {
            eprintln!("kv write on the full disk refused: {e}");
            assert_eq!(
                ask(&c, "counter.v1.get", b"").await,
                "1",
                "stored though refused"
            );
        }
    }
    let count_before_recovery: u64 = ask(&c, "counter.v1.get", b"").await.parse().unwrap();

    // The daemon still answers. Capsules without audited effects serve as before; a control
    // command (each is recorded before it runs) either runs and is recorded or is refused
    // saying why.
    assert_echo_serves(&c).await;
    let before = entries(&home.home).len();
    match control(&c, ControlCommand::Status).await {
        Ok(ControlResponse::Status(_)) => {
            let all = entries(&home.home);
            assert!(
                all[before..].iter().any(|e| e.action == "control.status"),
                "status ran unaudited: {all:?}"
            );
        }
        Ok(other) => panic!("expected Status, got {other:?}"),
        Err(e) => assert!(
            e.contains("not run: the decision could not be recorded")
                && e.contains("No space left on device"),
            "{e}"
        ),
    }

    // Space returns: the refused effect now goes through and is recorded, as do new ones.
    std::fs::remove_file(&filler).unwrap();
    status(&c).await;
    assert_eq!(
        remove(&c, &refused).await,
        json!({ "ok": true }),
        "{}",
        daemon.log()
    );
    assert!(
        !out.join(&name).exists(),
        "{refused} reported removed but is there"
    );
    let write = json!({ "op": "write", "path": "~/data/out/after.txt", "data": "back" });
    assert_eq!(probe(&c, write).await, json!({ "ok": true }));
    assert_eq!(
        std::fs::read_to_string(out.join("after.txt")).unwrap(),
        "back"
    );
    assert_eq!(
        ask(&c, "counter.v1.incr", b"").await,
        (count_before_recovery + 1).to_string()
    );
    let all = entries(&home.home);
    assert_eq!(recorded(&all, "fs.remove", &refused), 1, "{all:?}");
    assert_eq!(recorded(&all, "fs.write", "~/data/out/after.txt"), 1);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "sequence numbers are dense");
    }
    assert_eq!(verify_chain(&home.home), all.len() as u64);

    // And the chain reopens after a restart: nothing the full disk left behind is refused.
    // (Shut down rather than killed, here and at the end, so no launcher the daemon had
    // prepared is left holding a FIFO on the tmpfs.)
    shut_down(&mut daemon, c).await;
    let mut daemon = home.start().await;
    let c = daemon.client().await;
    std::fs::write(out.join("last"), "x").unwrap();
    assert_eq!(remove(&c, "~/data/out/last").await, json!({ "ok": true }));
    // The restart's own entries (control commands) come after the last one checked above.
    assert!(verify_chain(&home.home) > all.len() as u64);
    assert_eq!(
        recorded(&entries(&home.home), "fs.remove", "~/data/out/last"),
        1
    );
    shut_down(&mut daemon, c).await;
}

async fn shut_down(daemon: &mut common::Daemon, c: Client) {
    match control(&c, ControlCommand::Shutdown).await {
        Ok(ControlResponse::ShuttingDown) => {}
        other => panic!("expected ShuttingDown, got {other:?}\n{}", daemon.log()),
    }
    drop(c);
    let exit = daemon.wait_exit().await;
    assert!(exit.success(), "{exit}\n{}", daemon.log());
}
