//! HTTPS to local servers with a self-signed certificate trusted through `extra_roots`;
//! verification uses the URL's host name.

mod common;

use std::sync::Arc;

use astrid_egress::{Airlock, AirlockConfig, EgressError, LocalTarget};
use common::*;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// A TLS server whose self-signed certificate names `names`; returns it and the DER cert.
async fn tls_server(names: &[&str]) -> (Server, Vec<u8>) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.clone()], key)
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let server = serve(Some(acceptor), |req, mut s| async move {
        write_response(&mut s, 200, &[], format!("secure {}", req.path).as_bytes()).await;
    })
    .await;
    (server, cert.to_vec())
}

fn trusting(root: &[u8]) -> AirlockConfig {
    AirlockConfig {
        extra_roots: vec![root.to_vec()],
        ..Default::default()
    }
}

#[tokio::test]
async fn https_with_a_trusted_extra_root_works() {
    let (server, root) = tls_server(&["127.0.0.1"]).await;
    let url = format!("https://127.0.0.1:{}/hi", server.port);
    let mut resp = Airlock::new(trusting(&root))
        .unwrap()
        .send(get(&url), &consent(&[server.target()]), &allow_all)
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.bytes().await.unwrap(), b"secure /hi");
}

#[tokio::test]
async fn https_without_the_root_fails_verification() {
    let (server, _root) = tls_server(&["127.0.0.1"]).await;
    let url = format!("https://127.0.0.1:{}/hi", server.port);
    let err = airlock()
        .send(get(&url), &consent(&[server.target()]), &allow_all)
        .await
        .unwrap_err();
    let EgressError::Connection(why) = &err else {
        panic!("{err:?}")
    };
    assert!(why.contains("certificate"), "{why}");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn the_certificate_must_name_the_url_host() {
    let (server, root) = tls_server(&["svc.test"]).await;
    let addr = format!("127.0.0.1:{}", server.port);
    let resolver = MapResolver::new(&[
        ("svc.test", &[addr.as_str()]),
        ("other.test", &[addr.as_str()]),
    ]);
    let airlock = Airlock::with_resolver(trusting(&root), resolver).unwrap();
    let targets: Vec<LocalTarget> = ["svc.test", "other.test"]
        .iter()
        .map(|h| format!("{h}:{}", server.port).parse().unwrap())
        .collect();
    let consent = consent(&targets);

    let url = format!("https://svc.test:{}/sni", server.port);
    let mut resp = airlock.send(get(&url), &consent, &allow_all).await.unwrap();
    assert_eq!(resp.bytes().await.unwrap(), b"secure /sni");

    // Same address and trusted root, but the certificate does not name this host.
    let url = format!("https://other.test:{}/sni", server.port);
    let err = airlock
        .send(get(&url), &consent, &allow_all)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EgressError::Connection(m) if m.contains("certificate")),
        "{err:?}"
    );
}

#[test]
fn a_malformed_extra_root_is_rejected() {
    let err = Airlock::new(trusting(b"not a certificate")).err();
    assert!(
        matches!(err, Some(EgressError::InvalidArgument(_))),
        "{err:?}"
    );
}

/// `astrid:net`'s TLS streams: verified against the host asked for, with the same roots;
/// the capsule speaks its own protocol inside (HTTP here, written by hand).
#[tokio::test]
async fn a_tls_stream_is_verified_like_https() {
    let (server, root) = tls_server(&["127.0.0.1"]).await;
    let consent = consent(&[server.target()]);
    let err = airlock()
        .connect("127.0.0.1", server.port, true, &consent, &allow_all, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EgressError::Connection(w) if w.contains("certificate")),
        "{err:?}"
    );
    let airlock = Airlock::new(trusting(&root)).unwrap();
    let mut stream = airlock
        .connect("127.0.0.1", server.port, true, &consent, &allow_all, None)
        .await
        .unwrap();
    stream
        .write_all(b"GET /raw HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut got = String::new();
    // The test server drops the connection without a TLS close: read to the body's end.
    while !got.ends_with("secure /raw") {
        let chunk = stream.read(4096).await.unwrap();
        assert!(!chunk.is_empty(), "closed early: {got}");
        got.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert_eq!(server.seen().len(), 1);
}
