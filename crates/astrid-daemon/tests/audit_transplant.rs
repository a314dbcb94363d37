//! A principal whose audit chain cannot be vouched for (here: another principal's chain
//! copied over it) gets a clear error for its audited effects, while the daemon boots and
//! keeps serving everyone else. The copied chain fails verification naming both principals.

mod common;

use astrid_audit::{head_path, log_path, verify, VerifyFailure};
use astrid_client::Client;
use astrid_crypto::{PublicKey, RUNTIME_PUB_FILE};
use astrid_types::PrincipalId;
use common::{ask, install, refused, Capsule, TestHome};
use serde_json::{json, Value};

async fn read(c: &Client, path: &str) -> Value {
    let op = json!({ "op": "read", "path": path }).to_string();
    serde_json::from_str(&ask(c, "fsprobe.v1.op", op.as_bytes()).await).unwrap()
}

#[tokio::test]
async fn a_transplanted_chain_fails_for_its_principal_only() {
    let home = TestHome::new();
    let (default, alice) = (
        PrincipalId::default_local(),
        PrincipalId::new("alice").unwrap(),
    );
    std::fs::create_dir_all(home.home.principal_dir(&alice)).unwrap();
    let mut daemon = home.start().await;
    let d = daemon.client().await;
    install(&d, Capsule::FsProbe).await;
    let a = Client::connect(&home.home, "alice", "test").await.unwrap();
    install(&a, Capsule::FsProbe).await;
    // One audited decision in each chain.
    for c in [&d, &a] {
        let reply = read(c, "~/data/../outside.txt").await;
        assert!(
            reply["err"].as_str().unwrap().starts_with("denied: "),
            "{reply}"
        );
    }
    daemon.kill();

    let (default_log, alice_log) = (
        log_path(&home.home.principals_dir(), &default),
        log_path(&home.home.principals_dir(), &alice),
    );
    std::fs::copy(&alice_log, &default_log).unwrap();
    std::fs::copy(head_path(&alice_log), head_path(&default_log)).unwrap();
    let key: PublicKey = std::fs::read_to_string(home.home.keys_dir().join(RUNTIME_PUB_FILE))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let err = verify(&default_log, &key, &default).unwrap_err();
    assert!(
        matches!(&err.reason, VerifyFailure::WrongPrincipal { found, expected }
            if found == "alice" && expected == "default"),
        "{err}"
    );
    let before = std::fs::read(&default_log).unwrap();
    let alice_entries = verify(&alice_log, &key, &alice).unwrap().entries;

    // The daemon boots; alice is served and audited as before.
    let daemon = home.start().await;
    let d = daemon.client().await;
    let a = Client::connect(&home.home, "alice", "test").await.unwrap();
    let reply = read(&a, "~/data/../outside.txt").await;
    assert!(
        reply["err"].as_str().unwrap().starts_with("denied: "),
        "{reply}"
    );
    assert_eq!(
        verify(&alice_log, &key, &alice).unwrap().entries,
        alice_entries + 1
    );

    // default's audited effects fail with an error naming its chain and the intruder.
    let op = json!({ "op": "read", "path": "~/data/x.txt" }).to_string();
    let err = refused(&d, "fsprobe.v1.op", op.as_bytes())
        .await
        .to_string();
    assert!(
        err.contains("audit chain of principal `default`") && err.contains("alice"),
        "{err}\n{}",
        daemon.log()
    );
    // Nothing was appended to the chain it refused.
    assert_eq!(std::fs::read(&default_log).unwrap(), before);
}
