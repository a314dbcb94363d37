//! A request whose body is written as it goes ([`Airlock::start`]): checked, audited and
//! connected like any request's first hop, then the body is streamed (chunked) from the
//! caller's writes, and [`EgressUpload::finish`] waits for the response head.
//!
//! A streamed body cannot be sent twice, so redirects are never followed: a 3xx is the
//! answer. The connection is driven inline, as for [`EgressResponse`], so writing works
//! from any runtime flavour and dropping the upload closes the socket (the server sees an
//! incomplete chunked body, never a complete one the caller did not finish).

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};
use url::Url;

use crate::connect::{Conn, Sender};
use crate::response::{drive, EgressResponse};
use crate::{EgressError, Integrity};

/// How many written pieces may wait for the connection before a write waits too.
pub(crate) const QUEUED_PIECES: usize = 4;

/// A request body: all of it at once, or pieces from the caller's writes.
pub(crate) enum ReqBody {
    Full(Option<Bytes>),
    Streamed(mpsc::Receiver<Bytes>),
}

impl ReqBody {
    pub(crate) fn full(b: Bytes) -> ReqBody {
        ReqBody::Full((!b.is_empty()).then_some(b))
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ReqBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ReqBody::Streamed(rx) => rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ReqBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            // Known: sent with a Content-Length.
            ReqBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            // Unknown: sent chunked.
            ReqBody::Streamed(_) => SizeHint::default(),
        }
    }
}

type Head = hyper::Result<http::Response<Incoming>>;

/// A request on the wire whose body is still being written.
pub struct EgressUpload {
    conn: Option<Pin<Box<Conn>>>,
    /// Kept so the connection's dispatcher stays open for this request.
    _sender: Sender,
    response: Pin<Box<dyn Future<Output = Head> + Send>>,
    /// The head, if the server answered before the body was complete.
    early: Option<Head>,
    body: Option<mpsc::Sender<Bytes>>,
    url: Url,
    deadline: Instant,
    max_body: u64,
    integrity: Option<Integrity>,
    written: u64,
}

impl std::fmt::Debug for EgressUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressUpload")
            .field("url", &self.url.as_str())
            .field("written", &self.written)
            .finish()
    }
}

/// Everything [`EgressUpload::new`] takes.
pub(crate) struct Started {
    pub sender: Sender,
    pub conn: Conn,
    pub request: http::Request<ReqBody>,
    pub body: mpsc::Sender<Bytes>,
    pub url: Url,
    pub deadline: Instant,
    pub max_body: u64,
    pub integrity: Option<Integrity>,
}

impl EgressUpload {
    pub(crate) fn new(s: Started) -> EgressUpload {
        let mut sender = s.sender;
        let response = Box::pin(sender.send_request(s.request));
        EgressUpload {
            conn: Some(Box::pin(s.conn)),
            _sender: sender,
            response,
            early: None,
            body: Some(s.body),
            url: s.url,
            deadline: s.deadline,
            max_body: s.max_body,
            integrity: s.integrity,
            written: 0,
        }
    }

    /// Queues the body's first piece (the request's own `body`), for
    /// [`Airlock::start`](crate::Airlock::start).
    pub(crate) fn queue_first(&mut self, first: Bytes) {
        if first.is_empty() {
            return;
        }
        self.written += first.len() as u64;
        if let Some(tx) = &self.body {
            // A fresh channel has room for one piece.
            let _ = tx.try_send(first);
        }
    }

    /// The URL the request went to.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Bytes written to the body so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Writes `data` to the body, waiting (under the deadline) while the connection has
    /// not taken the earlier pieces. A server that answered or closed before the body was
    /// complete makes this an error; its answer is still what [`finish`](Self::finish)
    /// returns.
    pub async fn write(&mut self, data: Vec<u8>) -> Result<(), EgressError> {
        if data.is_empty() {
            return Ok(());
        }
        let Some(tx) = self.body.clone() else {
            return Err(EgressError::InvalidArgument(
                "the body is already finished".into(),
            ));
        };
        let len = data.len() as u64;
        let mut send = std::pin::pin!(tx.send(Bytes::from(data)));
        let (conn, response, early) = (&mut self.conn, &mut self.response, &mut self.early);
        let url = &self.url;
        let sent = timeout_at(
            self.deadline,
            poll_fn(|cx| {
                if let Some(e) = drive(conn, cx) {
                    return Poll::Ready(Err(EgressError::Connection(format!(
                        "sending the body to {url}: {e}"
                    ))));
                }
                if early.is_none() {
                    if let Poll::Ready(head) = response.as_mut().poll(cx) {
                        *early = Some(head);
                    }
                }
                send.as_mut().poll(cx).map(|r| {
                    r.map_err(|_| {
                        EgressError::Connection(format!(
                            "{url} stopped taking the body before it was complete"
                        ))
                    })
                })
            }),
        )
        .await
        .map_err(|_| {
            EgressError::Timeout(format!("sending the body to {url} ran past the deadline"))
        })?;
        sent?;
        self.written += len;
        Ok(())
    }

    /// Ends the body and waits for the response head (under the deadline).
    pub async fn finish(mut self) -> Result<EgressResponse, EgressError> {
        // The end of the body: the last chunk goes out once the queue is drained.
        self.body = None;
        let head = match self.early.take() {
            Some(head) => head,
            None => {
                let (conn, response) = (&mut self.conn, &mut self.response);
                timeout_at(
                    self.deadline,
                    poll_fn(|cx| match drive(conn, cx) {
                        Some(e) => Poll::Ready(Err(e)),
                        None => response.as_mut().poll(cx),
                    }),
                )
                .await
                .map_err(|_| {
                    EgressError::Timeout(format!(
                        "no response from {} before the deadline",
                        self.url
                    ))
                })?
            }
        }
        .map_err(|e| EgressError::Connection(format!("{}: {e}", self.url)))?;
        let (parts, incoming) = head.into_parts();
        let mut response = EgressResponse::new(
            parts,
            incoming,
            self.conn.take(),
            self.url.to_string(),
            self.deadline,
            self.max_body,
        );
        if let Some(integrity) = &self.integrity {
            response.verify(integrity).await?;
        }
        Ok(response)
    }
}
