//! Connecting and the hello/welcome exchange.

mod common;

use astrid_client::{Client, ClientError};
use astrid_types::home::AstridHome;
use astrid_types::wire::ServerMessage;
use common::*;

#[tokio::test]
async fn missing_token_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let home = AstridHome::new(dir.path());
    let err = Client::connect(&home, "alice", "test").await.err().unwrap();
    assert!(matches!(err, ClientError::NoToken { .. }));
    let msg = err.to_string();
    assert!(
        msg.starts_with("daemon not running? (no token at "),
        "{msg}"
    );
    assert!(
        msg.contains(&home.token_file().display().to_string()),
        "{msg}"
    );
}

#[tokio::test]
async fn token_without_socket_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let home = AstridHome::new(dir.path());
    std::fs::create_dir_all(home.run_dir()).unwrap();
    std::fs::write(home.token_file(), TOKEN).unwrap();
    let err = Client::connect(&home, "alice", "test").await.err().unwrap();
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("astrid.sock"), "{err}");
}

#[tokio::test]
async fn handshake_reports_the_connection() {
    let f = fixture();
    let (client, _server) = connected(&f).await;
    assert_eq!(client.connection_id(), 42);
    assert_eq!(client.daemon_version(), "9.9.9");
    assert_eq!(client.protocol_version(), 2);
    assert!(client.is_connected());
}

#[tokio::test]
async fn refusal_carries_the_reason() {
    let f = fixture();
    let server = async {
        let (mut s, _) = f.listener.accept().await.unwrap();
        recv(&mut s).await.unwrap();
        send(
            &mut s,
            &ServerMessage::Refused {
                reason: "bad token".into(),
            },
        )
        .await;
    };
    let (client, ()) = tokio::join!(Client::connect(&f.home, "alice", "test"), server);
    match client {
        Err(ClientError::Refused(reason)) => assert_eq!(reason, "bad token"),
        other => panic!("expected Refused, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn unknown_protocol_version_is_rejected() {
    let f = fixture();
    let server = async {
        let (mut s, _) = f.listener.accept().await.unwrap();
        recv(&mut s).await.unwrap();
        let welcome = ServerMessage::Welcome {
            version: 999,
            connection_id: 1,
            daemon_version: "x".into(),
        };
        send(&mut s, &welcome).await;
        s
    };
    let (client, _s) = tokio::join!(Client::connect(&f.home, "alice", "test"), server);
    let err = client.err().unwrap();
    assert!(matches!(err, ClientError::Handshake(_)), "{err}");
    assert!(err.to_string().contains("999"), "{err}");
}

#[tokio::test]
async fn server_closing_during_handshake_is_an_error() {
    let f = fixture();
    let server = async {
        let (mut s, _) = f.listener.accept().await.unwrap();
        recv(&mut s).await.unwrap();
        drop(s);
    };
    let (client, ()) = tokio::join!(Client::connect(&f.home, "alice", "test"), server);
    assert!(matches!(client, Err(ClientError::Handshake(_))));
}
