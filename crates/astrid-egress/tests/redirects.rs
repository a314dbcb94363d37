//! Redirects: every hop is re-checked, re-authorized and re-resolved; credentials and the
//! capsule's own secrets stay with their origin.

mod common;

use std::sync::Arc;

use astrid_egress::{Airlock, AirlockConfig, Credential, EgressError, EgressRequest, LocalTarget};
use common::*;
use zeroize::Zeroizing;

/// Server B, and server A that redirects by path towards B and elsewhere.
async fn pair() -> (Server, Server) {
    let b = simple(|req| match req.path.as_str() {
        "/back" => {
            let a = req.header("x-a-port").unwrap_or_default().to_string();
            redirect(302, &format!("http://127.0.0.1:{a}/final"))
        }
        _ => ok("from b"),
    })
    .await;
    let bp = b.port;
    let a = simple(move |req| match req.path.as_str() {
        "/to-b" => redirect(307, &format!("http://127.0.0.1:{bp}/landing")),
        "/to-b-back" => redirect(302, &format!("http://127.0.0.1:{bp}/back")),
        "/to-b-https" => redirect(302, &format!("https://127.0.0.1:{bp}/")),
        "/to-meta" => redirect(302, "http://169.254.169.254/latest/meta-data/"),
        "/to-file" => redirect(302, "file:///etc/passwd"),
        "/see-other" => redirect(303, "/target"),
        "/moved" => redirect(301, "/target"),
        "/temp" => redirect(307, "/target"),
        "/perm" => redirect(308, "/target"),
        "/loop" => redirect(302, "/loop"),
        "/relative" => redirect(302, "../x/y?z=1"),
        _ => ok("from a"),
    })
    .await;
    (a, b)
}

fn denied(err: EgressError) -> String {
    match err {
        EgressError::Denied(why) => why,
        other => panic!("expected Denied, got {other:?}"),
    }
}

#[tokio::test]
async fn redirects_to_unconsented_or_private_targets_are_refused() {
    let (a, b) = pair().await;
    let airlock = airlock();
    let only_a = consent(&[a.target()]);
    for (path, expect) in [
        ("/to-b", "https only"),
        ("/to-b-https", "127.0.0.0/8"),
        ("/to-meta", "https only"),
        ("/to-file", "scheme"),
    ] {
        let err = airlock
            .send(get(&a.url(path)), &only_a, &allow_all)
            .await
            .unwrap_err();
        let why = denied(err);
        assert!(why.contains(expect), "{path}: {why}");
        assert!(why.contains("after redirect to"), "{path}: {why}");
    }
    // Even consenting to plain http at the metadata address's port does not matter: the
    // consent is per host:port, and this one is not consented.
    let meta_https = simple(|_| redirect(302, "https://169.254.169.254/")).await;
    let err = airlock
        .send(
            get(&meta_https.url("/")),
            &consent(&[meta_https.target()]),
            &allow_all,
        )
        .await
        .unwrap_err();
    assert!(denied(err).contains("169.254.0.0/16"));
    assert!(b.seen().is_empty(), "B was never contacted");
}

#[tokio::test]
async fn redirect_to_a_consented_second_target_is_followed() {
    let (a, b) = pair().await;
    let auth = Recorder::default();
    let mut resp = airlock()
        .send(
            get(&a.url("/to-b")),
            &consent(&[a.target(), b.target()]),
            &auth,
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.final_url, b.url("/landing"));
    assert_eq!(resp.bytes().await.unwrap(), b"from b");
    assert_eq!(auth.urls(), [a.url("/to-b"), b.url("/landing")]);
}

#[tokio::test]
async fn authorize_refusal_stops_the_redirect_hop() {
    let (a, b) = pair().await;
    let auth = Recorder::denying(&format!(":{}/", b.port));
    let err = airlock()
        .send(
            get(&a.url("/to-b")),
            &consent(&[a.target(), b.target()]),
            &auth,
        )
        .await
        .unwrap_err();
    let why = denied(err);
    assert!(
        why.contains(&format!("no grant for {}", b.url("/landing"))),
        "{why}"
    );
    assert_eq!(auth.urls(), [a.url("/to-b"), b.url("/landing")]);
    assert_eq!(a.seen().len(), 1);
    assert!(b.seen().is_empty());
}

#[tokio::test]
async fn method_and_body_follow_the_redirect_status() {
    let (a, _b) = pair().await;
    let airlock = airlock();
    let consent = consent(&[a.target()]);
    for (path, method, body) in [
        ("/see-other", "GET", ""),
        ("/moved", "GET", ""),
        ("/temp", "POST", "payload"),
        ("/perm", "POST", "payload"),
    ] {
        let req = EgressRequest {
            method: "POST".into(),
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"payload".to_vec(),
            ..get(&a.url(path))
        };
        let mut resp = airlock.send(req, &consent, &allow_all).await.unwrap();
        assert_eq!(resp.final_url, a.url("/target"), "{path}");
        resp.bytes().await.unwrap();
        let seen = a.seen();
        let last = seen.last().unwrap();
        assert_eq!(
            (last.method.as_str(), last.path.as_str()),
            (method, "/target")
        );
        assert_eq!(String::from_utf8_lossy(&last.body), body, "{path}");
        assert_eq!(
            last.header("content-type").is_some(),
            !body.is_empty(),
            "{path}"
        );
    }
    let resp = airlock
        .send(get(&a.url("/relative")), &consent, &allow_all)
        .await
        .unwrap();
    assert_eq!(resp.final_url, a.url("/x/y?z=1"));
}

