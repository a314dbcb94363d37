//! The IPC ACL through a real daemon: capsules publish only what their manifest declares,
//! never on kernel topics, cannot forge their source, and get no key-value store unless
//! granted; clients cannot publish on kernel topics either. Every refusal leaves the daemon
//! serving.

mod common;

use astrid_client::Client;
use astrid_types::wire::{ClientMessage, RequestError, ServerMessage};
use common::{
    ask, assert_echo_serves, install, next_event, raw_connect, raw_recv, raw_send, refused,
    Capsule, Daemon, TestHome,
};
use serde_json::Value;

async fn fixture() -> (TestHome, Daemon, Client) {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;
    install(&c, Capsule::Misbehave).await;
    (home, daemon, c)
}

/// Runs a misbehave handler that replies with the text of the error it got.
async fn denial(c: &Client, handler: &str) -> String {
    let reply = ask(c, &format!("misbehave.v1.{handler}"), b"").await;
    assert!(reply.starts_with("denied: "), "{handler}: {reply}");
    reply
}

#[tokio::test]
async fn publishing_an_undeclared_topic_is_denied() {
    let (_home, _daemon, c) = fixture().await;
    let mut leak = c.subscribe("secret.*").await.unwrap();
    let reply = denial(&c, "publish_undeclared").await;
    assert!(
        reply.contains("does not declare topic `secret.topic`"),
        "{reply}"
    );
    assert!(reply.contains("misbehave"), "{reply}");
    assert_echo_serves(&c).await;

    // Nothing reached the bus: the next event on `secret.*` is one a client sent afterwards.
    c.publish("secret.marker", b"after".to_vec()).await.unwrap();
    let ev = next_event(&mut leak).await;
    assert_eq!(
        (ev.topic.as_str(), ev.payload.as_slice()),
        ("secret.marker", &b"after"[..])
    );
}

#[tokio::test]
async fn publishing_on_a_kernel_topic_is_denied() {
    let (_home, _daemon, c) = fixture().await;
    let reply = denial(&c, "publish_kernel").await;
    assert!(reply.contains("reserved for the kernel"), "{reply}");
    assert!(reply.contains("astrid.v1.capsule.loaded"), "{reply}");
    assert_echo_serves(&c).await;
}

#[tokio::test]
async fn a_forged_source_in_the_payload_changes_nothing() {
    let (_home, _daemon, c) = fixture().await;
    let watcher = c.clone();
    let mut sub = watcher.subscribe("echo.v1.*").await.unwrap();
    assert_eq!(ask(&c, "misbehave.v1.forge", b"").await, "sent");
    let ev = next_event(&mut sub).await;
    assert_eq!(ev.topic, "echo.v1.request");
    // The payload claims to come from echo; the kernel's stamp says who really sent it.
    let claimed: Value = serde_json::from_slice(&ev.payload).unwrap();
    assert_eq!(claimed["source"], "capsule:echo");
    assert_eq!(ev.source, "capsule:misbehave");
    assert_eq!(ev.principal, "default");
    assert_echo_serves(&c).await;
}

#[tokio::test]
async fn key_value_store_without_the_grant_is_denied() {
    let (_home, _daemon, c) = fixture().await;
    let reply = denial(&c, "kv_denied").await;
    assert!(reply.contains("does not declare `kv = true`"), "{reply}");
    assert_echo_serves(&c).await;
}

#[tokio::test]
async fn clients_cannot_publish_or_request_on_kernel_topics() {
    let (home, _daemon, c) = fixture().await;
    let mut kernel_events = c.subscribe("astrid.v1.*").await.unwrap();

    let mut raw = raw_connect(&home.home).await;
    let forged = ClientMessage::Publish {
        topic: "astrid.v1.x".into(),
        payload: b"{}".to_vec(),
    };
    raw_send(&mut raw, &forged).await;
    match raw_recv(&mut raw).await {
        Some(ServerMessage::Error { id: None, message }) => {
            assert!(message.contains("reserved for the kernel"), "{message}");
        }
        other => panic!("expected an Error, got {other:?}"),
    }
    // The connection survives a refused publish.
    raw_send(
        &mut raw,
        &ClientMessage::Request {
            id: 7,
            topic: "echo.v1.request".into(),
            payload: b"raw".to_vec(),
            timeout_ms: 30_000,
        },
    )
    .await;
    match raw_recv(&mut raw).await {
        Some(ServerMessage::Reply { id: 7, result }) => assert_eq!(result.unwrap(), b"raw"),
        other => panic!("expected the echo reply, got {other:?}"),
    }

    match refused(&c, "astrid.v1.capsule.error", b"{}").await {
        RequestError::InvalidArgument(m) => assert!(m.contains("reserved for the kernel"), "{m}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    assert_echo_serves(&c).await;

    // The refused publish never reached the bus: the first kernel event the subscriber sees
    // is a real one, announced by the kernel after a crash it caused afterwards.
    let crash = common::request(&c, "misbehave.v1.panic", b"").await;
    assert!(crash.is_err());
    let ev = next_event(&mut kernel_events).await;
    assert_eq!(ev.topic, "astrid.v1.capsule.error");
    assert_eq!(ev.source, "kernel");
}

#[tokio::test]
async fn an_event_loop_through_the_bus_ends_at_the_hop_limit() {
    let (_home, _daemon, c) = fixture().await;
    let mut seen = c.subscribe("misbehave.v1.loop").await.unwrap();
    // misbehave re-publishes every `misbehave.v1.loop` it handles: without a hop limit this
    // would run forever. The client's event is hop 0; hops 1..=16 come from the capsule.
    c.publish("misbehave.v1.loop", b"x".to_vec()).await.unwrap();
    let limit = usize::from(astrid_sandbox::MAX_EVENT_DEPTH);
    for hop in 0..=limit {
        let ev = next_event(&mut seen).await;
        let expected = if hop == 0 {
            "client:"
        } else {
            "capsule:misbehave"
        };
        assert!(ev.source.starts_with(expected), "hop {hop}: {}", ev.source);
    }
    let extra = tokio::time::timeout(std::time::Duration::from_secs(1), seen.next()).await;
    assert!(
        extra.is_err(),
        "the loop went past the hop limit: {extra:?}"
    );
    assert_echo_serves(&c).await;
}
