//! A response whose body is read piece by piece under the size cap and the deadline.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming};
use tokio::time::{timeout_at, Instant};

use crate::connect::Conn;
use crate::EgressError;

/// The head of the final response (after redirects) and its still-unread body.
pub struct EgressResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The URL that answered, after any redirects.
    pub final_url: String,
    body: Incoming,
    /// The connection is driven here rather than in a spawned task, so reading works from
    /// any runtime flavour (the host calls in through `Handle::block_on`) and dropping the
    /// response closes the socket.
    conn: Option<Pin<Box<Conn>>>,
    deadline: Instant,
    max_body: u64,
    received: u64,
    pending: Bytes,
    ended: bool,
    failed: Option<EgressError>,
}

impl EgressResponse {
    pub(crate) fn new(
        head: http::response::Parts,
        body: Incoming,
        conn: Option<Pin<Box<Conn>>>,
        final_url: String,
        deadline: Instant,
        max_body: u64,
    ) -> Self {
        let headers = head
            .headers
            .iter()
            .map(|(n, v)| {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_string(), v)
            })
            .collect();
        EgressResponse {
            status: head.status.as_u16(),
            headers,
            final_url,
            body,
            conn,
            deadline,
            max_body,
            received: 0,
            pending: Bytes::new(),
            ended: false,
            failed: None,
        }
    }

    /// Bytes received and not yet handed on: the whole body of a response read for an
    /// integrity check, otherwise at most one piece.
    pub fn held_bytes(&self) -> usize {
        self.pending.len()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The next piece of the body, at most `max` bytes (at least 1), as soon as any data is
    /// available; `None` at the end. After an error every later call returns it again.
    /// Cancel-safe: dropping the future (e.g. under an outer timeout) loses no bytes.
    pub async fn chunk(&mut self, max: usize) -> Result<Option<Vec<u8>>, EgressError> {
        let max = max.max(1);
        self.fill().await?;
        if self.pending.is_empty() {
            return Ok(None);
        }
        let n = max.min(self.pending.len());
        Ok(Some(self.pending.split_to(n).to_vec()))
    }

    /// Waits until a [`chunk`](Self::chunk) would not wait: data, the end or a failure has
    /// arrived. Cancel-safe, so a caller can wait on several bodies (and streams) at once.
    pub async fn wait_readable(&mut self) {
        let _ = self.fill().await;
    }

    /// A [`chunk`](Self::chunk) would not wait.
    pub fn is_readable(&self) -> bool {
        !self.pending.is_empty() || self.ended || self.failed.is_some()
    }

    /// Receives until some data is pending or the body ended; the error, again, after one.
    async fn fill(&mut self) -> Result<(), EgressError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        loop {
            if !self.pending.is_empty() || self.ended {
                return Ok(());
            }
            let (conn, body) = (&mut self.conn, &mut self.body);
            let next = timeout_at(self.deadline, poll_fn(|cx| poll_body(conn, body, cx))).await;
            match next {
                Err(_) => {
                    return Err(self.fail(EgressError::Timeout(format!(
                        "reading the body of {} ran past the deadline",
                        self.final_url
                    ))))
                }
                Ok(None) => {
                    self.ended = true;
                    self.conn = None;
                }
                Ok(Some(Err(e))) => {
                    return Err(self.fail(EgressError::Connection(format!(
                        "reading the body of {}: {e}",
                        self.final_url
                    ))))
                }
                Ok(Some(Ok(frame))) => {
                    // Trailers are dropped; only data counts.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    self.received += data.len() as u64;
                    if self.received > self.max_body {
                        return Err(self.fail(EgressError::TooLarge(format!(
                            "the body of {} is larger than {} bytes",
                            self.final_url, self.max_body
                        ))));
                    }
                    self.pending = data;
                }
            }
        }
    }

    /// Reads the rest of the body into memory (still under the cap and the deadline).
    pub async fn bytes(&mut self) -> Result<Vec<u8>, EgressError> {
        let mut all = Vec::new();
        while let Some(piece) = self.chunk(64 * 1024).await? {
            all.extend_from_slice(&piece);
        }
        Ok(all)
    }

    /// Reads the whole body and checks it against `integrity`. On a match the body is kept
    /// to be read as usual; on a mismatch it is dropped, and the error (returned now and by
    /// every later read) names the digest it had.
    pub(crate) async fn verify(&mut self, integrity: &crate::Integrity) -> Result<(), EgressError> {
        let body = self.bytes().await?;
        match integrity.check(&body) {
            Ok(()) => {
                self.pending = Bytes::from(body);
                Ok(())
            }
            Err(got) => Err(self.fail(EgressError::Integrity(format!(
                "the body of {} ({} bytes) has digest {got}, not the one the request named",
                self.final_url,
                body.len()
            )))),
        }
    }

    fn fail(&mut self, e: EgressError) -> EgressError {
        self.failed = Some(e.clone());
        self.conn = None;
        self.pending = Bytes::new();
        e
    }
}

/// Polls the connection (which moves the bytes) and then the body channel it feeds.
fn poll_body(
    conn: &mut Option<Pin<Box<Conn>>>,
    body: &mut Incoming,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
    if let Some(e) = drive(conn, cx) {
        return Poll::Ready(Some(Err(e)));
    }
    if body.is_end_stream() {
        return Poll::Ready(None);
    }
    Pin::new(body).poll_frame(cx)
}

/// Advances the connection; returns its error if it failed. A finished connection is
/// dropped so it is not polled again.
pub(crate) fn drive(
    conn: &mut Option<Pin<Box<Conn>>>,
    cx: &mut Context<'_>,
) -> Option<hyper::Error> {
    let c = conn.as_mut()?;
    match c.as_mut().poll(cx) {
        Poll::Ready(res) => {
            *conn = None;
            res.err()
        }
        Poll::Pending => None,
    }
}

impl fmt::Debug for EgressResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EgressResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("final_url", &self.final_url)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}
