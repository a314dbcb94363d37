//! `astrid:net`'s byte streams: one TCP connection (TLS optional) opened through the same
//! gate as an HTTP hop. The target passes the address checks a URL's host would (a
//! `localhost` name and a non-public IP literal refused unless consented), then the caller's
//! [`Authorize`], then one DNS lookup whose non-public answers are dropped; the socket goes
//! to an address that passed, and TLS is verified against the name asked for.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};
use url::Url;

use crate::connect::{self, Io};
use crate::policy;
use crate::{Airlock, Authorize, Consent, EgressError};

/// A connection the airlock opened for `astrid:net`.
/// The most [`NetStream::wait_readable`] takes from the connection ahead of a read.
const READ_AHEAD: usize = 64 * 1024;

pub struct NetStream {
    io: Box<dyn Io>,
    peer: SocketAddr,
    /// What [`NetStream::wait_readable`] took from the connection and nobody read yet: data,
    /// an empty piece for the peer's end, or the read's failure.
    ahead: Option<Result<Vec<u8>, EgressError>>,
}

impl std::fmt::Debug for NetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetStream")
            .field("peer", &self.peer)
            .finish()
    }
}

/// The `https://host:port/` stand-in the address checks and the caller's [`Authorize`]
/// see for a stream target, with the host normalised as a URL's would be (so `0x7f000001`
/// is `127.0.0.1`, an IPv6 address is bracketed, a name is lower case).
pub fn stream_target(host: &str, port: u16) -> Result<Url, EgressError> {
    if port == 0 {
        return Err(EgressError::InvalidArgument(
            "port 0 is not a target".into(),
        ));
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    let literal = match bare {
        Some(v6) => format!("[{v6}]"),
        None if host.contains(':') => format!("[{host}]"),
        None => host.to_string(),
    };
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']');
    if host.is_empty() || host.len() > 253 || !host.chars().all(allowed) {
        return Err(EgressError::InvalidArgument(format!(
            "`{host}` is not a host name or an IP address"
        )));
    }
    let url = Url::parse(&format!("https://{literal}:{port}/"))
        .map_err(|e| EgressError::InvalidArgument(format!("`{host}`: {e}")))?;
    if url.host().is_none() || url.path() != "/" {
        return Err(EgressError::InvalidArgument(format!(
            "`{host}` is not a host name or an IP address"
        )));
    }
    Ok(url)
}

impl Airlock {
    /// Opens a stream to `host:port` (TLS when `tls`), checked as described in the module
    /// docs; `timeout` bounds the lookup, the connect and the handshake together.
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
        tls: bool,
        consent: &Consent,
        auth: &dyn Authorize,
        timeout: Option<Duration>,
    ) -> Result<NetStream, EgressError> {
        let limit = timeout
            .unwrap_or(self.cfg.default_timeout)
            .min(self.cfg.max_timeout);
        let deadline = Instant::now() + limit;
        let url = stream_target(host, port)?;
        let hop = policy::check_url(&url, consent, auth)?;
        auth.authorize(&url).map_err(EgressError::Denied)?;
        let addrs = self.addresses(&url, &hop, auth, deadline).await?;
        let name = url.host_str().unwrap_or_default().to_string();
        let tcp = connect::tcp(&addrs, &name, self.cfg.connect_timeout, deadline).await?;
        let peer = tcp
            .peer_addr()
            .map_err(|e| EgressError::Connection(format!("{name}: {e}")))?;
        let io: Box<dyn Io> = if tls {
            let server = connect::server_name(&url)?;
            let stream = timeout_at(deadline, self.tls_stream.connect(server, tcp))
                .await
                .map_err(|_| {
                    EgressError::Timeout(format!("TLS handshake with {name} took too long"))
                })?
                .map_err(|e| EgressError::Connection(format!("TLS with {name} failed: {e}")))?;
            Box::new(stream)
        } else {
            Box::new(tcp)
        };
        Ok(NetStream {
            io,
            peer,
            ahead: None,
        })
    }
}

/// The stream as tokio byte streams, so a caller can carry it (`tokio::io::copy_bidirectional`).
impl tokio::io::AsyncRead for NetStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.ahead.take() {
            Some(Ok(mut data)) => {
                let n = data.len().min(buf.remaining());
                buf.put_slice(&data[..n]);
                if n < data.len() {
                    self.ahead = Some(Ok(data.split_off(n)));
                }
                std::task::Poll::Ready(Ok(()))
            }
            Some(Err(e)) => std::task::Poll::Ready(Err(std::io::Error::other(e))),
            None => std::pin::Pin::new(&mut self.io).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for NetStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl NetStream {
    /// The address the stream is connected to (one the policy accepted).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Writes all of `data`.
    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), EgressError> {
        self.io
            .write_all(data)
            .await
            .map_err(|e| EgressError::Connection(format!("writing to {}: {e}", self.peer)))?;
        self.io
            .flush()
            .await
            .map_err(|e| EgressError::Connection(format!("writing to {}: {e}", self.peer)))
    }

    /// Up to `max` bytes as soon as some arrive; empty once the peer has closed its side.
    /// Cancel-safe: dropping the future loses no bytes.
    pub async fn read(&mut self, max: usize) -> Result<Vec<u8>, EgressError> {
        let max = max.max(1);
        if let Some(ahead) = self.ahead.take() {
            let mut data = ahead?;
            if data.len() > max {
                self.ahead = Some(Ok(data.split_off(max)));
            }
            return Ok(data);
        }
        let mut buf = vec![0; max];
        let n = self
            .io
            .read(&mut buf)
            .await
            .map_err(|e| EgressError::Connection(format!("reading from {}: {e}", self.peer)))?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Waits until a read would not wait: data, the peer's end or a failure has arrived (and
    /// is kept for the next read). Cancel-safe, so a caller can wait on several streams at
    /// once and drop the waits that lost.
    pub async fn wait_readable(&mut self) {
        if self.ahead.is_some() {
            return;
        }
        let mut buf = vec![0; READ_AHEAD];
        let got = self.io.read(&mut buf).await;
        self.ahead = Some(match got {
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(e) => Err(EgressError::Connection(format!(
                "reading from {}: {e}",
                self.peer
            ))),
        });
    }

    /// A read would not wait (see [`NetStream::wait_readable`]).
    pub fn is_readable(&self) -> bool {
        self.ahead.is_some()
    }

    /// Closes the writing side (TLS close-notify, then FIN).
    pub async fn shutdown(&mut self) {
        let _ = self.io.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_normalised_like_url_hosts() {
        let host = |h: &str, p: u16| stream_target(h, p).map(|u| u.host_str().unwrap().to_string());
        assert_eq!(host("Example.COM", 443).unwrap(), "example.com");
        assert_eq!(host("0x7f000001", 80).unwrap(), "127.0.0.1");
        assert_eq!(host("2130706433", 80).unwrap(), "127.0.0.1");
        assert_eq!(host("::1", 80).unwrap(), "[::1]");
        assert_eq!(host("[::ffff:127.0.0.1]", 80).unwrap(), "[::ffff:7f00:1]");
        for bad in [
            "",
            "a/b",
            "evil.com/@127.0.0.1",
            "a b",
            "x@y",
            "h?q",
            "h#f",
            "%41",
        ] {
            assert!(
                matches!(stream_target(bad, 80), Err(EgressError::InvalidArgument(_))),
                "{bad:?}"
            );
        }
        assert!(stream_target("example.com", 0).is_err());
    }
}
