//! Refusals that happen before any socket: address literals, names, schemes, headers.

mod common;

use std::net::IpAddr;

use astrid_egress::{check_ip, Consent, EgressError, EgressRequest, LocalTarget};
use common::*;

#[tokio::test]
async fn address_literals_are_refused_naming_the_range() {
    let airlock = airlock();
    let auth = Recorder::default();
    for (host, range) in REFUSED {
        for scheme in ["https", "http"] {
            let url = format!("{scheme}://{host}:8443/x");
            let err = airlock
                .send(get(&url), &Consent::default(), &auth)
                .await
                .expect_err(&url);
            let EgressError::Denied(why) = &err else {
                panic!("{url}: expected Denied, got {err:?}")
            };
            if scheme == "https" {
                assert!(why.contains(range), "{url}: `{why}` should name {range}");
            }
        }
    }
    // A person is never asked about something the airlock refuses anyway.
    assert!(auth.urls().is_empty(), "{:?}", auth.urls());
}

#[test]
fn check_ip_table_and_public_addresses() {
    for (host, range) in REFUSED {
        // Literal forms only the URL parser understands are covered by the test above.
        let Ok(ip) = host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        else {
            continue;
        };
        let why = check_ip(ip).expect_err(host);
        assert!(why.contains(range), "{host}: {why}");
    }
    for public in [
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700::1111",
        "2a00:1450:4001:80b::200e",
    ] {
        assert_eq!(check_ip(public.parse().unwrap()), Ok(()), "{public}");
    }
}

#[tokio::test]
async fn localhost_names_are_refused_before_resolving() {
    let resolver = MapResolver::new(&[]);
    let airlock =
        astrid_egress::Airlock::with_resolver(Default::default(), resolver.clone()).unwrap();
    for url in [
        "https://localhost/",
        "https://LOCALHOST:8443/",
        "https://localhost./",
        "https://api.localhost/",
        "http://foo.localhost:8080/",
    ] {
        let err = airlock
            .send(get(url), &Consent::default(), &allow_all)
            .await
            .expect_err(url);
        let EgressError::Denied(why) = &err else {
            panic!("{url}: {err:?}")
        };
        assert!(why.contains("localhost"), "{url}: {why}");
    }
    assert!(resolver.calls().is_empty());
}

#[tokio::test]
async fn plain_http_needs_consent_and_other_schemes_are_refused() {
    let resolver = MapResolver::new(&[("example.com", &["93.184.215.14:80"])]);
    let airlock =
        astrid_egress::Airlock::with_resolver(Default::default(), resolver.clone()).unwrap();
    let auth = Recorder::default();
    let err = airlock
        .send(get("http://example.com/"), &Consent::default(), &auth)
        .await
        .unwrap_err();
    let EgressError::Denied(why) = &err else {
        panic!("{err:?}")
    };
    assert!(why.contains("https only"), "{why}");
    // Consent for another port does not make port 80 plain-http-able.
    let other: LocalTarget = "example.com:8080".parse().unwrap();
    let err = airlock
        .send(get("http://example.com/"), &consent(&[other]), &auth)
        .await
        .unwrap_err();
    assert!(matches!(err, EgressError::Denied(_)), "{err:?}");
    for url in [
        "ftp://example.com/",
        "file:///etc/passwd",
        "ws://example.com/",
    ] {
        let err = airlock
            .send(get(url), &Consent::default(), &auth)
            .await
            .expect_err(url);
        assert!(matches!(err, EgressError::Denied(_)), "{url}: {err:?}");
    }
    assert!(resolver.calls().is_empty(), "{:?}", resolver.calls());
    assert!(auth.urls().is_empty());
}

#[tokio::test]
async fn a_name_resolving_privately_is_refused() {
    let resolver = MapResolver::new(&[
        ("metadata.google.internal", &["169.254.169.254:80"]),
        ("rebind.example", &["10.1.2.3:443", "[fd00::1]:443"]),
    ]);
    let airlock =
        astrid_egress::Airlock::with_resolver(Default::default(), resolver.clone()).unwrap();
    for (url, range) in [
        ("https://metadata.google.internal/", "169.254.0.0/16"),
        ("https://rebind.example/", "10.0.0.0/8"),
    ] {
        let err = airlock
            .send(get(url), &Consent::default(), &allow_all)
            .await
            .expect_err(url);
        let EgressError::Denied(why) = &err else {
            panic!("{url}: {err:?}")
        };
        assert!(why.contains(range), "{url}: {why}");
    }
    assert_eq!(
        resolver.calls(),
        ["metadata.google.internal", "rebind.example"]
    );
}

#[tokio::test]
async fn reserved_headers_bad_methods_and_url_credentials_are_invalid() {
    let airlock = airlock();
    for name in ["Host", "content-length", "Transfer-Encoding", "connection"] {
        let mut req = get("https://example.com/");
        req.headers.push((name.into(), "x".into()));
        let err = airlock
            .send(req, &Consent::default(), &allow_all)
            .await
            .unwrap_err();
        assert!(
            matches!(err, EgressError::InvalidArgument(_)),
            "{name}: {err:?}"
        );
    }
    let req = EgressRequest {
        method: "CONNECT".into(),
        ..get("https://example.com/")
    };
    let err = airlock.send(req, &Consent::default(), &allow_all).await;
    assert!(
        matches!(err, Err(EgressError::InvalidArgument(_))),
        "{err:?}"
    );
    for url in ["https://user:pw@example.com/", "not a url", "/relative"] {
        let err = airlock
            .send(get(url), &Consent::default(), &allow_all)
            .await
            .expect_err(url);
        assert!(
            matches!(err, EgressError::InvalidArgument(_)),
            "{url}: {err:?}"
        );
    }
}

#[tokio::test]
async fn authorize_refusal_stops_the_first_hop() {
    let resolver = MapResolver::new(&[("example.com", &["93.184.215.14:443"])]);
    let airlock =
        astrid_egress::Airlock::with_resolver(Default::default(), resolver.clone()).unwrap();
    let auth = Recorder::denying("example.com");
    let err = airlock
        .send(
            get("https://example.com/secret"),
            &Consent::default(),
            &auth,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        EgressError::Denied("no grant for https://example.com/secret".into())
    );
    assert_eq!(auth.urls(), ["https://example.com/secret"]);
    assert!(resolver.calls().is_empty(), "no DNS before authorization");
}
