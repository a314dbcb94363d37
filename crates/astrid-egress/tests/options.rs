//! What one request may ask of the airlock (`astrid:http@1.1.0`'s options), over real sockets:
//! subresource integrity, its redirect policy, a smaller body cap, https only; and the
//! operator's header limits. Every option narrows; none widens what the operator allows.

mod common;

use astrid_egress::{Airlock, AirlockConfig, EgressError, Integrity, Redirects};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::*;

fn sha256(body: &[u8]) -> String {
    format!(
        "sha256-{}",
        STANDARD.encode(ring::digest::digest(&ring::digest::SHA256, body))
    )
}

#[tokio::test]
async fn a_body_with_the_named_digest_is_read_and_any_other_is_an_error() {
    let server = simple(|req| match req.path.as_str() {
        "/script.js" => ok("console.log('the real one')"),
        _ => ok("console.log('swapped by the CDN')"),
    })
    .await;
    let c = consent(&[server.target()]);
    let pinned = Integrity::parse(&sha256(b"console.log('the real one')")).unwrap();

    let mut req = get(&server.url("/script.js"));
    req.integrity = Some(pinned.clone());
    let mut resp = airlock().send(req, &c, &allow_all).await.unwrap();
    assert_eq!(resp.bytes().await.unwrap(), b"console.log('the real one')");

    let mut req = get(&server.url("/other.js"));
    req.integrity = Some(pinned);
    let err = airlock().send(req, &c, &allow_all).await.unwrap_err();
    let EgressError::Integrity(why) = &err else {
        panic!("{err:?}")
    };
    assert!(
        why.contains(&sha256(b"console.log('swapped by the CDN')")),
        "names the digest the body had: {why}"
    );
    assert!(!why.contains("swapped"), "never the body itself: {why}");
}

#[tokio::test]
async fn manual_redirects_return_the_redirect_and_follow_n_stops_after_n() {
    let server = simple(|req| match req.path.as_str() {
        "/a" => redirect(302, "/b"),
        "/b" => redirect(307, "/c"),
        _ => ok("landed"),
    })
    .await;
    let c = consent(&[server.target()]);

    let mut req = get(&server.url("/a"));
    req.redirects = Some(Redirects::Manual);
    let resp = airlock().send(req, &c, &allow_all).await.unwrap();
    assert_eq!(resp.status, 302);
    assert_eq!(resp.header("location"), Some("/b"));
    assert_eq!(server.seen().len(), 1, "nothing was followed");

    let mut req = get(&server.url("/a"));
    req.redirects = Some(Redirects::Follow(1));
    let err = airlock().send(req, &c, &allow_all).await.unwrap_err();
    assert!(
        matches!(&err, EgressError::Connection(m) if m.contains("more than 1 times")),
        "{err:?}"
    );

    let mut req = get(&server.url("/a"));
    req.redirects = Some(Redirects::Follow(2));
    let mut resp = airlock().send(req, &c, &allow_all).await.unwrap();
    assert_eq!(resp.bytes().await.unwrap(), b"landed");

    // A request cannot raise the operator's ceiling.
    let strict = Airlock::new(AirlockConfig {
        max_redirects: 1,
        ..AirlockConfig::default()
    })
    .unwrap();
    let mut req = get(&server.url("/a"));
    req.redirects = Some(Redirects::Follow(200));
    let err = strict.send(req, &c, &allow_all).await.unwrap_err();
    assert!(matches!(err, EgressError::Connection(_)), "{err:?}");
}

#[tokio::test]
async fn a_request_may_lower_the_body_cap_but_not_raise_it() {
    let server = simple(|_| ok(&"x".repeat(10_000))).await;
    let c = consent(&[server.target()]);

    let mut req = get(&server.url("/"));
    req.max_body = Some(1000);
    let mut resp = airlock().send(req, &c, &allow_all).await.unwrap();
    let err = resp.bytes().await.unwrap_err();
    assert!(
        matches!(&err, EgressError::TooLarge(m) if m.contains("1000 bytes")),
        "{err:?}"
    );

    let small = Airlock::new(AirlockConfig {
        max_body: 5000,
        ..AirlockConfig::default()
    })
    .unwrap();
    let mut req = get(&server.url("/"));
    req.max_body = Some(u64::MAX);
    let mut resp = small.send(req, &c, &allow_all).await.unwrap();
    assert!(matches!(resp.bytes().await, Err(EgressError::TooLarge(_))));

    // With integrity the cap applies while the body is read for the check.
    let mut req = get(&server.url("/"));
    req.max_body = Some(1000);
    req.integrity = Some(Integrity::parse(&sha256(&[b'x'; 10_000])).unwrap());
    let err = airlock().send(req, &c, &allow_all).await.unwrap_err();
    assert!(matches!(err, EgressError::TooLarge(_)), "{err:?}");
}

#[tokio::test]
async fn https_only_refuses_a_consented_plain_http_target_before_connecting() {
    let server = simple(|_| ok("plain")).await;
    let c = consent(&[server.target()]);
    let mut req = get(&server.url("/"));
    req.https_only = true;
    let err = airlock().send(req, &c, &allow_all).await.unwrap_err();
    assert!(
        matches!(&err, EgressError::Denied(m) if m.contains("https-only")),
        "{err:?}"
    );
    assert!(server.seen().is_empty(), "no connection was made");
}

/// A response head past either of the operator's limits (header count, head size) is an
/// error; the defaults allow the same responses.
#[tokio::test]
async fn a_response_head_past_the_operators_limits_is_an_error() {
    let server = simple(|req| match req.path.as_str() {
        "/many" => {
            let headers = (0..40).map(|i| (format!("x-h{i}"), "v".into())).collect();
            (200, headers, b"ok".to_vec())
        }
        _ => (
            200,
            vec![("x-big".into(), "h".repeat(20_000))],
            b"ok".to_vec(),
        ),
    })
    .await;
    let c = consent(&[server.target()]);
    let strict = Airlock::new(AirlockConfig {
        max_headers: 10,
        max_header_bytes: 8 * 1024,
        ..AirlockConfig::default()
    })
    .unwrap();
    for path in ["/many", "/big"] {
        let err = strict
            .send(get(&server.url(path)), &c, &allow_all)
            .await
            .unwrap_err();
        assert!(matches!(err, EgressError::Connection(_)), "{path}: {err:?}");
        let mut resp = airlock()
            .send(get(&server.url(path)), &c, &allow_all)
            .await
            .unwrap();
        assert_eq!(resp.bytes().await.unwrap(), b"ok", "{path}");
    }
}

/// The header limit bounds hyper's read buffer; a request body far larger than it still goes
/// out whole (the write side is not capped by it).
#[tokio::test]
async fn a_request_body_larger_than_the_header_limit_is_sent_whole() {
    let server = simple(|req| ok(&format!("got {} bytes", req.body.len()))).await;
    let c = consent(&[server.target()]);
    let small = Airlock::new(AirlockConfig {
        max_header_bytes: 8 * 1024,
        ..AirlockConfig::default()
    })
    .unwrap();
    let mut req = get(&server.url("/upload"));
    req.method = "POST".into();
    req.body = vec![b'z'; 3 * 1024 * 1024];
    let mut resp = small.send(req, &c, &allow_all).await.unwrap();
    assert_eq!(resp.bytes().await.unwrap(), b"got 3145728 bytes");
    assert_eq!(server.seen()[0].body.len(), 3 * 1024 * 1024);
}
