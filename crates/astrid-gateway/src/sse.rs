//! Server-sent event responses fed through a bounded queue. The producer never waits for the
//! reader: when the queue is full the reader is too slow and the stream ends, so a reader
//! that stops reading costs at most `stream_queue` frames of memory, never more.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use tokio::sync::mpsc;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The client went away (the response body was dropped).
    Gone,
    /// The client is not reading fast enough.
    Slow,
}

pub struct SseSender {
    tx: mpsc::Sender<Bytes>,
}

impl SseSender {
    /// `event:` (when named) and `data:` lines; `data` must be one line (JSON is).
    pub fn event(&self, name: Option<&str>, data: &str) -> Result<(), Closed> {
        let mut frame = String::with_capacity(data.len() + 32);
        if let Some(n) = name {
            frame.push_str("event: ");
            frame.push_str(n);
            frame.push('\n');
        }
        for line in data.split('\n') {
            frame.push_str("data: ");
            frame.push_str(line);
            frame.push('\n');
        }
        frame.push('\n');
        self.push(frame)
    }

    /// A comment line: every SSE parser skips it (keep-alives, extensions for our clients).
    pub fn comment(&self, text: &str) -> Result<(), Closed> {
        let one_line = text.replace('\n', " ");
        self.push(format!(": {one_line}\n\n"))
    }

    fn push(&self, frame: String) -> Result<(), Closed> {
        self.tx.try_send(Bytes::from(frame)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Closed::Slow,
            mpsc::error::TrySendError::Closed(_) => Closed::Gone,
        })
    }
}

/// A sender and the `text/event-stream` response that streams what it sends.
pub fn channel(queue: usize) -> (SseSender, Response) {
    let (tx, rx) = mpsc::channel::<Bytes>(queue.max(1));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Reverse proxies (nginx) would otherwise buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    (SseSender { tx }, resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reader_that_does_not_read_is_cut_off_at_the_queue_size() {
        let (tx, resp) = channel(2);
        tx.event(Some("x"), "{\"a\":1}").unwrap();
        tx.comment("still here").unwrap();
        assert_eq!(tx.event(None, "{}"), Err(Closed::Slow));
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX);
        drop(tx);
        let text = String::from_utf8(body.await.unwrap().to_vec()).unwrap();
        assert_eq!(text, "event: x\ndata: {\"a\":1}\n\n: still here\n\n");
    }

    #[tokio::test]
    async fn a_dropped_response_is_reported_as_gone() {
        let (tx, resp) = channel(2);
        drop(resp);
        assert_eq!(tx.event(None, "{}"), Err(Closed::Gone));
        assert_eq!(tx.comment("x"), Err(Closed::Gone));
    }
}

/// One server-sent event, as the document describes a `text/event-stream` answer: tools that
/// read the stream (Schemathesis, generated clients) check each event against this.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SseEvent {
    /// The event's kind (`thread`, `step`, `text`, `approval`, `done`, `error`, …; see
    /// docs/GATEWAY.md).
    pub event: String,
    /// The event's payload, JSON text.
    pub data: String,
    pub id: Option<String>,
    pub retry: Option<u64>,
}
