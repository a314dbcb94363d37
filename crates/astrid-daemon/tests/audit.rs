//! The signed audit chain through a real daemon: gate decisions, denials and lifecycle events
//! land in the principal's chain before the effect is acknowledged, the chain verifies with
//! the runtime's public key, and one flipped byte is caught and named.

mod common;

use std::os::unix::fs::PermissionsExt;

use astrid_audit::{log_path, read_entries, verify, AuditEntry, Decision};
use astrid_crypto::{PublicKey, RUNTIME_KEY_FILE, RUNTIME_PUB_FILE};
use astrid_types::wire::ControlCommand;
use astrid_types::{AstridHome, PrincipalId};
use common::{ask, control, install, try_install, Capsule, TestHome};
use serde_json::{json, Value};

fn chain_path(home: &AstridHome) -> std::path::PathBuf {
    log_path(&home.principals_dir(), &PrincipalId::default_local())
}

/// Every entry of the default principal's chain, read while the daemon may still append.
fn entries(home: &AstridHome) -> Vec<AuditEntry> {
    read_entries(&chain_path(home))
        .expect("opening the chain")
        .map(|e| e.expect("reading an entry").entry)
        .collect()
}

fn public_key(home: &AstridHome) -> PublicKey {
    let text = std::fs::read_to_string(home.keys_dir().join(RUNTIME_PUB_FILE)).unwrap();
    text.trim().parse().unwrap()
}

async fn probe(c: &astrid_client::Client, op: Value) -> Value {
    let reply = ask(c, "fsprobe.v1.op", op.to_string().as_bytes()).await;
    serde_json::from_str(&reply).unwrap()
}

#[tokio::test]
async fn fs_decisions_are_recorded_allowed_and_denied() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::FsProbe).await;
    let ph = home.principal_home();
    std::fs::create_dir_all(ph.join("data")).unwrap();
    std::fs::write(ph.join("data/hello.txt"), "inside").unwrap();
    std::fs::write(ph.join("secret.txt"), "secret").unwrap();

    let escape = "~/data/../secret.txt";
    let reply = probe(&c, json!({ "op": "read", "path": escape })).await;
    assert!(
        reply["err"].as_str().unwrap().starts_with("denied: "),
        "{reply}"
    );
    // The reply is back, so the entry must already be durable.
    let denied: Vec<_> = entries(&home.home)
        .into_iter()
        .filter(|e| e.decision == Decision::Denied)
        .collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    let d = &denied[0];
    assert_eq!(
        (d.capsule.as_str(), d.action.as_str(), d.resource.as_str()),
        ("fsprobe", "fs.read", escape)
    );
    assert_eq!(d.principal, PrincipalId::default_local());
    assert!(!d.outcome.is_empty());

    let reply = probe(&c, json!({ "op": "read", "path": "~/data/hello.txt" })).await;
    assert_eq!(reply, json!({ "ok": "inside" }));
    let write = json!({ "op": "write", "path": "~/data/out/new.txt", "data": "x" });
    assert_eq!(probe(&c, write).await, json!({ "ok": true }));
    let write_ro = json!({ "op": "write", "path": "~/data/nope.txt", "data": "x" });
    assert!(probe(&c, write_ro).await["err"]
        .as_str()
        .unwrap()
        .starts_with("denied: "));
    assert!(!ph.join("data/nope.txt").exists());

    let all = entries(&home.home);
    let find = |action: &str, resource: &str, decision: Decision| {
        all.iter()
            .find(|e| e.action == action && e.resource == resource && e.decision == decision)
            .unwrap_or_else(|| panic!("no {decision} {action} {resource} in {all:?}"))
    };
    assert_eq!(
        find("fs.read", "~/data/hello.txt", Decision::Allowed).outcome,
        "ok: 6 bytes"
    );
    find("fs.write", "~/data/out/new.txt", Decision::Allowed);
    find("fs.write", "~/data/nope.txt", Decision::Denied);
    // Sequence numbers are dense from 1: nothing was skipped or reordered.
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
    }
}

#[tokio::test]
async fn ipc_and_kv_denials_are_recorded() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Misbehave).await;
    for handler in ["publish_undeclared", "kv_denied"] {
        let reply = ask(&c, &format!("misbehave.v1.{handler}"), b"").await;
        assert!(reply.starts_with("denied: "), "{handler}: {reply}");
    }
    let all = entries(&home.home);
    let denied = |action: &str| {
        all.iter().any(|e| {
            e.decision == Decision::Denied && e.capsule == "misbehave" && e.action == action
        })
    };
    assert!(denied("ipc.publish"), "{all:?}");
    assert!(
        all.iter()
            .any(|e| e.action == "ipc.publish" && e.resource == "secret.topic"),
        "{all:?}"
    );
    assert!(all.iter().any(|e| e.action.starts_with("kv.")
        && e.decision == Decision::Denied
        && e.capsule == "misbehave"));
}

