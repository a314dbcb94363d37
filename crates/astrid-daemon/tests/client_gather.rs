//! What uplinks such as `astrid mcp serve` need from the socket, against a real daemon: a
//! client's scatter/gather (`ClientMessage::Gather`) reaching every handler, refused on kernel
//! topics; and the kernel's `astrid.v1.capsule.changed` announcement reaching every
//! principal's subscribers, which no client may forge.

mod common;

use std::time::Duration;

use astrid_client::ClientError;
use astrid_types::wire::ControlCommand;
use common::{control, install, new_agent, next_event, Capsule, TestHome, REQUEST_TIMEOUT};
use serde_json::Value;

#[tokio::test]
async fn a_client_gather_collects_every_capsules_reply_with_its_source() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::ToolFs).await;
    install(&c, Capsule::ToolShell).await;

    let mut replies = c
        .gather("tool.v1.describe", b"{}".to_vec(), REQUEST_TIMEOUT)
        .await
        .unwrap();
    replies.sort();
    let sources: Vec<&str> = replies.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(sources, ["capsule:tool-fs", "capsule:tool-shell"]);
    let shell: Value = serde_json::from_slice(&replies[1].1).unwrap();
    assert_eq!(shell[0]["name"], "shell", "{shell}");

    // Nobody handles it: an empty answer at once, not a wait for the timeout.
    let none = c
        .gather("nobody.v1.here", Vec::new(), Duration::from_secs(600))
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn a_client_gather_on_a_kernel_topic_is_refused() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    match c
        .gather("astrid.v1.capsule.error", Vec::new(), REQUEST_TIMEOUT)
        .await
    {
        Err(ClientError::Protocol(m)) => assert!(m.contains("reserved for the kernel"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(c.is_connected());
}

#[tokio::test]
async fn capsule_changes_are_announced_to_the_principals_they_affect_and_cannot_be_forged() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let op = daemon.client().await;
    let alice = new_agent(&home.home, &op, "alice").await;
    let mut seen_by_alice = alice.subscribe("astrid.v1.capsule.changed").await.unwrap();
    let mut seen_by_op = op.subscribe("astrid.v1.capsule.*").await.unwrap();

    // A client may not announce a change itself (the kernel's topics are its own).
    alice
        .publish(
            "astrid.v1.capsule.changed",
            br#"{"capsule":"fake","change":"install"}"#.to_vec(),
        )
        .await
        .unwrap();
    // The daemon handles a connection's frames in order: once this answer is back, the
    // publish above has been dealt with, before the install below.
    control(&alice, ControlCommand::Status).await.unwrap();

    let body = |ev: &astrid_client::EventMsg| -> Value {
        assert_eq!(ev.topic, "astrid.v1.capsule.changed");
        assert_eq!(ev.source, "kernel");
        serde_json::from_slice(&ev.payload).unwrap()
    };
    // The operator installs for `default`: only `default` hears of it.
    install(&op, Capsule::Echo).await;
    let ev = next_event(&mut seen_by_op).await;
    assert_eq!(
        body(&ev),
        serde_json::json!({"capsule": "echo", "change": "install"})
    );
    // alice installs the same bytes: she is granted the shared artifact, and the first thing
    // she hears is that grant (neither her forgery nor default's install reached her).
    install(&alice, Capsule::Echo).await;
    let ev = next_event(&mut seen_by_alice).await;
    assert_eq!(
        body(&ev),
        serde_json::json!({"capsule": "echo", "change": "grant"})
    );
    assert_eq!(ev.principal, "alice");
    // alice removes it: `default` still holds it, so for her it is a withdrawn grant.
    control(
        &alice,
        ControlCommand::Remove {
            name: "echo".into(),
        },
    )
    .await
    .unwrap();
    let ev = next_event(&mut seen_by_alice).await;
    assert_eq!(
        body(&ev),
        serde_json::json!({"capsule": "echo", "change": "ungrant"})
    );
    // `default` heard nothing of alice's grant or removal: its next event is its own removal.
    control(
        &op,
        ControlCommand::Remove {
            name: "echo".into(),
        },
    )
    .await
    .unwrap();
    let ev = next_event(&mut seen_by_op).await;
    assert_eq!(
        body(&ev),
        serde_json::json!({"capsule": "echo", "change": "remove"})
    );
}
