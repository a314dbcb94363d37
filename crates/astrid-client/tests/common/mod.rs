//! A minimal server written with the same wire types and framing, playing the daemon's side
//! of the protocol for the client tests.

use astrid_client::framing::{read_frame, write_frame};
use astrid_client::Client;
use astrid_types::home::AstridHome;
use astrid_types::wire::{
    self, ClientMessage, Credential, ServerMessage, MAX_FRAME, PROTOCOL_VERSIONS,
};
use tokio::net::{UnixListener, UnixStream};

pub const TOKEN: &str = "s3cret-token";

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub home: AstridHome,
    pub listener: UnixListener,
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let home = AstridHome::new(dir.path());
    std::fs::create_dir_all(home.run_dir()).unwrap();
    // Trailing newline: the client must trim it.
    std::fs::write(home.token_file(), format!("{TOKEN}\n")).unwrap();
    let listener = UnixListener::bind(home.socket()).unwrap();
    Fixture {
        _dir: dir,
        home,
        listener,
    }
}

pub async fn recv(s: &mut UnixStream) -> Option<ClientMessage> {
    let bytes = read_frame(s, MAX_FRAME).await.unwrap()?;
    Some(wire::decode(&bytes).unwrap())
}

pub async fn send(s: &mut UnixStream, msg: &ServerMessage) {
    write_frame(s, &wire::encode(msg).unwrap()).await.unwrap();
}

/// Accepts one connection, checks the hello and welcomes it as connection 42.
pub async fn accept(listener: &UnixListener) -> UnixStream {
    let (mut s, _) = listener.accept().await.unwrap();
    match recv(&mut s).await.unwrap() {
        ClientMessage::Hello {
            versions,
            credential,
            principal,
            client_name,
        } => {
            assert_eq!(versions, PROTOCOL_VERSIONS);
            assert_eq!(credential, Credential::Operator(TOKEN.to_string()));
            assert_eq!(principal, "alice");
            assert_eq!(client_name, "test");
        }
        other => panic!("first frame was not Hello: {other:?}"),
    }
    send(
        &mut s,
        &ServerMessage::Welcome {
            version: 2,
            connection_id: 42,
            daemon_version: "9.9.9".into(),
        },
    )
    .await;
    s
}

pub async fn connected(f: &Fixture) -> (Client, UnixStream) {
    let (client, server) = tokio::join!(
        Client::connect(&f.home, "alice", "test"),
        accept(&f.listener)
    );
    (client.unwrap(), server)
}