#[tokio::test]
async fn install_update_and_remove_are_recorded() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;
    try_install(&c, Capsule::EchoV2, true).await.unwrap();
    control(
        &c,
        ControlCommand::Remove {
            name: "echo".into(),
        },
    )
    .await
    .unwrap();
    let kinds: Vec<(String, String, Decision)> = entries(&home.home)
        .into_iter()
        .filter(|e| e.capsule == "kernel" && e.action.starts_with("capsule."))
        .map(|e| (e.action, e.resource, e.decision))
        .collect();
    let echo = || "capsule:echo".to_string();
    assert_eq!(
        kinds,
        vec![
            ("capsule.install".into(), echo(), Decision::Recorded),
            ("capsule.update".into(), echo(), Decision::Recorded),
            ("capsule.remove".into(), echo(), Decision::Recorded),
        ]
    );
    let update = entries(&home.home)
        .into_iter()
        .find(|e| e.action == "capsule.update")
        .unwrap();
    assert!(
        update.outcome.contains("0.2.0") && update.outcome.contains("replaces"),
        "{}",
        update.outcome
    );
}

#[tokio::test]
async fn the_chain_verifies_and_a_flipped_byte_is_named() {
    let home = TestHome::new();
    let mut daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::FsProbe).await;
    for path in ["~/data/../x", "~/data/a.txt", "/etc/passwd"] {
        probe(&c, json!({ "op": "read", "path": path })).await;
    }
    let key_file = home.home.keys_dir().join(RUNTIME_KEY_FILE);
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the runtime key must be private");
    let secret = std::fs::read(&key_file).unwrap();
    daemon.kill();
    assert!(
        !daemon.log().contains(&hex(&secret)),
        "the daemon printed its secret key"
    );

    let path = chain_path(&home.home);
    let key = public_key(&home.home);
    let report =
        verify(&path, &key, &PrincipalId::default_local()).expect("an untouched chain verifies");
    let n = entries(&home.home).len() as u64;
    assert!(n >= 4, "install and three reads, got {n}");
    assert_eq!((report.entries, report.last_seq), (n, n));

    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let err = verify(&path, &key, &PrincipalId::default_local())
        .expect_err("a flipped byte must be caught");
    assert_eq!(err.seq, Some(n), "{err}");
    assert!(err.to_string().contains(&format!("entry {n}")), "{err}");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A kv write is a gated effect on the principal's data: each one is in the chain, as
/// allowed, before the capsule hears it succeeded. Reads of the capsule's own namespace are
/// not effects and are not recorded.
#[tokio::test]
async fn kv_writes_are_recorded_reads_are_not() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Counter).await;
    let before = entries(&home.home).len();
    for _ in 0..3 {
        ask(&c, "counter.v1.incr", b"").await;
    }
    assert_eq!(ask(&c, "counter.v1.get", b"").await, "3");
    let new: Vec<AuditEntry> = entries(&home.home).into_iter().skip(before).collect();
    let writes: Vec<&AuditEntry> = new
        .iter()
        .filter(|e| e.capsule == "counter" && e.action == "kv.compare-and-swap")
        .collect();
    assert_eq!(writes.len(), 3, "{new:?}");
    assert!(writes.iter().all(|e| e.decision == Decision::Allowed));
    assert!(
        !new.iter().any(|e| e.action == "kv.get"),
        "reads are not recorded: {new:?}"
    );
}

/// Outbound HTTP and subprocesses need the manifest first: a capsule that declares neither
/// is refused before any token, human or network is consulted, and the refusal is recorded.
#[tokio::test]
async fn http_and_process_outside_the_manifest_are_denied_and_recorded() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Misbehave).await;
    let http = ask(&c, "misbehave.v1.http_denied", b"").await;
    assert!(
        http.contains("denied") && http.contains("declares no [capabilities] net"),
        "{http}"
    );
    let run = ask(&c, "misbehave.v1.process_denied", b"").await;
    assert!(
        run.contains("denied") && run.contains("does not declare `sh` in [capabilities] process"),
        "{run}"
    );
    let all = entries(&home.home);
    let denied = |action: &str, resource: &str| {
        all.iter().any(|e| {
            e.decision == Decision::Denied
                && e.capsule == "misbehave"
                && e.action == action
                && e.resource == resource
        })
    };
    assert!(denied("http.request", "https://example.com/"), "{all:?}");
    assert!(denied("process.run", "process:exec:sh"), "{all:?}");
}
