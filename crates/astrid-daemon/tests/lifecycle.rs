//! Install, update and remove on a running daemon, without a restart: a call in flight during
//! an update finishes on the old version, the next call meets the new one, a removed capsule
//! stops answering, and a name cannot be installed twice.

mod common;

use std::time::Duration;

use astrid_client::ClientError;
use astrid_types::wire::{ControlCommand, ControlResponse, LifecycleState, RequestError};
use common::{
    ask, control, install, list, refused, status, try_install, Capsule, TestHome, REQUEST_TIMEOUT,
};

#[tokio::test]
async fn update_swaps_versions_while_a_call_is_in_flight() {
    // The slow call busy-waits 1.5 s; the deadline leaves it room.
    let home = TestHome::with_quota(5000, 64);
    let daemon = home.start().await;
    let c = daemon.client().await;
    let pid = status(&c).await.pid;
    install(&c, Capsule::Echo).await;
    assert_eq!(ask(&c, "echo.v1.request", b"v1?").await, "v1?");

    // Frames on one connection are handled in order, so the slow call is dispatched to 0.1.0
    // before the daemon even reads the update.
    let slow = c
        .send_request("echo.v1.slow", b"1500".to_vec(), REQUEST_TIMEOUT)
        .await
        .unwrap();
    let updated = try_install(&c, Capsule::EchoV2, true).await.unwrap();
    assert_eq!(
        (updated.name.as_str(), updated.version.as_str()),
        ("echo", "0.2.0")
    );
    assert_eq!(updated.state, LifecycleState::Ready);

    let new_call = ask(&c, "echo.v1.request", b"v2?").await;
    assert_eq!(new_call, "0.2.0:v2?");
    assert_eq!(
        String::from_utf8(slow.wait().await.unwrap()).unwrap(),
        "echo 0.1.0"
    );
    assert_eq!(ask(&c, "echo.v1.slow", b"0").await, "echo 0.2.0");

    let listed = list(&c).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].version, "0.2.0");
    assert_eq!(
        listed[0].hash,
        common::package(Capsule::EchoV2).hash.to_string()
    );
    // Same process throughout.
    assert_eq!(status(&c).await.pid, pid);
    assert_eq!(pid, daemon.pid());
}

#[tokio::test]
async fn remove_stops_routing_and_reinstall_restores_it() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;
    install(&c, Capsule::Counter).await;
    assert_eq!(ask(&c, "echo.v1.request", b"before").await, "before");

    match control(
        &c,
        ControlCommand::Remove {
            name: "echo".into(),
        },
    )
    .await
    {
        Ok(ControlResponse::Removed { name }) => assert_eq!(name, "echo"),
        other => panic!("expected Removed, got {other:?}"),
    }
    match refused(&c, "echo.v1.request", b"after").await {
        RequestError::NoSubscriber(topic) => assert_eq!(topic, "echo.v1.request"),
        other => panic!("expected NoSubscriber, got {other:?}"),
    }
    let names: Vec<String> = list(&c).await.into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["counter"]);
    // counter's relay to echo now fails instead of hanging.
    assert!(common::request(&c, "counter.v1.relay", b"x").await.is_err());
    assert_eq!(ask(&c, "counter.v1.incr", b"").await, "1");

    let err = control(
        &c,
        ControlCommand::Remove {
            name: "echo".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(err.contains("not installed"), "{err}");

    install(&c, Capsule::Echo).await;
    assert_eq!(ask(&c, "echo.v1.request", b"again").await, "again");
    assert_eq!(ask(&c, "counter.v1.relay", b"relayed").await, "relayed");
    let names: Vec<String> = list(&c).await.into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["counter", "echo"]);
}

#[tokio::test]
async fn installing_an_installed_name_is_refused() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;

    let err = try_install(&c, Capsule::Echo, false).await.unwrap_err();
    assert!(err.contains("already installed"), "{err}");
    // A different version under the same name is the same name.
    let err = try_install(&c, Capsule::EchoV2, false).await.unwrap_err();
    assert!(err.contains("already installed"), "{err}");
    // Updating something that is not installed is refused too.
    let err = try_install(&c, Capsule::Counter, true).await.unwrap_err();
    assert!(err.contains("not installed"), "{err}");

    let listed = list(&c).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].version, "0.1.0");
    assert_eq!(ask(&c, "echo.v1.request", b"unchanged").await, "unchanged");
}

#[tokio::test]
async fn an_update_survives_a_restart() {
    let home = TestHome::new();
    let mut daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;
    try_install(&c, Capsule::EchoV2, true).await.unwrap();
    drop(c);
    daemon.kill();

    let daemon = home.start().await;
    let c = daemon.client().await;
    assert_eq!(ask(&c, "echo.v1.request", b"x").await, "0.2.0:x");
    let listed = list(&c).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].version, "0.2.0");
    match c
        .request("echo.v1.nothing", Vec::new(), Duration::from_secs(5))
        .await
    {
        Err(ClientError::Request(RequestError::NoSubscriber(_))) => {}
        other => panic!("expected NoSubscriber, got {other:?}"),
    }
}
