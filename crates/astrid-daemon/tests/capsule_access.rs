//! Capsule access is enforced at dispatch: a principal invokes only the capsules installed
//! for (granted to) it. Tried as an attacker would: alice asks for bob's capsule directly,
//! and through a capsule of her own; each is a typed denial with an entry in alice's chain,
//! and bob's data is unchanged. Two principals installing the same bytes share one artifact
//! and keep separate instances; install, update and remove land in the chain of every
//! principal affected.

mod common;

use astrid_audit::{AuditEntry as Entry, Decision};
use astrid_client::{Client, ClientError};
use astrid_types::wire::{ControlCommand, ControlResponse, RequestError};
use astrid_types::AstridHome;
use common::{ask, chain, control, install, list, request, try_install, upload, Capsule, TestHome};

fn entries<'a>(chain: &'a [Entry], action: &str, capsule: &str) -> Vec<&'a Entry> {
    let resource = format!("capsule:{capsule}");
    chain
        .iter()
        .filter(|e| e.action == action && e.resource == resource)
        .collect()
}

fn denied(r: Result<Vec<u8>, ClientError>) -> String {
    match r {
        Err(ClientError::Request(RequestError::Denied(why))) => why,
        other => panic!("expected a typed denial, got {other:?}"),
    }
}

async fn create(op: &Client, name: &str) {
    let done = control(op, ControlCommand::AgentCreate { name: name.into() }).await;
    assert_eq!(done, Ok(ControlResponse::Done));
}

/// The operator acting for `name` (how `astrid --principal NAME capsule install` connects).
async fn acting_for(home: &AstridHome, name: &str) -> Client {
    Client::connect(home, name, "test").await.unwrap()
}

#[tokio::test]
async fn alice_cannot_invoke_a_capsule_only_bob_has() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let op = daemon.client().await;
    for name in ["alice", "bob"] {
        create(&op, name).await;
    }
    let bob = acting_for(&home.home, "bob").await;
    let alice = acting_for(&home.home, "alice").await;
    install(&bob, Capsule::Counter).await;
    install(&bob, Capsule::Echo).await;
    install(&alice, Capsule::Echo).await;
    assert_eq!(ask(&bob, "counter.v1.incr", b"").await, "1");

    // Directly: refused, typed, naming the capsule and alice.
    let why = denied(request(&alice, "counter.v1.incr", b"").await);
    assert!(why.contains("counter") && why.contains("alice"), "{why}");
    let why = denied(request(&alice, "counter.v1.get", b"").await);
    assert!(why.contains("not granted"), "{why}");
    // Alice's listing does not show it; bob's does.
    let names = |l: Vec<astrid_types::wire::CapsuleInfo>| -> Vec<String> {
        l.into_iter().map(|c| c.name).collect()
    };
    assert_eq!(names(list(&alice).await), vec!["echo".to_string()]);
    assert_eq!(
        names(list(&bob).await),
        vec!["counter".to_string(), "echo".to_string()]
    );

    // Each refusal is in alice's chain, naming the connection that asked.
    let a_chain = chain(&home.home, "alice");
    let refusals = entries(&a_chain, "capsule.invoke", "counter");
    assert_eq!(refusals.len(), 2, "{a_chain:?}");
    for e in &refusals {
        assert_eq!(e.decision, Decision::Denied);
        assert!(e.capsule.starts_with("client:"), "{}", e.capsule);
        assert!(e.outcome.contains("not granted"), "{}", e.outcome);
    }
    // Bob's counter is where bob left it, and bob's chain has no trace of alice.
    assert_eq!(ask(&bob, "counter.v1.get", b"").await, "1");
    assert!(entries(&chain(&home.home, "bob"), "capsule.invoke", "counter").is_empty());

    // Granting it to alice gives her her own instance, not bob's data.
    let grant = ControlCommand::AgentModify {
        name: "alice".into(),
        add_capsules: vec!["counter".into()],
        remove_capsules: vec![],
    };
    match control(&op, grant).await {
        Ok(ControlResponse::Agent(info)) => assert_eq!(info.capsules, ["counter", "echo"]),
        other => panic!("expected Agent, got {other:?}"),
    }
    assert_eq!(ask(&alice, "counter.v1.incr", b"").await, "1");
    assert_eq!(ask(&bob, "counter.v1.get", b"").await, "1");
    let grants = entries(&chain(&home.home, "alice"), "capsule.grant", "counter").len();
    assert_eq!(grants, 1);
}

