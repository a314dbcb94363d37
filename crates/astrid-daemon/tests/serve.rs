//! The happy path through a real daemon: capsules installed over the socket answer requests,
//! tool calls, identity questions and capsule-to-capsule requests.

mod common;

use astrid_types::wire::LifecycleState;
use common::{ask, install, list, Capsule, TestHome};
use serde_json::{json, Value};

#[tokio::test]
async fn echo_and_counter_answer_over_the_socket() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;

    let echo = install(&c, Capsule::Echo).await;
    assert_eq!(
        (echo.name.as_str(), echo.version.as_str()),
        ("echo", "0.1.0")
    );
    assert_eq!(echo.state, LifecycleState::Ready);
    assert_eq!(echo.hash, package_hash(Capsule::Echo));
    install(&c, Capsule::Counter).await;

    // Payloads are bytes, not text: they come back untouched.
    let payload = b"hello \x00\x01\xfe\xff world".to_vec();
    let reply = common::request(&c, "echo.v1.request", &payload)
        .await
        .unwrap();
    assert_eq!(reply, payload);

    // A [[tool]] is served on its implied topic, arguments wrapped in {"args": ..}.
    let shout = ask(
        &c,
        "tool.v1.execute.shout",
        br#"{"args":{"text":"quiet please"}}"#,
    )
    .await;
    let shout: Value = serde_json::from_str(&shout).unwrap();
    assert_eq!(shout, json!({ "text": "QUIET PLEASE" }));

    // The kernel, not the caller, says who is calling.
    let who: Value = serde_json::from_str(&ask(&c, "echo.v1.whoami", b"").await).unwrap();
    let expected = json!({
        "principal": "default",
        "capsule": "echo",
        "source": format!("client:{}", c.connection_id()),
    });
    assert_eq!(who, expected);

    // A second connection is a different source.
    let c2 = daemon.client().await;
    assert_ne!(c2.connection_id(), c.connection_id());
    let who2: Value = serde_json::from_str(&ask(&c2, "echo.v1.whoami", b"").await).unwrap();
    assert_eq!(who2["source"], format!("client:{}", c2.connection_id()));

    assert_eq!(ask(&c, "echo.v1.config", b"").await, "hello");

    // State lives in the principal's store across invocations.
    assert_eq!(ask(&c, "counter.v1.incr", b"").await, "1");
    assert_eq!(ask(&c2, "counter.v1.incr", b"").await, "2");
    assert_eq!(ask(&c, "counter.v1.get", b"").await, "2");

    // counter asks echo through the kernel (ipc.request) and relays echo's reply.
    assert_eq!(
        ask(&c, "counter.v1.relay", b"via counter").await,
        "via counter"
    );

    let names: Vec<String> = list(&c).await.into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["counter", "echo"]);
}

#[tokio::test]
async fn published_events_reach_subscribed_clients_with_the_true_source() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;

    let mut out = c.subscribe("echo.v1.out").await.unwrap();
    // `forward` re-publishes the payload on echo.v1.out from inside the capsule.
    assert_eq!(ask(&c, "echo.v1.forward", b"fanned out").await, "ok");
    let ev = common::next_event(&mut out).await;
    assert_eq!(ev.topic, "echo.v1.out");
    assert_eq!(ev.payload, b"fanned out");
    assert_eq!(ev.source, "capsule:echo");
    assert_eq!(ev.principal, "default");
}

fn package_hash(c: Capsule) -> String {
    common::package(c).hash.to_string()
}
