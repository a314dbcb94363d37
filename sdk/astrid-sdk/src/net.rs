//! Outbound TCP and TLS connections, shaped like `std::net::TcpStream`: [`TcpStream`]
//! implements [`std::io::Read`] and [`std::io::Write`].
//!
//! A target must be in the manifest's `[capabilities] net` (`"db.example.com:5432"`,
//! `"*.example.org:*"`), and allowed by a `net:connect:<host>:<port>` capability token, a
//! person's yes when asked, or the operator's consent for a local target (`astrid egress
//! allow`). The airlock refuses `localhost`, loopback, private and link-local addresses (in
//! any spelling, and names that resolve only to them) unless the operator consented to that
//! exact target. Every connect is in the principal's audit chain.
//!
//! ```no_run
//! use astrid_sdk::prelude::*;
//!
//! fn whois(domain: &str) -> Result<String, NetError> {
//!     // Capsule.toml: [capabilities] net = ["whois.iana.org:43"]
//!     let mut conn = net::TcpStream::connect("whois.iana.org", 43)?;
//!     conn.send(format!("{domain}\r\n").as_bytes())?;
//!     let mut answer = Vec::new();
//!     loop {
//!         let chunk = conn.receive(4096)?;
//!         if chunk.is_empty() {
//!             break; // the server closed the connection
//!         }
//!         answer.extend(chunk);
//!     }
//!     Ok(String::from_utf8_lossy(&answer).into_owned())
//! }
//! ```
//!
//! The same through `std::io`: `conn.write_all(..)` and `conn.read_to_string(..)`.

use std::io;
use std::time::Duration;

use crate::bindings::astrid::net::net as host;
use crate::error::NetError;

/// An open connection; closed when dropped.
#[derive(Debug)]
pub struct TcpStream {
    handle: u64,
    read_timeout: Option<Duration>,
}

impl TcpStream {
    /// A plain TCP connection to `host:port`.
    pub fn connect(host: &str, port: u16) -> Result<TcpStream, NetError> {
        Self::open(host, port, false, None)
    }

    /// A TLS connection to `host:port`, verified against `host`.
    pub fn connect_tls(host: &str, port: u16) -> Result<TcpStream, NetError> {
        Self::open(host, port, true, None)
    }

    /// As [`connect`](Self::connect) or [`connect_tls`](Self::connect_tls), giving up after
    /// `timeout` (the lookup, the connect and the handshake together).
    pub fn connect_timeout(
        host: &str,
        port: u16,
        tls: bool,
        timeout: Duration,
    ) -> Result<TcpStream, NetError> {
        Self::open(host, port, tls, Some(timeout))
    }

    fn open(
        host: &str,
        port: u16,
        tls: bool,
        timeout: Option<Duration>,
    ) -> Result<TcpStream, NetError> {
        let options = host::ConnectOptions {
            tls,
            timeout_ms: timeout.map_or(0, millis),
        };
        let handle = host::connect(host, port, options)?;
        Ok(TcpStream {
            handle,
            read_timeout: None,
        })
    }

    /// The connection's handle, for [`crate::io`].
    pub(crate) fn handle(&self) -> u64 {
        self.handle
    }

    /// How long a read waits for data; `None` (the default) waits as long as the
    /// invocation may run.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// Up to `max` bytes as soon as some arrive; empty once the peer has closed.
    pub fn receive(&mut self, max: usize) -> Result<Vec<u8>, NetError> {
        let max = u32::try_from(max).unwrap_or(u32::MAX);
        host::receive(self.handle, max, self.read_timeout.map_or(0, millis)).map_err(Into::into)
    }

    /// Sends all of `data`.
    pub fn send(&mut self, data: &[u8]) -> Result<(), NetError> {
        host::send(self.handle, data).map_err(Into::into)
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
}

fn io_error(e: NetError) -> io::Error {
    let kind = match e {
        NetError::Timeout(_) => io::ErrorKind::TimedOut,
        NetError::UnknownHandle => io::ErrorKind::NotConnected,
        NetError::Denied(_) => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

impl io::Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let got = self.receive(buf.len()).map_err(io_error)?;
        buf[..got.len()].copy_from_slice(&got);
        Ok(got.len())
    }
}

impl io::Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf).map_err(io_error)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        host::close(self.handle);
    }
}