#[tokio::test]
async fn a_capsule_of_alice_cannot_reach_bobs_capsule_either() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let op = daemon.client().await;
    for name in ["alice", "bob"] {
        create(&op, name).await;
    }
    let bob = acting_for(&home.home, "bob").await;
    let alice = acting_for(&home.home, "alice").await;
    install(&bob, Capsule::Echo).await;
    // counter's relay requests echo; alice holds counter but not echo.
    install(&alice, Capsule::Counter).await;
    install(&bob, Capsule::Counter).await;
    assert_eq!(ask(&bob, "counter.v1.relay", b"bob's").await, "bob's");

    let err = request(&alice, "counter.v1.relay", b"alice's").await;
    let Err(ClientError::Request(RequestError::Failed(why))) = err else {
        panic!("expected the relay to fail, got {err:?}");
    };
    assert!(why.contains("not granted"), "{why}");
    let a_chain = chain(&home.home, "alice");
    let refusal = entries(&a_chain, "capsule.invoke", "echo");
    assert_eq!(refusal.len(), 1, "{a_chain:?}");
    assert_eq!(refusal[0].decision, Decision::Denied);
    // The entry names the capsule that asked, not only the connection.
    assert_eq!(refusal[0].capsule, "capsule:counter");
}

#[tokio::test]
async fn same_bytes_share_one_artifact_and_lifecycle_reaches_every_holder() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let op = daemon.client().await;
    for name in ["alice", "bob"] {
        create(&op, name).await;
    }
    let bob = acting_for(&home.home, "bob").await;
    let alice = acting_for(&home.home, "alice").await;
    let info_b = install(&bob, Capsule::Echo).await;
    let info_a = install(&alice, Capsule::Echo).await;
    assert_eq!(info_a.hash, info_b.hash);
    let artifacts: Vec<_> = std::fs::read_dir(home.home.artifacts_dir())
        .unwrap()
        .collect();
    assert_eq!(artifacts.len(), 1, "one artifact for both principals");
    // Installing it again for a principal that holds it is refused, as before.
    let again = try_install(&alice, Capsule::Echo, false).await.unwrap_err();
    assert!(again.contains("already installed"), "{again}");
    // Separate instances: each sees itself.
    for (c, name) in [(&alice, "alice"), (&bob, "bob")] {
        let who: serde_json::Value =
            serde_json::from_str(&ask(c, "echo.v1.whoami", b"").await).unwrap();
        assert_eq!(who["principal"], name);
    }
    for p in ["alice", "bob"] {
        assert_eq!(
            entries(&chain(&home.home, p), "capsule.install", "echo").len(),
            1
        );
    }
    // The operator's own chain has neither install: `default` was not affected.
    assert!(entries(&chain(&home.home, "default"), "capsule.install", "echo").is_empty());

    // An update affects both holders: an entry in each chain.
    let up = control(&bob, ControlCommand::Update(upload(Capsule::EchoV2))).await;
    assert!(matches!(up, Ok(ControlResponse::Installed(_))), "{up:?}");
    for p in ["alice", "bob"] {
        let c = chain(&home.home, p);
        let updates = entries(&c, "capsule.update", "echo");
        assert_eq!(updates.len(), 1, "{p}: {c:?}");
        assert!(
            updates[0].outcome.contains("0.2.0"),
            "{}",
            updates[0].outcome
        );
    }

    // Alice's removal takes it from alice only; bob is still served.
    let removed = control(
        &alice,
        ControlCommand::Remove {
            name: "echo".into(),
        },
    )
    .await;
    assert!(matches!(removed, Ok(ControlResponse::Removed { .. })));
    denied(request(&alice, "echo.v1.whoami", b"").await);
    assert!(ask(&bob, "echo.v1.whoami", b"").await.contains("bob"));
    assert_eq!(
        entries(&chain(&home.home, "alice"), "capsule.remove", "echo").len(),
        1
    );
    assert!(entries(&chain(&home.home, "bob"), "capsule.remove", "echo").is_empty());
    // Bob's removal uninstalls it.
    let removed = control(
        &bob,
        ControlCommand::Remove {
            name: "echo".into(),
        },
    )
    .await;
    assert!(matches!(removed, Ok(ControlResponse::Removed { .. })));
    assert!(list(&bob).await.is_empty());
    assert_eq!(
        entries(&chain(&home.home, "bob"), "capsule.remove", "echo").len(),
        1
    );
    // No grant is left behind for a later capsule of the same name.
    install(&op, Capsule::Echo).await;
    assert!(matches!(
        request(&bob, "echo.v1.whoami", b"").await,
        Err(ClientError::Request(RequestError::Denied(_)))
    ));
}
