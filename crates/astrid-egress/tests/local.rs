//! Consented local targets over real sockets: reachability, streaming, caps, deadlines.

mod common;

use std::sync::Arc;
use std::time::Duration;

use astrid_egress::{Airlock, AirlockConfig, Consent, EgressError, EgressRequest};
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

#[tokio::test]
async fn consented_target_is_reachable_and_other_ports_are_not() {
    let server = simple(|req| ok(&format!("hello {}", req.path))).await;
    let airlock = airlock();
    let mut resp = airlock
        .send(
            get(&server.url("/a?b=c#frag")),
            &consent(&[server.target()]),
            &allow_all,
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.final_url, server.url("/a?b=c"));
    assert_eq!(resp.bytes().await.unwrap(), b"hello /a?b=c");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("host"),
        Some(format!("127.0.0.1:{}", server.port).as_str())
    );

    // Same server, consent for a different port: refused before connecting.
    let other: astrid_egress::LocalTarget =
        format!("127.0.0.1:{}", server.port ^ 1).parse().unwrap();
    for url in [server.url("/"), server.url("/").replace("http:", "https:")] {
        let err = airlock
            .send(
                get(&url),
                &consent(std::slice::from_ref(&other)),
                &allow_all,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, EgressError::Denied(_)), "{url}: {err:?}");
    }
    let err = airlock
        .send(get(&server.url("/")), &Consent::default(), &allow_all)
        .await
        .unwrap_err();
    assert!(matches!(err, EgressError::Denied(_)), "{err:?}");
    assert_eq!(
        server.seen().len(),
        1,
        "refused requests never reached the server"
    );
}

#[tokio::test]
async fn consented_localhost_name_resolves_and_connects() {
    let server = simple(|_| ok("via name")).await;
    let target = format!("localhost:{}", server.port).parse().unwrap();
    let url = format!("http://localhost:{}/", server.port);
    let mut resp = airlock()
        .send(get(&url), &consent(&[target]), &allow_all)
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap(), b"via name");
}

/// The server sends one event, then waits until the test has read it before sending the
/// second: a client that buffered the body would never see the first event in time.
#[tokio::test]
async fn sse_chunks_arrive_before_the_body_ends() {
    let go = Arc::new(Notify::new());
    let server_go = go.clone();
    let server = serve(None, move |_, mut s| {
        let go = server_go.clone();
        async move {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                        transfer-encoding: chunked\r\n\r\n";
            s.write_all(head.as_bytes()).await.unwrap();
            s.write_all(b"b\r\ndata: one\n\n\r\n").await.unwrap();
            s.flush().await.unwrap();
            go.notified().await;
            s.write_all(b"b\r\ndata: two\n\n\r\n0\r\n\r\n")
                .await
                .unwrap();
            s.flush().await.unwrap();
        }
    })
    .await;
    let mut resp = airlock()
        .send(
            get(&server.url("/events")),
            &consent(&[server.target()]),
            &allow_all,
        )
        .await
        .unwrap();
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    assert_eq!(resp.chunk(4096).await.unwrap().unwrap(), b"data: one\n\n");
    // Nothing more can arrive until the server is released: a read abandoned by an outer
    // timeout (as the host does at an invocation deadline) must lose nothing.
    let abandoned = tokio::time::timeout(Duration::from_millis(20), resp.chunk(4096)).await;
    assert!(abandoned.is_err());
    go.notify_one();
    // `max` splits a piece without losing bytes.
    assert_eq!(resp.chunk(4).await.unwrap().unwrap(), b"data");
    assert_eq!(resp.chunk(4096).await.unwrap().unwrap(), b": two\n\n");
    assert_eq!(resp.chunk(4096).await.unwrap(), None);
    assert_eq!(resp.chunk(4096).await.unwrap(), None);
}

/// The host calls in from a blocking thread with `Handle::block_on`, once for `send` and
/// again for every read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_from_a_blocking_thread_via_block_on() {
    let server = simple(|_| ok(&"z".repeat(100_000))).await;
    let airlock = Arc::new(airlock());
    let consent = consent(&[server.target()]);
    let url = server.url("/big");
    let handle = tokio::runtime::Handle::current();
    let total = tokio::task::spawn_blocking(move || {
        let mut resp = handle
            .block_on(airlock.send(get(&url), &consent, &allow_all))
            .unwrap();
        let mut total = 0;
        while let Some(piece) = handle.block_on(resp.chunk(8192)).unwrap() {
            assert!(piece.len() <= 8192);
            total += piece.len();
        }
        total
    })
    .await
    .unwrap();
    assert_eq!(total, 100_000);
}

