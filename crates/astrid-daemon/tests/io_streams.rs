//! `astrid:io` through a real daemon: a capsule (`net-probe`'s `race`) opens two
//! `astrid:net` connections and one `astrid:http` response, and reads each as `poll.ready`
//! says it became readable. The servers here decide the order (B answers at once, A only once
//! B's reader is closed, the HTTP body only once A's is), so the order the capsule reports is
//! the order readiness was seen, with no timing in the test. Also: an unknown handle is
//! `unknown-handle`, writing to a response body is `unsupported`, and a wait on a quiet
//! stream runs out empty. Opening the streams was audited; moving their bytes adds nothing to
//! the chain.
#![allow(
    clippy::disallowed_methods,
    reason = "the test's servers listen on loopback"
)]

mod common;

use std::time::Duration;

use astrid_audit::Decision;
use astrid_client::Client;
use astrid_types::wire::ControlCommand;
use common::{ask, control, install, Capsule, TestHome};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const RACE: &str = "net-probe.v1.race";

async fn allow(c: &Client, port: u16) {
    let cmd = ControlCommand::EgressAllow {
        principal: "default".into(),
        capsule: "net-probe".into(),
        target: format!("127.0.0.1:{port}"),
    };
    control(c, cmd).await.expect("egress consent");
}

/// Accepts one connection, reads its first line, waits for `after` (if given), answers
/// `reply`, then waits for the other side to close and fires `closed`.
async fn line_server(
    after: Option<oneshot::Receiver<()>>,
    reply: &'static [u8],
    closed: oneshot::Sender<()>,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let mut s = tokio::io::BufReader::new(s);
        let mut line = String::new();
        s.read_line(&mut line).await.unwrap();
        if let Some(after) = after {
            let _ = after.await;
        }
        s.get_mut().write_all(reply).await.unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        let _ = closed.send(());
    });
    port
}

/// Accepts one HTTP request and answers its head at once and its body once `after` fires;
/// then fires `closed` when the client closes.
async fn http_server(after: oneshot::Receiver<()>, closed: oneshot::Sender<()>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let mut s = tokio::io::BufReader::new(s);
        loop {
            let mut line = String::new();
            if s.read_line(&mut line).await.unwrap() == 0 || line == "\r\n" {
                break;
            }
        }
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\n";
        s.get_mut().write_all(head.as_bytes()).await.unwrap();
        s.get_mut().flush().await.unwrap();
        let _ = after.await;
        s.get_mut().write_all(b"http-body").await.unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        let _ = closed.send(());
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_bodies_are_read_as_they_become_ready() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::NetProbe).await;

    let (b_closed, b_done) = oneshot::channel();
    let (a_closed, a_done) = oneshot::channel();
    let (http_closed, http_done) = oneshot::channel();
    let pb = line_server(None, b"b-data\n", b_closed).await;
    let pa = line_server(Some(b_done), b"a-data\n", a_closed).await;
    let ph = http_server(a_done, http_closed).await;
    for port in [pa, pb, ph] {
        allow(&c, port).await;
    }

    let got = ask(&c, RACE, format!("{pa} {pb} {ph}").as_bytes()).await;
    assert_eq!(
        got,
        "ok: unknown=unknown-handle write-body=unsupported early=[] \
         order=b:b-data,a:a-data,http:http-body"
    );
    // The capsule dropped the response last, which closed the connection under it.
    tokio::time::timeout(Duration::from_secs(30), http_done)
        .await
        .expect("the body's connection closes when the capsule drops the response")
        .unwrap();

    // Opening was the audited effect: two connects and one request, each allowed by the
    // operator's consent; reads, writes and waits add nothing.
    let allowed = |action: &str| {
        common::actions(&home.home, "default", action)
            .into_iter()
            .filter(|e| e.decision == Decision::Allowed)
            .count()
    };
    assert_eq!(allowed("net.connect"), 2);
    assert_eq!(allowed("http.request"), 1);
    let chain = common::actions(&home.home, "default", "");
    assert!(
        !chain.iter().any(|e| e.action.starts_with("io.")),
        "{chain:#?}"
    );
}
