//! Outbound HTTP through the kernel's network airlock.
//!
//! Every request (and every redirect it follows) is checked by the host against the manifest's
//! `[capabilities] net`, the principal's tokens or a human approval, and the airlock's address
//! policy. Credentials declared as `[[secret]]`s are added by the host; the capsule never sees
//! them.
//!
//! A request may narrow what the operator allows (a shorter time, fewer redirects, a smaller
//! body, https only) and may pin the body's digest ([`Request::integrity`]), which the host
//! checks before any of the body reaches the capsule. A body too large to hold, or made while
//! it is sent, is written as it goes: [`Request::start`] gives a [`BodyWriter`]
//! (`std::io::Write`), and [`BodyWriter::finish`] the response. This is `astrid:http@1.2.0`.
//!
//! ```no_run
//! # fn f() -> Result<(), astrid_sdk::SysError> {
//! use astrid_sdk::http::{Redirects, Request};
//! let resp = Request::get("https://example.com/").timeout_ms(10_000).send()?;
//! let status = resp.status;
//! let body = resp.text()?;
//!
//! // A script from a CDN, only if it is the exact file expected.
//! let script = Request::get("https://cdn.example.com/lib.js")
//!     .https_only()
//!     .redirects(Redirects::None)
//!     .max_body_bytes(1 << 20)
//!     .integrity("sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC")
//!     .send()?
//!     .body()?;
//!
//! // A large upload, written as it is produced.
//! let mut upload = Request::new("PUT", "https://store.example.com/backup.tar").start()?;
//! for piece in [b"first part".as_slice(), b"second part"] {
//!     upload.write(piece)?;
//! }
//! let stored = upload.finish()?.status;
//! # let _ = (status, body, script, stored); Ok(()) }
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::bindings::astrid::http1_2_0::http;
use crate::bindings::astrid::io::streams;
use crate::error::{HttpError, IoError, SysError};

/// How much [`Response::body`] asks the host for per call.
const BODY_CHUNK: u32 = 64 * 1024;

/// What to do when the server answers with a redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Redirects {
    /// Follow up to the operator's limit (`http.max_redirects`, 5 by default).
    #[default]
    HostDefault,
    /// Follow none: the 3xx response, with its `location` header, is the answer.
    None,
    /// Follow at most this many (never more than the operator's limit).
    Follow(u8),
}

/// An HTTP request, built up and then [`send`](Request::send)t.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout_ms: u32,
    redirects: Redirects,
    max_body_bytes: u64,
    https_only: bool,
    integrity: Option<String>,
}

impl Request {
    /// A request with any method (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD`).
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: 0,
            redirects: Redirects::HostDefault,
            max_body_bytes: 0,
            https_only: false,
            integrity: None,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` request with `body`.
    pub fn post(url: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self::new("POST", url).body(body)
    }

    /// Adds a header (repeatable; the host may refuse ones it manages itself).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the body to `value` as JSON and the `content-type` to `application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self, SysError> {
        self.body = serde_json::to_vec(value)?;
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        Ok(self.header("content-type", "application/json"))
    }

    /// Limit for the whole exchange including the body; 0 (the default) means the host's.
    /// The host caps it by its maximum and the invocation's deadline.
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.timeout_ms = ms;
        self
    }

    /// The redirect policy (the default follows up to the operator's limit).
    pub fn redirects(mut self, policy: Redirects) -> Self {
        self.redirects = policy;
        self
    }

    /// The largest response body this request accepts; reading past it is
    /// [`HttpError::TooLarge`]. The operator's cap still applies to a larger value.
    pub fn max_body_bytes(mut self, max: u64) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Refuse every hop that is not `https`, redirects and consented local servers included.
    pub fn https_only(mut self) -> Self {
        self.https_only = true;
        self
    }

    /// Subresource integrity, as in HTML: `sha256-<base64>`, `sha384-…` or `sha512-…`
    /// (several separated by spaces; the strongest algorithm listed is checked). The host reads
    /// the whole body before [`send`](Self::send) returns; a different body is
    /// [`HttpError::IntegrityMismatch`] and none of it reaches the capsule.
    pub fn integrity(mut self, digests: impl Into<String>) -> Self {
        self.integrity = Some(digests.into());
        self
    }

    /// Sends the request and returns once the response head arrived (with
    /// [`integrity`](Self::integrity), once the whole body arrived and matched). A 4xx or 5xx
    /// status is a response, not an error.
    pub fn send(self) -> Result<Response, HttpError> {
        let (handle, head) = http::send(&self.into_wit())?;
        Ok(Response::new(handle, head))
    }

    /// Starts the request with a body written as it goes: the request is checked and
    /// connected as [`send`](Self::send) would, the body set so far is its first piece, and
    /// the returned [`BodyWriter`] sends the rest (chunked) until
    /// [`finish`](BodyWriter::finish). Redirects are not followed (a streamed body cannot
    /// be sent twice): a 3xx is the answer, and [`Redirects::Follow`] is an
    /// `invalid-argument` error. `GET` and `HEAD` cannot stream a body.
    pub fn start(self) -> Result<BodyWriter, HttpError> {
        let handle = http::start(&self.into_wit())?;
        Ok(BodyWriter {
            handle,
            finished: false,
        })
    }

    fn into_wit(self) -> http::Request {
        http::Request {
            method: self.method,
            url: self.url,
            headers: self
                .headers
                .into_iter()
                .map(|(name, value)| http::Header { name, value })
                .collect(),
            body: self.body,
            options: http::Options {
                timeout_ms: self.timeout_ms,
                redirects: match self.redirects {
                    Redirects::HostDefault => http::RedirectPolicy::HostDefault,
                    Redirects::None => http::RedirectPolicy::None,
                    Redirects::Follow(n) => http::RedirectPolicy::Follow(n),
                },
                max_body_bytes: self.max_body_bytes,
                https_only: self.https_only,
                integrity: self.integrity,
            },
        }
    }
}

