//! The pipeline against a minimal server written here with the real wire types and framing.

use std::time::Duration;

use astrid_client::framing::{read_frame, write_frame};
use astrid_client::Client;
use astrid_types::wire::{self, ClientMessage, RequestError, ServerMessage, MAX_FRAME};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use super::*;

async fn recv(s: &mut UnixStream) -> Option<ClientMessage> {
    let bytes = read_frame(s, MAX_FRAME).await.unwrap()?;
    Some(wire::decode(&bytes).unwrap())
}

async fn send(s: &mut UnixStream, msg: &ServerMessage) {
    write_frame(s, &wire::encode(msg).unwrap()).await.unwrap();
}

/// A connected client and the server end of its socket, past the handshake.
async fn pair() -> (Client, UnixStream, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let listener = UnixListener::bind(dir.path().join("s.sock")).unwrap();
    let path = dir.path().join("s.sock");
    let server = async {
        let (mut s, _) = listener.accept().await.unwrap();
        assert!(matches!(
            recv(&mut s).await,
            Some(ClientMessage::Hello { .. })
        ));
        let welcome = ServerMessage::Welcome {
            version: 2,
            connection_id: 1,
            daemon_version: "test".into(),
        };
        send(&mut s, &welcome).await;
        s
    };
    let client = async {
        let stream = UnixStream::connect(&path).await.unwrap();
        Client::handshake(stream, "t", "default", "astrid-emit")
            .await
            .unwrap()
    };
    let (client, server) = tokio::join!(client, server);
    (client, server, dir)
}

async fn collect(mut rx: mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut v = Vec::new();
    while let Some(l) = rx.recv().await {
        v.push(l);
    }
    v
}

