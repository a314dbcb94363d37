//! Streams: what `astrid:net` connections and `astrid:http` bodies have in common, and
//! waiting on several at once. Shaped like `std::io`: [`net::TcpStream`](crate::net::TcpStream)
//! implements [`Read`] and [`Write`], [`http::Response`](crate::http::Response) [`Read`] and
//! [`http::BodyWriter`](crate::http::BodyWriter) (a request body sent as it is written)
//! [`Write`]; [`ready`] is the one thing std has no word for, a `poll` over streams.
//!
//! Opening a stream was the checked and audited effect; reading, writing and waiting here are
//! not checked again. Streams live as long as the invocation.
//!
//! ```no_run
//! use std::time::Duration;
//! use astrid_sdk::prelude::*;
//!
//! /// Whichever of two feeds speaks first.
//! fn first_word() -> Result<String, SysError> {
//!     // Capsule.toml: [capabilities] net = ["feed-a.example.com:7000", "feed-b.example.com:7000"]
//!     let a = net::TcpStream::connect_tls("feed-a.example.com", 7000)?;
//!     let b = net::TcpStream::connect_tls("feed-b.example.com", 7000)?;
//!     let streams: [&dyn io::AsStream; 2] = [&a, &b];
//!     let ready = io::ready(&streams, Some(Duration::from_secs(5)))?;
//!     let Some(&first) = ready.first() else {
//!         return Ok("neither said anything within 5 s".into());
//!     };
//!     let words = io::read(streams[first], 4096, None)?;
//!     Ok(String::from_utf8_lossy(&words).into_owned())
//! }
//! ```

use std::time::Duration;

pub use std::io::{Read, Write};

use crate::bindings::astrid::io::{poll, streams};
use crate::error::IoError;

/// A stream `astrid:io` can read, write and wait on: a connection or a response body.
pub trait AsStream {
    /// The stream's handle in this invocation (one sequence for connections and bodies).
    fn stream_handle(&self) -> u64;
}

impl AsStream for crate::net::TcpStream {
    fn stream_handle(&self) -> u64 {
        self.handle()
    }
}

impl AsStream for crate::http::Response {
    fn stream_handle(&self) -> u64 {
        self.handle()
    }
}

impl AsStream for crate::http::BodyWriter {
    fn stream_handle(&self) -> u64 {
        self.handle()
    }
}

/// Waits until at least one of `streams` can be read without waiting (data, its end or its
/// failure is there), at most `timeout` (`None`: as long as the invocation may). Returns the
/// positions in `streams` of every one that can, in order; empty if the time ran out.
pub fn ready(streams: &[&dyn AsStream], timeout: Option<Duration>) -> Result<Vec<usize>, IoError> {
    let handles: Vec<u64> = streams.iter().map(|s| s.stream_handle()).collect();
    let ready = poll::ready(&handles, timeout.map_or(0, millis))?;
    Ok(ready.into_iter().map(|i| i as usize).collect())
}

/// Up to `max` bytes from `stream` as soon as some are there, waiting at most `timeout`
/// (`None`: as long as the invocation may); empty at the end of the stream. A wait that runs
/// out is [`IoError::Timeout`], and the stream stays open.
pub fn read(
    stream: &dyn AsStream,
    max: usize,
    timeout: Option<Duration>,
) -> Result<Vec<u8>, IoError> {
    let max = u32::try_from(max).unwrap_or(u32::MAX);
    streams::read(stream.stream_handle(), max, timeout.map_or(0, millis)).map_err(Into::into)
}

/// Writes all of `data` to `stream` (a connection or a request body; a response body is
/// [`IoError::Unsupported`]).
pub fn write(stream: &dyn AsStream, data: &[u8]) -> Result<(), IoError> {
    streams::write(stream.stream_handle(), data).map_err(Into::into)
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
}
