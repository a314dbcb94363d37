//! Content addressing through a real daemon: an upload whose component does not match the
//! manifest's hash is refused, and an artifact corrupted on disk while the daemon was down
//! fails only its own capsule at the next boot.

mod common;

use astrid_types::wire::{ControlCommand, ControlResponse, LifecycleState, RequestError};
use astrid_types::ArtifactHash;
use common::{
    ask, assert_echo_serves, control, install, refused, status, try_install, upload, Capsule,
    TestHome,
};

#[tokio::test]
async fn an_upload_with_a_flipped_byte_is_refused() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;

    let mut bad = upload(Capsule::Counter);
    let bytes = &mut bad.components[0].bytes;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let err = match control(&c, ControlCommand::Install(bad)).await {
        Err(e) => e,
        Ok(other) => panic!("a tampered upload was accepted: {other:?}"),
    };
    assert!(err.contains("hash mismatch"), "{err}");
    assert!(err.contains("counter.wasm"), "{err}");

    // Nothing of it was kept, and the genuine package still installs.
    let names: Vec<String> = common::list(&c).await.into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["echo"]);
    assert_echo_serves(&c).await;
    install(&c, Capsule::Counter).await;
    assert_eq!(ask(&c, "counter.v1.incr", b"").await, "1");
}

#[tokio::test]
async fn an_artifact_corrupted_on_disk_fails_only_its_capsule() {
    let home = TestHome::new();
    let mut daemon = home.start().await;
    let c = daemon.client().await;
    let echo = install(&c, Capsule::Echo).await;
    install(&c, Capsule::Counter).await;
    assert_eq!(ask(&c, "counter.v1.incr", b"").await, "1");

    match control(&c, ControlCommand::Shutdown).await {
        Ok(ControlResponse::ShuttingDown) => {}
        other => panic!("expected ShuttingDown, got {other:?}"),
    }
    drop(c);
    let exit = daemon.wait_exit().await;
    assert!(exit.success(), "{exit}\n{}", daemon.log());

    let hash: ArtifactHash = echo.hash.parse().unwrap();
    let hex = hash.to_string().trim_start_matches("blake3:").to_string();
    let artifact = home.home.artifacts_dir().join(hex).join("component.wasm");
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&artifact, bytes).unwrap();

    let daemon = home.start().await;
    let c = daemon.client().await;
    let s = status(&c).await;
    let echo = s.capsules.iter().find(|i| i.name == "echo").unwrap();
    assert_eq!(echo.state, LifecycleState::Failed);
    let why = echo.error.as_deref().unwrap_or_default();
    assert!(why.contains("hash mismatch"), "{why}");
    let counter = s.capsules.iter().find(|i| i.name == "counter").unwrap();
    assert_eq!(counter.state, LifecycleState::Ready, "{:?}", counter.error);

    // The failed capsule does not run; the healthy one kept its state and answers.
    assert!(matches!(
        refused(&c, "echo.v1.request", b"x").await,
        RequestError::NoSubscriber(_)
    ));
    assert_eq!(ask(&c, "counter.v1.incr", b"").await, "2");

    // Updating with the genuine package repairs it without a restart.
    let repaired = try_install(&c, Capsule::Echo, true).await.unwrap();
    assert_eq!(repaired.state, LifecycleState::Ready);
    assert_echo_serves(&c).await;
    assert_eq!(status(&c).await.pid, daemon.pid());
}
