//! Opening one connection to an address the policy already accepted: TCP, then TLS with
//! the URL's host name for SNI and verification, then an HTTP/1.1 handshake.
#![allow(
    clippy::disallowed_methods,
    reason = "the airlock's connector: outbound connections open here, after the checks"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsConnector;
use url::{Host, Url};

use crate::upload::ReqBody;
use crate::{AirlockConfig, EgressError};

/// A plain or TLS byte stream.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

pub(crate) type Conn = http1::Connection<TokioIo<Box<dyn Io>>, ReqBody>;
pub(crate) type Sender = http1::SendRequest<ReqBody>;

/// Web PKI roots plus the configured extras, `ring` provider, the given ALPN protocols.
pub(crate) fn tls_connector(
    extra_roots: &[Vec<u8>],
    alpn: &[&[u8]],
) -> Result<TlsConnector, EgressError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for (i, der) in extra_roots.iter().enumerate() {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| EgressError::InvalidArgument(format!("extra root #{i}: {e}")))?;
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| EgressError::InvalidArgument(format!("TLS configuration: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Connects to the first of `addrs` that answers (all already checked), then performs TLS
/// for `https` and the HTTP/1.1 handshake.
pub(crate) async fn open(
    addrs: &[SocketAddr],
    url: &Url,
    tls: &TlsConnector,
    cfg: &AirlockConfig,
    deadline: Instant,
) -> Result<(Sender, Conn), EgressError> {
    let host = url.host_str().unwrap_or_default();
    let tcp = tcp(addrs, host, cfg.connect_timeout, deadline).await?;
    let io: Box<dyn Io> = if url.scheme() == "https" {
        let name = server_name(url)?;
        let tls = timeout_at(deadline, tls.connect(name, tcp))
            .await
            .map_err(|_| EgressError::Timeout(format!("TLS handshake with {host} took too long")))?
            .map_err(|e| EgressError::Connection(format!("TLS with {host} failed: {e}")))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    http1::Builder::new()
        // hyper refuses a buffer below 8 KiB; the operator's setting is checked against
        // that when the config is read, and clamped here as well.
        .max_buf_size(cfg.max_header_bytes.max(8192))
        .max_headers(cfg.max_headers)
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| EgressError::Connection(format!("HTTP handshake with {host}: {e}")))
}

pub(crate) async fn tcp(
    addrs: &[SocketAddr],
    host: &str,
    connect_timeout: Duration,
    deadline: Instant,
) -> Result<TcpStream, EgressError> {
    let mut failures = Vec::new();
    for addr in addrs {
        let limit = deadline.min(Instant::now() + connect_timeout);
        match timeout_at(limit, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Small request heads and SSE reads should not wait for Nagle.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => failures.push(format!("{addr}: {e}")),
            Err(_) if Instant::now() >= deadline => {
                return Err(EgressError::Timeout(format!(
                    "connecting to {host} ({addr}) ran past the deadline"
                )))
            }
            Err(_) => failures.push(format!("{addr}: no answer within {connect_timeout:?}")),
        }
    }
    Err(EgressError::Connection(format!(
        "could not connect to {host}: {}",
        failures.join("; ")
    )))
}

pub(crate) fn server_name(url: &Url) -> Result<ServerName<'static>, EgressError> {
    match url.host() {
        Some(Host::Domain(d)) => ServerName::try_from(d.to_string()).map_err(|_| {
            EgressError::InvalidArgument(format!("`{d}` is not a valid TLS server name"))
        }),
        Some(Host::Ipv4(ip)) => Ok(ServerName::IpAddress(std::net::IpAddr::V4(ip).into())),
        Some(Host::Ipv6(ip)) => Ok(ServerName::IpAddress(std::net::IpAddr::V6(ip).into())),
        None => Err(EgressError::InvalidArgument(format!("`{url}` has no host"))),
    }
}
