//! `kill -9` while capsules append thousands of audit entries: afterwards the chain verifies
//! and holds an entry for every effect the daemon acknowledged.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use astrid_audit::{log_path, read_entries, verify};
use astrid_crypto::{PublicKey, RUNTIME_PUB_FILE};
use astrid_types::PrincipalId;
use common::{ask, install, request, Capsule, TestHome};
use serde_json::json;

const WRITERS: usize = 6;
/// Acknowledged writes after which the daemon is killed, mid-stream.
const KILL_AFTER: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_audited_effects_survive_kill_9() {
    let home = TestHome::new();
    let mut daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::FsProbe).await;
    std::fs::create_dir_all(home.principal_home().join("data/out")).unwrap();

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let (enough_tx, enough_rx) = tokio::sync::watch::channel(false);
    let enough_tx = Arc::new(enough_tx);
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let c = daemon.client().await;
        let acked = acked.clone();
        let enough_tx = enough_tx.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let path = format!("~/data/out/w{w}-{i}");
                let op = json!({ "op": "write", "path": path, "data": "x" }).to_string();
                // Once the daemon dies, requests fail: that ends this writer.
                let Ok(reply) = request(&c, "fsprobe.v1.op", op.as_bytes()).await else {
                    return;
                };
                assert_eq!(reply, br#"{"ok":true}"#, "{path}");
                let mut a = acked.lock().unwrap();
                a.push(path);
                if a.len() >= KILL_AFTER {
                    let _ = enough_tx.send(true);
                }
            }
        }));
    }
    let mut enough_rx = enough_rx;
    enough_rx.wait_for(|e| *e).await.unwrap();
    daemon.kill();
    for w in writers {
        w.await.unwrap();
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(acked.len() >= KILL_AFTER);

    // A restart recovers the chain (a torn, never-acknowledged tail is cut) on first use.
    let daemon = home.start().await;
    let c = daemon.client().await;
    let stat = json!({ "op": "stat", "path": "~/data/out" }).to_string();
    let reply = ask(&c, "fsprobe.v1.op", stat.as_bytes()).await;
    assert!(reply.contains("\"ok\""), "{reply}");

    let chain = log_path(&home.home.principals_dir(), &PrincipalId::default_local());
    let key_text = std::fs::read_to_string(home.home.keys_dir().join(RUNTIME_PUB_FILE)).unwrap();
    let key: PublicKey = key_text.trim().parse().unwrap();
    let report = verify(&chain, &key, &PrincipalId::default_local())
        .unwrap_or_else(|e| panic!("chain broken: {e}"));
    let recorded: HashSet<String> = read_entries(&chain)
        .unwrap()
        .map(|e| e.unwrap().entry)
        .filter(|e| e.action == "fs.write")
        .map(|e| e.resource)
        .collect();
    let missing: Vec<&String> = acked.iter().filter(|p| !recorded.contains(*p)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes have no audit entry (of {}), e.g. {:?}; report {report:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
}
