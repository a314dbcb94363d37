//! Principals (tenants) on one daemon: each has its own key-value store, its own `~`, its own
//! events, and its own crash announcements. A principal exists when its directory does; it
//! reaches the capsules installed for it.

mod common;

use astrid_client::Client;
use astrid_types::PrincipalId;
use common::{ask, install, next_event, Capsule, Daemon, TestHome};
use serde_json::{json, Value};

/// A daemon with echo, counter and fsprobe, and clients for `default` and `alice`.
async fn fixture() -> (TestHome, Daemon, Client, Client) {
    let home = TestHome::new();
    let alice: PrincipalId = "alice".parse().unwrap();
    std::fs::create_dir_all(home.home.principal_dir(&alice)).unwrap();
    let daemon = home.start().await;
    let d = daemon.client().await;
    let a = Client::connect(&home.home, "alice", "test").await.unwrap();
    // Installed for each principal: one artifact, an instance each.
    for c in [Capsule::Echo, Capsule::Counter, Capsule::FsProbe] {
        install(&d, c).await;
        install(&a, c).await;
    }
    (home, daemon, d, a)
}

#[tokio::test]
async fn each_principal_has_its_own_store_and_identity() {
    let (_home, _daemon, d, a) = fixture().await;
    assert_eq!(ask(&d, "counter.v1.incr", b"").await, "1");
    assert_eq!(ask(&d, "counter.v1.incr", b"").await, "2");
    assert_eq!(ask(&a, "counter.v1.incr", b"").await, "1");
    assert_eq!(ask(&d, "counter.v1.get", b"").await, "2");
    assert_eq!(ask(&a, "counter.v1.get", b"").await, "1");

    let who: Value = serde_json::from_str(&ask(&a, "echo.v1.whoami", b"").await).unwrap();
    assert_eq!(who["principal"], "alice");
    assert_eq!(who["source"], format!("client:{}", a.connection_id()));
    // Capsule-to-capsule requests stay within the caller's principal.
    assert_eq!(ask(&a, "counter.v1.relay", b"alice's").await, "alice's");
}

#[tokio::test]
async fn each_principal_has_its_own_home_directory() {
    let (home, _daemon, d, a) = fixture().await;
    let write = |data: &str| json!({ "op": "write", "path": "~/data/out/who.txt", "data": data });
    let ok = json!({ "ok": true });
    assert_eq!(
        ask(&a, "fsprobe.v1.op", write("alice").to_string().as_bytes()).await,
        ok.to_string()
    );
    assert_eq!(
        ask(&d, "fsprobe.v1.op", write("default").to_string().as_bytes()).await,
        ok.to_string()
    );

    let alice: PrincipalId = "alice".parse().unwrap();
    let in_home = |p: &PrincipalId| home.home.principal_home(p).join("data/out/who.txt");
    assert_eq!(std::fs::read_to_string(in_home(&alice)).unwrap(), "alice");
    assert_eq!(
        std::fs::read_to_string(in_home(&PrincipalId::default_local())).unwrap(),
        "default"
    );
    // And alice cannot reach the default principal's home by path.
    let escape = json!({ "op": "read", "path": "~/../../default/home/data/out/who.txt" });
    let reply: Value =
        serde_json::from_str(&ask(&a, "fsprobe.v1.op", escape.to_string().as_bytes()).await)
            .unwrap();
    assert!(
        reply["err"].as_str().unwrap().starts_with("denied: "),
        "{reply}"
    );
}

#[tokio::test]
async fn events_and_crash_reports_stay_within_their_principal() {
    let (_home, _daemon, d, a) = fixture().await;
    install(&d, Capsule::Misbehave).await;
    install(&a, Capsule::Misbehave).await;
    let mut d_out = d.subscribe("echo.v1.out").await.unwrap();
    let mut d_errors = d.subscribe("astrid.v1.capsule.error").await.unwrap();
    let mut a_out = a.subscribe("echo.v1.out").await.unwrap();
    let mut a_errors = a.subscribe("astrid.v1.capsule.error").await.unwrap();

    // alice's events reach alice...
    assert_eq!(ask(&a, "echo.v1.forward", b"for alice").await, "ok");
    assert_eq!(next_event(&mut a_out).await.payload, b"for alice");
    assert!(common::request(&a, "misbehave.v1.panic", b"")
        .await
        .is_err());
    let crash: Value = serde_json::from_slice(&next_event(&mut a_errors).await.payload).unwrap();
    assert_eq!(crash["principal"], "alice");

    // ...and not the default principal, whose first events are its own, sent afterwards.
    assert_eq!(ask(&d, "echo.v1.forward", b"for default").await, "ok");
    let ev = next_event(&mut d_out).await;
    assert_eq!(
        (ev.payload.as_slice(), ev.principal.as_str()),
        (&b"for default"[..], "default")
    );
    assert!(common::request(&d, "misbehave.v1.panic", b"")
        .await
        .is_err());
    let crash: Value = serde_json::from_slice(&next_event(&mut d_errors).await.payload).unwrap();
    assert_eq!(crash["principal"], "default");
}