/// The body of a request started with [`Request::start`], sent as it is written. Dropping
/// it without [`finish`](Self::finish) abandons the request: the server never receives a
/// complete body.
#[derive(Debug)]
pub struct BodyWriter {
    handle: u64,
    finished: bool,
}

impl BodyWriter {
    /// Sends `data` as the next part of the body, waiting while the connection is behind.
    /// An error (the server answered or closed early, the deadline) abandons the request.
    pub fn write(&mut self, data: &[u8]) -> Result<(), IoError> {
        streams::write(self.handle, data).map_err(Into::into)
    }

    /// Ends the body and waits for the response head.
    pub fn finish(mut self) -> Result<Response, HttpError> {
        self.finished = true;
        let (handle, head) = http::finish(self.handle)?;
        Ok(Response::new(handle, head))
    }

    /// The body's handle, for [`crate::io`].
    pub(crate) fn handle(&self) -> u64 {
        self.handle
    }
}

impl std::io::Write for BodyWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        BodyWriter::write(self, buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        if !self.finished {
            streams::close(self.handle);
        }
    }
}

/// A response whose body is still with the host; read it with [`read_chunk`](Self::read_chunk)
/// or [`body`](Self::body). Dropping it closes the host handle.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Response headers in the order received.
    pub headers: Vec<(String, String)>,
    /// The URL that answered, after any redirects.
    pub final_url: String,
    handle: u64,
    finished: bool,
}

impl Response {
    fn new(handle: u64, head: http::ResponseHead) -> Response {
        Response {
            status: head.status,
            headers: head
                .headers
                .into_iter()
                .map(|h| (h.name, h.value))
                .collect(),
            final_url: head.final_url,
            handle,
            finished: false,
        }
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body's handle, for [`crate::io`].
    pub(crate) fn handle(&self) -> u64 {
        self.handle
    }

    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The next piece of the body, at most `max` bytes, or `None` at the end. Returns as soon
    /// as any data arrived, so a server-sent event stream can be read as it comes.
    pub fn read_chunk(&mut self, max: u32) -> Result<Option<Vec<u8>>, HttpError> {
        if self.finished {
            return Ok(None);
        }
        let chunk = http::read_body(self.handle, max.max(1))?;
        if chunk.is_empty() {
            self.finished = true;
            return Ok(None);
        }
        Ok(Some(chunk))
    }

    /// The rest of the body.
    pub fn body(mut self) -> Result<Vec<u8>, HttpError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.read_chunk(BODY_CHUNK)? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// The rest of the body as text; invalid UTF-8 is replaced with U+FFFD.
    pub fn text(self) -> Result<String, HttpError> {
        let body = self.body()?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// The rest of the body decoded as JSON.
    pub fn json<T: DeserializeOwned>(self) -> Result<T, SysError> {
        let body = self.body()?;
        Ok(serde_json::from_slice(&body)?)
    }
}

/// The body through `std::io`, as [`read_chunk`](Response::read_chunk) gives it.
impl std::io::Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let max = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        match self.read_chunk(max).map_err(std::io::Error::other)? {
            Some(chunk) => {
                buf[..chunk.len()].copy_from_slice(&chunk);
                Ok(chunk.len())
            }
            None => Ok(0),
        }
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        http::close(self.handle);
    }
}

/// `GET url` and the whole body; a status other than 2xx is [`SysError::HttpStatus`].
pub fn get(url: &str) -> Result<Vec<u8>, SysError> {
    let resp = Request::get(url).send()?;
    if !resp.is_success() {
        return Err(SysError::HttpStatus {
            status: resp.status,
            url: resp.final_url.clone(),
        });
    }
    Ok(resp.body()?)
}
