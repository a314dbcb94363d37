//! HTTPS: with a certificate configured the gateway speaks TLS only. A client that trusts
//! the (self-signed) certificate gets answers; plain HTTP on the same port gets none. No
//! daemon runs here, so `/readyz` also shows the "daemon not running" problem over TLS.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

use std::sync::Arc;

use astrid_gateway::{Gateway, GatewayConfig, TlsFiles};
use astrid_types::home::AstridHome;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

async fn get(stream: &mut (impl AsyncReadExt + AsyncWriteExt + Unpin), path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn with_a_certificate_the_gateway_serves_https_only() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();

    let mut config = GatewayConfig::new(AstridHome::new(dir.path().join("home")));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.tls = Some(TlsFiles { cert, key });
    let gw = Gateway::bind(config).await.unwrap();
    let addr = gw.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(gw.run(async {
        let _ = stopped.await;
    }));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(client));
    let name = ServerName::try_from("localhost").unwrap();

    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = connector.connect(name.clone(), tcp).await.unwrap();
    let health = get(&mut tls, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("{\"status\":\"ok\"}"), "{health}");

    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let ready = get(&mut tls, "/readyz").await;
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(ready.contains("application/problem+json"), "{ready}");
    assert!(ready.contains("not running"), "{ready}");

    // Plain HTTP is not answered as HTTP: the TLS handshake fails and the connection closes.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    let answer = get(&mut plain, "/healthz").await;
    assert!(!answer.contains("200"), "{answer}");

    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_missing_or_wrong_certificate_is_refused_at_bind() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = GatewayConfig::new(AstridHome::new(dir.path().join("home")));
    config.listen = "127.0.0.1:0".parse().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    config.tls = Some(TlsFiles {
        cert: junk.clone(),
        key: junk,
    });
    let e = Gateway::bind(config).await.err().expect("refused");
    assert!(e.to_string().contains("no certificate in the file"), "{e}");
}