#[tokio::test]
async fn redirect_limit() {
    let (a, _b) = pair().await;
    let airlock = Airlock::new(AirlockConfig {
        max_redirects: 3,
        ..Default::default()
    })
    .unwrap();
    let err = airlock
        .send(get(&a.url("/loop")), &consent(&[a.target()]), &allow_all)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EgressError::Connection(m) if m.contains("more than 3")),
        "{err:?}"
    );
    assert_eq!(a.seen().len(), 4);
}

fn credential(server: &Server, value: &str) -> Credential {
    Credential {
        scheme: "http".into(),
        host: "127.0.0.1".into(),
        port: server.port,
        header: "Authorization".into(),
        value: Zeroizing::new(value.into()),
    }
}

#[tokio::test]
async fn credentials_stay_with_their_origin() {
    let (a, b) = pair().await;
    let req = EgressRequest {
        headers: vec![
            ("authorization".into(), "capsule-token".into()),
            ("cookie".into(), "c=1".into()),
            ("x-keep".into(), "yes".into()),
            ("x-a-port".into(), a.port.to_string()),
        ],
        credentials: vec![
            credential(&a, "Bearer s3cret"),
            Credential {
                header: "x-api-key".into(),
                ..credential(&b, "b-only-key")
            },
        ],
        ..get(&a.url("/to-b-back"))
    };
    assert!(!format!("{req:?}").contains("s3cret"));
    let mut resp = airlock()
        .send(req, &consent(&[a.target(), b.target()]), &allow_all)
        .await
        .unwrap();
    assert_eq!(resp.final_url, a.url("/final"));
    resp.bytes().await.unwrap();

    let a_seen = a.seen();
    assert_eq!(a_seen.len(), 2);
    // First hop at A: the credential replaced the capsule's header of the same name.
    assert_eq!(a_seen[0].all("authorization"), ["Bearer s3cret"]);
    assert_eq!(a_seen[0].header("cookie"), Some("c=1"));
    assert_eq!(a_seen[0].header("x-api-key"), None);
    // At B: no A credential, the capsule's own secrets dropped on the cross-origin hop,
    // B's own credential added.
    let b_seen = b.seen();
    assert_eq!(b_seen.len(), 1);
    assert_eq!(b_seen[0].header("authorization"), None);
    assert_eq!(b_seen[0].header("cookie"), None);
    assert_eq!(b_seen[0].header("x-keep"), Some("yes"));
    assert_eq!(b_seen[0].all("x-api-key"), ["b-only-key"]);
    // Back at A: its credential again, but the capsule's cookie stays gone.
    assert_eq!(a_seen[1].all("authorization"), ["Bearer s3cret"]);
    assert_eq!(a_seen[1].header("cookie"), None);
    assert_eq!(a_seen[1].header("x-api-key"), None);
}

#[tokio::test]
async fn each_hop_resolves_exactly_once_and_connects_to_the_checked_address() {
    let (a, _b) = pair().await;
    let port = a.port;
    let addr = format!("127.0.0.1:{port}");
    let resolver = MapResolver::new(&[
        ("svc.test", &[addr.as_str()]),
        ("evil.test", &[addr.as_str()]),
    ]);
    let hopper = simple(move |req| match req.path.as_str() {
        "/hop" => redirect(302, &format!("http://svc.test:{port}/end")),
        _ => ok("unused"),
    })
    .await;
    let airlock = Airlock::with_resolver(AirlockConfig::default(), resolver.clone()).unwrap();
    let svc: LocalTarget = format!("svc.test:{port}").parse().unwrap();

    let mut resp = airlock
        .send(
            get(&format!("http://svc.test:{port}/x")),
            &consent(std::slice::from_ref(&svc)),
            &allow_all,
        )
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap(), b"from a");
    assert_eq!(resolver.calls(), ["svc.test"]);
    assert_eq!(
        a.seen()[0].header("host"),
        Some(format!("svc.test:{port}").as_str())
    );

    // Two hops, two lookups; the literal first hop needs none.
    let both = consent(&[svc, hopper.target()]);
    let resp = airlock
        .send(get(&hopper.url("/hop")), &both, &allow_all)
        .await
        .unwrap();
    assert_eq!(resp.final_url, format!("http://svc.test:{port}/end"));
    assert_eq!(resolver.calls(), ["svc.test", "svc.test"]);

    // A name that resolves to loopback without consent: one lookup, no connection.
    let before = a.seen().len();
    let err = airlock
        .send(
            get(&format!("https://evil.test:{port}/")),
            &both,
            &allow_all,
        )
        .await
        .unwrap_err();
    assert!(denied(err).contains("127.0.0.0/8"));
    assert_eq!(resolver.calls(), ["svc.test", "svc.test", "evil.test"]);
    assert_eq!(a.seen().len(), before);
}

#[tokio::test]
async fn authorize_sees_every_hop_even_with_a_closure() {
    let (a, b) = pair().await;
    let hops = Arc::new(std::sync::Mutex::new(0));
    let counter = hops.clone();
    let auth = move |_: &astrid_egress::Url| {
        *counter.lock().unwrap() += 1;
        Ok(())
    };
    let req = EgressRequest {
        headers: vec![("x-a-port".into(), a.port.to_string())],
        ..get(&a.url("/to-b-back"))
    };
    airlock()
        .send(req, &consent(&[a.target(), b.target()]), &auth)
        .await
        .unwrap();
    assert_eq!(*hops.lock().unwrap(), 3);
}
