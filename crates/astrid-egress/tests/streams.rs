//! `Airlock::connect`, the streams of `astrid:net`: the same refusals as an HTTP hop (every
//! non-public address form, `localhost` names, a name that resolves to loopback), the
//! caller's authorization before any lookup, and a consented local target reached, with
//! bytes both ways.
#![allow(
    clippy::disallowed_methods,
    reason = "the test's echo server listens on loopback"
)]

mod common;

use std::time::Duration;

use astrid_egress::{Airlock, AirlockConfig, Consent, EgressError, LocalTarget};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

/// Strips the brackets a URL host part has; a stream target takes either form.
fn bare(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

#[tokio::test]
async fn every_refused_address_form_is_refused_for_a_stream_too() {
    let resolver = MapResolver::new(&[]);
    let airlock = Airlock::with_resolver(AirlockConfig::default(), resolver.clone()).unwrap();
    let auth = Recorder::default();
    for (host, range) in REFUSED {
        for tls in [false, true] {
            let err = airlock
                .connect(bare(host), 443, tls, &Consent::default(), &auth, WAIT)
                .await
                .expect_err(host);
            let EgressError::Denied(why) = &err else {
                panic!("{host}: {err:?}")
            };
            assert!(why.contains(range), "{host}: {why}");
        }
    }
    for name in ["localhost", "LOCALHOST", "db.localhost"] {
        let err = airlock
            .connect(name, 5432, false, &Consent::default(), &auth, WAIT)
            .await
            .expect_err(name);
        assert!(
            matches!(&err, EgressError::Denied(w) if w.contains("localhost")),
            "{err:?}"
        );
    }
    // All refused before the host was asked or a name looked up.
    assert!(auth.urls().is_empty(), "{:?}", auth.urls());
    assert!(resolver.calls().is_empty());
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_after_authorization() {
    let resolver = MapResolver::new(&[
        ("rebind.example", &["127.0.0.1:6379"]),
        ("mixed.example", &["10.1.2.3:6379", "[::1]:6379"]),
    ]);
    let airlock = Airlock::with_resolver(AirlockConfig::default(), resolver.clone()).unwrap();
    let auth = Recorder::default();
    for name in ["rebind.example", "mixed.example"] {
        let err = airlock
            .connect(name, 6379, false, &Consent::default(), &auth, WAIT)
            .await
            .expect_err(name);
        let EgressError::Denied(why) = &err else {
            panic!("{name}: {err:?}")
        };
        assert!(
            why.contains("resolves only to non-public addresses"),
            "{why}"
        );
    }
    assert_eq!(resolver.calls(), ["rebind.example", "mixed.example"]);
    assert_eq!(
        auth.urls(),
        [
            "https://rebind.example:6379/",
            "https://mixed.example:6379/"
        ]
    );
}

#[tokio::test]
async fn the_hosts_refusal_comes_before_any_lookup() {
    let resolver = MapResolver::new(&[("example.com", &["93.184.215.14:25"])]);
    let airlock = Airlock::with_resolver(AirlockConfig::default(), resolver.clone()).unwrap();
    let auth = Recorder::denying("example.com");
    let err = airlock
        .connect("example.com", 25, false, &Consent::default(), &auth, WAIT)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        EgressError::Denied("no grant for https://example.com:25/".into())
    );
    assert!(resolver.calls().is_empty(), "no DNS before authorization");
    for bad in ["a/b", "x@127.0.0.1", ""] {
        assert!(matches!(
            airlock
                .connect(bad, 25, false, &Consent::default(), &auth, WAIT)
                .await,
            Err(EgressError::InvalidArgument(_))
        ));
    }
}

#[tokio::test]
async fn a_consented_local_target_is_reached_and_carries_bytes_both_ways() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut line = vec![0; 5];
        s.read_exact(&mut line).await.unwrap();
        s.write_all(b"echo: ").await.unwrap();
        s.write_all(&line).await.unwrap();
    });
    let airlock = airlock();
    // Not consented: refused, whatever the host says.
    let err = airlock
        .connect(
            "127.0.0.1",
            port,
            false,
            &Consent::default(),
            &allow_all,
            WAIT,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EgressError::Denied(w) if w.contains("127.0.0.0/8")),
        "{err:?}"
    );
    // Consented for exactly this host and port.
    let consent = consent(&[LocalTarget {
        host: "127.0.0.1".into(),
        port,
    }]);
    let mut stream = airlock
        .connect("127.0.0.1", port, false, &consent, &allow_all, WAIT)
        .await
        .unwrap();
    assert_eq!(stream.peer().port(), port);
    stream.write_all(b"hello").await.unwrap();
    let mut got = Vec::new();
    loop {
        let chunk = stream.read(4).await.unwrap();
        if chunk.is_empty() {
            break;
        }
        assert!(chunk.len() <= 4);
        got.extend(chunk);
    }
    assert_eq!(got, b"echo: hello");
    server.await.unwrap();
    // The consent names one port; the next one is refused.
    let other = airlock
        .connect(
            "127.0.0.1",
            port.wrapping_add(1).max(1),
            false,
            &consent,
            &allow_all,
            WAIT,
        )
        .await
        .unwrap_err();
    assert!(matches!(other, EgressError::Denied(_)), "{other:?}");
}

/// `wait_readable` (what `astrid:io`'s `ready` waits on) takes data ahead of a read without
/// losing any: a wait cut short loses nothing, what it took comes back from the next reads in
/// pieces no larger than asked, and the peer's end is seen as readable and then as empty.
#[tokio::test]
async fn waiting_for_a_stream_to_be_readable_loses_no_bytes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (go, went) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let _ = went.await;
        s.write_all(b"0123456789").await.unwrap();
    });
    let consent = consent(&[LocalTarget {
        host: "127.0.0.1".into(),
        port,
    }]);
    let mut stream = airlock()
        .connect("127.0.0.1", port, false, &consent, &allow_all, WAIT)
        .await
        .unwrap();
    // Nothing sent yet: the wait runs out, and is dropped mid-way.
    let quiet = tokio::time::timeout(Duration::from_millis(100), stream.wait_readable()).await;
    assert!(quiet.is_err());
    assert!(!stream.is_readable());
    go.send(()).unwrap();
    stream.wait_readable().await;
    assert!(stream.is_readable());
    let mut got = Vec::new();
    loop {
        let piece = stream.read(4).await.unwrap();
        if piece.is_empty() {
            break;
        }
        assert!(piece.len() <= 4, "{piece:?}");
        got.extend(piece);
    }
    assert_eq!(got, b"0123456789");
    server.await.unwrap();
    // The end, once more, through the read-ahead: readable, then empty.
    stream.wait_readable().await;
    assert!(stream.is_readable());
    assert!(stream.read(4).await.unwrap().is_empty());
}
