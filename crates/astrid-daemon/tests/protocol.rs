//! The socket protocol against a real daemon: a connection that breaks the framing or the
//! encoding is closed without disturbing other connections, and the handshake refuses a wrong
//! token, an unsupported protocol version and an unknown principal, saying why.

mod common;

use astrid_client::framing::write_frame;
use astrid_types::wire::{ClientMessage, ServerMessage, PROTOCOL_VERSIONS};
use common::{
    assert_echo_serves, install, raw_connect, raw_hello, raw_recv, raw_send, token, Capsule,
    TestHome,
};
use tokio::io::AsyncWriteExt;

/// Expects the daemon's parting `Error` on a connection it is closing, then the close.
async fn expect_closed_with_error(s: &mut tokio::net::UnixStream, wanted: &str) {
    match raw_recv(s).await {
        Some(ServerMessage::Error { id: None, message }) => {
            assert!(message.contains(wanted), "{message}");
        }
        other => panic!("expected a closing Error, got {other:?}"),
    }
    assert_eq!(raw_recv(s).await, None, "the connection stayed open");
}

/// Expects a `Refused` answer to the hello, then the close.
fn refused_reason(answer: ServerMessage) -> String {
    match answer {
        ServerMessage::Refused { reason } => reason,
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[tokio::test]
async fn an_oversized_length_header_closes_only_that_connection() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;

    let mut bad = raw_connect(&home.home).await;
    bad.write_all(&[0xff, 0xff, 0xff, 0xff]).await.unwrap();
    expect_closed_with_error(&mut bad, "exceeds").await;

    assert!(c.is_connected());
    assert_echo_serves(&c).await;
}

#[tokio::test]
async fn garbage_after_the_handshake_closes_only_that_connection() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;

    let mut bad = raw_connect(&home.home).await;
    write_frame(&mut bad, &[0xff, 0xff, 0xff, 0x01, 0x42])
        .await
        .unwrap();
    expect_closed_with_error(&mut bad, "malformed").await;

    // A frame cut short by the peer hanging up is a close, not a crash.
    let mut cut = raw_connect(&home.home).await;
    cut.write_all(&[0, 0, 0, 100, 1, 2, 3]).await.unwrap();
    cut.shutdown().await.unwrap();
    drop(cut);

    assert!(c.is_connected());
    assert_echo_serves(&c).await;
    // And new connections are still welcome.
    let mut fresh = raw_connect(&home.home).await;
    raw_send(
        &mut fresh,
        &ClientMessage::Request {
            id: 1,
            topic: "echo.v1.request".into(),
            payload: b"fresh".to_vec(),
            timeout_ms: 30_000,
        },
    )
    .await;
    match raw_recv(&mut fresh).await {
        Some(ServerMessage::Reply { id: 1, result }) => assert_eq!(result.unwrap(), b"fresh"),
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_before_the_handshake_is_refused() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;

    let mut s = tokio::net::UnixStream::connect(home.home.socket())
        .await
        .unwrap();
    s.write_all(&[0x7f, 0xff, 0xff, 0xff]).await.unwrap();
    let reason = refused_reason(raw_recv(&mut s).await.expect("an answer"));
    assert!(reason.contains("exceeds"), "{reason}");

    let mut s = tokio::net::UnixStream::connect(home.home.socket())
        .await
        .unwrap();
    raw_send(
        &mut s,
        &ClientMessage::Publish {
            topic: "echo.v1.request".into(),
            payload: vec![],
        },
    )
    .await;
    let reason = refused_reason(raw_recv(&mut s).await.expect("an answer"));
    assert!(reason.contains("must be Hello"), "{reason}");
    assert_eq!(raw_recv(&mut s).await, None);

    assert_echo_serves(&c).await;
}

#[tokio::test]
async fn the_handshake_refuses_bad_tokens_versions_and_principals() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;
    let good = token(&home.home);

    let wrong = format!("{good}0");
    let (mut s, answer) = raw_hello(&home.home, PROTOCOL_VERSIONS, &wrong, "default").await;
    let reason = refused_reason(answer);
    assert!(reason.contains("invalid daemon token"), "{reason}");
    assert!(
        !reason.contains(&good),
        "the refusal leaks the token: {reason}"
    );
    assert_eq!(raw_recv(&mut s).await, None);

    let (mut s, answer) = raw_hello(&home.home, &[99], &good, "default").await;
    let reason = refused_reason(answer);
    assert!(reason.contains("[99]"), "{reason}");
    assert!(
        reason.contains(&format!("{PROTOCOL_VERSIONS:?}")),
        "{reason}"
    );
    assert_eq!(raw_recv(&mut s).await, None);

    let (mut s, answer) = raw_hello(&home.home, PROTOCOL_VERSIONS, &good, "nobody").await;
    let reason = refused_reason(answer);
    assert!(reason.contains("unknown principal `nobody`"), "{reason}");
    assert_eq!(raw_recv(&mut s).await, None);

    let (_s, answer) = raw_hello(&home.home, PROTOCOL_VERSIONS, &good, "../default").await;
    let reason = refused_reason(answer);
    assert!(reason.contains("invalid principal"), "{reason}");

    // The client library reports the same refusal.
    let err = astrid_client::Client::connect(&home.home, "nobody", "test")
        .await
        .err()
        .expect("an unknown principal was welcomed");
    assert!(err.to_string().contains("unknown principal"), "{err}");

    // The right hello, on the same daemon, is still welcome.
    let (_s, answer) = raw_hello(&home.home, &[99, 2], &good, "default").await;
    assert!(
        matches!(answer, ServerMessage::Welcome { version: 2, .. }),
        "{answer:?}"
    );
    assert_echo_serves(&c).await;
}

#[tokio::test]
async fn the_socket_token_and_run_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let home = TestHome::new();
    let _daemon = home.start().await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home.home.run_dir()), 0o700);
    assert_eq!(mode(&home.home.token_file()), 0o600);
    assert_eq!(mode(&home.home.principals_dir()), 0o700);
    assert_eq!(token(&home.home).len(), 64, "a 256-bit hex token");
}

#[tokio::test]
async fn a_connection_that_never_says_hello_is_closed() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;

    // Connected, and silent: the daemon gives up on it (after its 5 s hello timeout; the
    // read below waits up to a minute, so a loaded machine does not fail the test).
    let mut silent = tokio::net::UnixStream::connect(home.home.socket())
        .await
        .unwrap();
    let reason = refused_reason(raw_recv(&mut silent).await.expect("an answer, then close"));
    assert!(reason.contains("no hello within"), "{reason}");
    assert_eq!(
        raw_recv(&mut silent).await,
        None,
        "the connection stayed open"
    );
    assert_echo_serves(&c).await;
}

#[tokio::test]
async fn a_restarted_daemon_refuses_the_previous_token() {
    let home = TestHome::new();
    let mut daemon = home.start().await;
    let old = token(&home.home);
    daemon.kill();
    let _daemon = home.start().await;
    let new = token(&home.home);
    assert_ne!(old, new, "the token was not regenerated");

    let (mut s, answer) = raw_hello(&home.home, PROTOCOL_VERSIONS, &old, "default").await;
    let reason = refused_reason(answer);
    assert!(reason.contains("invalid daemon token"), "{reason}");
    assert_eq!(raw_recv(&mut s).await, None);
    let (_s, answer) = raw_hello(&home.home, PROTOCOL_VERSIONS, &new, "default").await;
    assert!(
        matches!(answer, ServerMessage::Welcome { .. }),
        "{answer:?}"
    );
}