#[tokio::test]
async fn body_cap_gives_too_large() {
    let server = simple(|req| {
        let n = if req.path == "/exact" { 1000 } else { 5000 };
        ok(&"x".repeat(n))
    })
    .await;
    let airlock = Airlock::new(AirlockConfig {
        max_body: 1000,
        ..Default::default()
    })
    .unwrap();
    let consent = consent(&[server.target()]);
    let mut resp = airlock
        .send(get(&server.url("/exact")), &consent, &allow_all)
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().len(), 1000);
    let mut resp = airlock
        .send(get(&server.url("/big")), &consent, &allow_all)
        .await
        .unwrap();
    let err = resp.bytes().await.unwrap_err();
    assert!(matches!(err, EgressError::TooLarge(_)), "{err:?}");
    // The failure sticks.
    assert_eq!(resp.chunk(10).await.unwrap_err(), err);
}

#[tokio::test]
async fn stalled_servers_time_out() {
    let server = serve(None, |req, mut s| async move {
        if req.path == "/slow-body" {
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789";
            s.write_all(head.as_bytes()).await.unwrap();
            s.flush().await.unwrap();
        }
        // Hold the connection open without ever finishing.
        std::future::pending::<()>().await;
        drop(s);
    })
    .await;
    let airlock = airlock();
    let consent = consent(&[server.target()]);
    let quick = |path: &str| EgressRequest {
        timeout: Some(Duration::from_millis(300)),
        ..get(&server.url(path))
    };
    let err = airlock
        .send(quick("/no-head"), &consent, &allow_all)
        .await
        .unwrap_err();
    assert!(matches!(err, EgressError::Timeout(_)), "{err:?}");

    let mut resp = airlock
        .send(quick("/slow-body"), &consent, &allow_all)
        .await
        .unwrap();
    assert_eq!(resp.chunk(1024).await.unwrap().unwrap(), b"0123456789");
    let err = resp.chunk(1024).await.unwrap_err();
    assert!(matches!(err, EgressError::Timeout(_)), "{err:?}");
}

#[tokio::test]
async fn requested_timeout_is_capped_by_max_timeout() {
    let server = serve(None, |_, s| async move {
        std::future::pending::<()>().await;
        drop(s);
    })
    .await;
    let airlock = Airlock::new(AirlockConfig {
        max_timeout: Duration::from_millis(200),
        ..Default::default()
    })
    .unwrap();
    let req = EgressRequest {
        timeout: Some(Duration::from_secs(3600)),
        ..get(&server.url("/"))
    };
    let started = std::time::Instant::now();
    let err = airlock
        .send(req, &consent(&[server.target()]), &allow_all)
        .await
        .unwrap_err();
    assert!(matches!(err, EgressError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn post_body_and_headers_reach_the_server() {
    let server = simple(|req| ok(&String::from_utf8_lossy(&req.body))).await;
    let req = EgressRequest {
        method: "post".into(),
        url: server.url("/submit"),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-multi".into(), "1".into()),
            ("X-Multi".into(), "2".into()),
        ],
        body: br#"{"a":1}"#.to_vec(),
        ..Default::default()
    };
    let mut resp = airlock()
        .send(req, &consent(&[server.target()]), &allow_all)
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap(), br#"{"a":1}"#);
    let seen = &server.seen()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.all("x-multi"), ["1", "2"]);
    assert_eq!(seen.header("content-length"), Some("7"));
    assert!(seen
        .header("user-agent")
        .unwrap()
        .starts_with("astrid-egress/"));
}

#[tokio::test]
async fn a_spent_budget_times_out_before_any_contact() {
    let server = simple(|_| ok("never")).await;
    let auth = Recorder::default();
    let req = EgressRequest {
        timeout: Some(Duration::ZERO),
        ..get(&server.url("/"))
    };
    let err = airlock()
        .send(req, &consent(&[server.target()]), &auth)
        .await
        .unwrap_err();
    assert!(matches!(err, EgressError::Timeout(_)), "{err:?}");
    assert!(auth.urls().is_empty());
    assert!(server.seen().is_empty());
}
