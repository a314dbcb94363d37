//! `astrid:http@1.2.0`'s streamed request bodies through a real daemon (`http-probe`'s
//! `upload`): a body written piece by piece after `start` reaches the server chunked and
//! whole once the capsule finishes it; the request is gated and audited like any other
//! (refused without consent, with nothing sent); a 3xx is the answer, never followed; asking
//! to follow redirects is refused; a body dropped unfinished never arrives complete.
#![allow(
    clippy::disallowed_methods,
    reason = "the test's server listens on loopback"
)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use astrid_audit::Decision;
use astrid_types::wire::ControlCommand;
use common::{ask, chain, control, install, Capsule, TestHome};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const UPLOAD: &str = "http-probe.v1.upload";

type Seen = Arc<Mutex<Vec<String>>>;

/// Reads a chunked body; `Err` with what arrived when the connection ended before its end.
async fn chunked<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Result<Vec<u8>, Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        if r.read_line(&mut size).await.unwrap_or(0) == 0 {
            return Err(body);
        }
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return Err(body);
        };
        let mut piece = vec![0; n + 2];
        if r.read_exact(&mut piece).await.is_err() {
            return Err(body);
        }
        if n == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&piece[..n]);
    }
}

/// Answers each request with what it received (`/moved` with a 307), and notes in `seen`
/// `PATH chunked BODY` or `PATH incomplete BODY-SO-FAR`.
async fn upload_server() -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(s);
                let mut request_line = String::new();
                r.read_line(&mut request_line).await.unwrap();
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                let mut is_chunked = false;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let l = line.to_ascii_lowercase();
                    is_chunked |= l.starts_with("transfer-encoding:") && l.contains("chunked");
                }
                let body = match chunked(&mut r).await {
                    Ok(b) if is_chunked => b,
                    Ok(b) | Err(b) => {
                        let note = format!("{path} incomplete {}", String::from_utf8_lossy(&b));
                        log.lock().unwrap().push(note);
                        return;
                    }
                };
                let text = String::from_utf8_lossy(&body).into_owned();
                log.lock().unwrap().push(format!("{path} chunked {text}"));
                let (status, extra) = if path == "/moved" {
                    ("307 Temporary Redirect", "location: /elsewhere\r\n")
                } else {
                    ("200 OK", "")
                };
                let answer = format!("got {text}");
                let reply = format!(
                    "HTTP/1.1 {status}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = r.get_mut().write_all(reply.as_bytes()).await;
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_written_as_it_goes_arrives_whole_only_when_finished() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::HttpProbe).await;
    let (port, seen) = upload_server().await;
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");

    // Not consented: refused by the same gate as any request, nothing sent, audited.
    let got = ask(
        &c,
        UPLOAD,
        format!("{}\nalpha\nbeta", url("/store")).as_bytes(),
    )
    .await;
    assert!(
        got.starts_with("error: http: denied: ") && got.contains("unless the operator consented"),
        "{got}"
    );
    assert!(seen.lock().unwrap().is_empty());
    let denied = chain(&home.home, "default")
        .into_iter()
        .filter(|e| {
            e.capsule == "http-probe"
                && e.action == "http.request"
                && e.decision == Decision::Denied
        })
        .count();
    assert_eq!(denied, 1);

    control(
        &c,
        ControlCommand::EgressAllow {
            principal: "default".into(),
            capsule: "http-probe".into(),
            target: format!("127.0.0.1:{port}"),
        },
    )
    .await
    .expect("egress consent");

    // The first piece with the request, the rest written one by one: one chunked body.
    let got = ask(
        &c,
        UPLOAD,
        format!("{}\nalpha-\nbeta-\ngamma", url("/store")).as_bytes(),
    )
    .await;
    assert_eq!(got, "ok: 200 - got alpha-beta-gamma");
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        ["/store chunked alpha-beta-gamma"]
    );

    // A redirect is the answer: a streamed body is never sent twice.
    let got = ask(&c, UPLOAD, format!("{}\nonce", url("/moved")).as_bytes()).await;
    assert_eq!(got, "ok: 307 /elsewhere got once");
    // Asking to follow redirects is refused before anything is sent.
    let got = ask(
        &c,
        UPLOAD,
        format!("{}\nfollow\nx", url("/store")).as_bytes(),
    )
    .await;
    assert!(
        got.starts_with("error: http: invalid-argument: ") && got.contains("redirects"),
        "{got}"
    );
    assert_eq!(seen.lock().unwrap().len(), 2, "{:?}", seen.lock().unwrap());

    // Dropped unfinished: the server never gets a complete body.
    let got = ask(
        &c,
        UPLOAD,
        format!("{}\none-\ntwo-\nabandon", url("/partial")).as_bytes(),
    )
    .await;
    assert_eq!(got, "abandoned");
    let waited = Instant::now();
    loop {
        let notes = seen.lock().unwrap().clone();
        if let Some(note) = notes.iter().find(|n| n.starts_with("/partial")) {
            assert!(note.starts_with("/partial incomplete "), "{note}");
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the server never saw the abandoned request end: {notes:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Each request that went out was allowed by the consent, and audited once.
    let allowed = chain(&home.home, "default")
        .into_iter()
        .filter(|e| {
            e.capsule == "http-probe"
                && e.action == "http.request"
                && e.decision == Decision::Allowed
        })
        .count();
    assert_eq!(allowed, 3);
}