#[tokio::test]
async fn outputs_follow_input_order_even_when_replies_do_not() {
    let (client, mut server, _dir) = pair().await;
    let input = concat!(
        "{\"topic\": \"a\", \"payload\": \"first\"}\n",
        "\n",
        "{\"topic\": \"b\", \"payload\": {\"n\": 2}, \"timeout_ms\": 900}\r\n",
        "{\"topic\": \"log\", \"payload\": \"note\", \"request\": false}\n",
        "this is not json\n",
        "{\"topic\": \"c\", \"payload\": 3}", // last line without a newline
    );
    let server_task = tokio::spawn(async move {
        let mut requests = Vec::new();
        let mut order = Vec::new();
        while requests.len() < 3 {
            match recv(&mut server).await.unwrap() {
                ClientMessage::Request {
                    id,
                    topic,
                    payload,
                    timeout_ms,
                } => {
                    order.push(topic.clone());
                    requests.push((id, topic, payload, timeout_ms));
                }
                ClientMessage::Publish { topic, payload } => {
                    assert_eq!(payload, b"note");
                    order.push(topic);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // The daemon saw the actions in input order.
        assert_eq!(order, ["a", "b", "log", "c"]);
        assert_eq!(requests[1].2, br#"{"n":2}"#);
        assert_eq!(requests[1].3, 900);
        assert_eq!(requests[0].3, 5000);
        // Answer last first; `b` fails.
        for (id, topic, payload, _) in requests.into_iter().rev() {
            let result = match topic.as_str() {
                "b" => Err(RequestError::Denied("not for you".into())),
                _ => Ok([b"re:".as_slice(), &payload].concat()),
            };
            send(&mut server, &ServerMessage::Reply { id, result }).await;
        }
        server
    });
    let (out, rx) = mpsc::unbounded_channel();
    let printed = tokio::spawn(collect(rx));
    let ok = process(&client, input.as_bytes(), out).await.unwrap();
    let lines = printed.await.unwrap();
    assert!(
        !ok,
        "a failed request and a malformed line make the run fail"
    );
    assert_eq!(
        lines,
        [
            r#"{"topic":"a","reply":"re:first"}"#,
            r#"{"topic":"b","error":"denied: not for you"}"#,
            r#"{"topic":"log","published":true}"#,
            r#"{"error":"line 5: expected ident at line 1 column 2"}"#,
            r#"{"topic":"c","reply":"re:3"}"#,
        ]
    );
    let _server = server_task.await.unwrap();
}

#[tokio::test]
async fn all_good_lines_succeed_and_reply_json_is_kept_as_json() {
    let (client, mut server, _dir) = pair().await;
    let server_task = tokio::spawn(async move {
        let Some(ClientMessage::Request { id, .. }) = recv(&mut server).await else {
            panic!("expected a request")
        };
        let reply = br#"{"echo":[1,2,3]}"#.to_vec();
        send(
            &mut server,
            &ServerMessage::Reply {
                id,
                result: Ok(reply),
            },
        )
        .await;
        server
    });
    let (out, rx) = mpsc::unbounded_channel();
    let printed = tokio::spawn(collect(rx));
    let ok = process(&client, &b"{\"topic\": \"echo\"}\n"[..], out)
        .await
        .unwrap();
    assert!(ok);
    assert_eq!(
        printed.await.unwrap(),
        [r#"{"topic":"echo","reply":{"echo":[1,2,3]}}"#]
    );
    let _server = server_task.await.unwrap();
}

#[tokio::test]
async fn invalid_utf8_is_reported_and_later_lines_still_run() {
    let (client, mut server, _dir) = pair().await;
    let server_task = tokio::spawn(async move {
        let Some(ClientMessage::Publish { topic, .. }) = recv(&mut server).await else {
            panic!("expected a publish")
        };
        assert_eq!(topic, "after");
        server
    });
    let mut input = b"\xff\xfe\n".to_vec();
    input.extend_from_slice(b"{\"topic\": \"after\", \"request\": false}\n");
    let (out, rx) = mpsc::unbounded_channel();
    let printed = tokio::spawn(collect(rx));
    let ok = process(&client, input.as_slice(), out).await.unwrap();
    client.flush().await.unwrap();
    assert!(!ok);
    assert_eq!(
        printed.await.unwrap(),
        [
            r#"{"error":"line 1: not valid UTF-8"}"#,
            r#"{"topic":"after","published":true}"#
        ]
    );
    let _server = server_task.await.unwrap();
}

#[tokio::test]
async fn a_lost_connection_fails_the_waiting_lines() {
    let (client, mut server, _dir) = pair().await;
    let server_task = tokio::spawn(async move {
        recv(&mut server).await.unwrap();
        drop(server); // hang up without replying
    });
    let (out, rx) = mpsc::unbounded_channel();
    let printed = tokio::spawn(collect(rx));
    let input = b"{\"topic\": \"x\", \"timeout_ms\": 60000}\n";
    let ok = tokio::time::timeout(Duration::from_secs(10), process(&client, &input[..], out))
        .await
        .unwrap()
        .unwrap();
    server_task.await.unwrap();
    assert!(!ok);
    assert_eq!(
        printed.await.unwrap(),
        [r#"{"topic":"x","error":"connection to the daemon closed"}"#]
    );
}

#[tokio::test]
async fn events_are_printed_from_subscriptions() {
    let (client, mut server, _dir) = pair().await;
    let sub = client.subscribe("news.*").await.unwrap();
    let Some(ClientMessage::Subscribe { id, .. }) = recv(&mut server).await else {
        panic!("expected subscribe")
    };
    let (out, mut rx) = mpsc::unbounded_channel();
    let (_done, done_rx) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(print_events(sub, out, done_rx));
    let event = ServerMessage::Event {
        subscription: id,
        topic: "news.today".into(),
        payload: b"plain text".to_vec(),
        source: "capsule:news".into(),
        principal: "default".into(),
    };
    send(&mut server, &event).await;
    assert_eq!(
        rx.recv().await.unwrap(),
        r#"{"event":"news.today","source":"capsule:news","payload":"plain text"}"#
    );
    drop(server);
    watcher.await.unwrap();
}

#[tokio::test]
async fn printer_writes_one_line_per_message() {
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send("one".to_string()).unwrap();
    tx.send("{\"two\":2}".to_string()).unwrap();
    drop(tx);
    let mut buf = Vec::new();
    print_lines(&mut buf, rx).await;
    assert_eq!(buf, b"one\n{\"two\":2}\n");
}
