//! Pieces both dialects share: ids, text splitting, token estimates and response bodies.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use serde::Serialize;

use crate::ScriptedCall;

/// Produces ids that look like the real services' (base62 of a fixed length) without a
/// random source, so two runs of a test see the same ids.
#[derive(Debug, Default)]
pub(crate) struct Ids(AtomicU64);

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl Ids {
    pub(crate) fn token(&self, len: usize) -> String {
        let mut state = self.0.fetch_add(1, Ordering::Relaxed);
        let mut out = String::with_capacity(len);
        let mut bits = splitmix(&mut state);
        for i in 0..len {
            if i % 10 == 9 {
                bits = splitmix(&mut state);
            }
            out.push(BASE62[(bits % 62) as usize] as char);
            bits /= 62;
        }
        out
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Splits `s` into at most `n` non-empty pieces of about equal length, on char boundaries.
pub(crate) fn split_pieces(s: &str, n: usize) -> Vec<&str> {
    let chars = s.chars().count();
    if chars == 0 {
        return Vec::new();
    }
    let n = n.clamp(1, chars);
    let mut pieces = Vec::with_capacity(n);
    let mut rest = s;
    for k in 0..n {
        let take = chars * (k + 1) / n - chars * k / n;
        let end = rest
            .char_indices()
            .nth(take)
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let (head, tail) = rest.split_at(end);
        pieces.push(head);
        rest = tail;
    }
    pieces
}

/// A rough token count (about four bytes a token), never zero, so usage numbers move with
/// the size of the conversation the way real ones do.
pub(crate) fn estimate_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4).max(1)
}

/// What a dialect needs to render one scripted answer.
pub(crate) struct Turn {
    pub model: String,
    pub text: String,
    pub calls: Vec<ScriptedCall>,
    pub prompt_tokens: u64,
    pub stream: bool,
    pub include_usage: bool,
    pub pieces: usize,
    pub delay: Duration,
}

impl Turn {
    pub(crate) fn completion_tokens(&self) -> u64 {
        let args: usize = self
            .calls
            .iter()
            .map(|c| c.name.len() + c.arguments.to_string().len())
            .sum();
        estimate_tokens(self.text.len() + args)
    }
}

fn with_headers(mut response: Response, headers: &[(String, String)]) -> Response {
    for (name, value) in headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            continue;
        };
        response.headers_mut().append(name, value);
    }
    response
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A whole-body response with the given content type and extra headers.
pub(crate) fn raw(
    status: u16,
    content_type: &str,
    body: impl Into<Body>,
    headers: &[(String, String)],
) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status_code(status);
    let mut all = vec![("content-type".to_string(), content_type.to_string())];
    all.extend_from_slice(headers);
    with_headers(response, &all)
}

pub(crate) fn json(status: u16, body: &impl Serialize, headers: &[(String, String)]) -> Response {
    // Values and ordered objects of strings and numbers always serialise.
    let text = serde_json::to_string(body).unwrap_or_default();
    raw(status, "application/json", text, headers)
}

/// An event stream whose frames leave the server one by one: between frames the body
/// yields (or sleeps `delay`), which makes hyper flush what it has, so a client sees the
/// answer arrive in pieces as it does from the real services.
pub(crate) fn event_stream(
    frames: Vec<String>,
    delay: Duration,
    headers: &[(String, String)],
) -> Response {
    let stream = futures_util::stream::iter(frames.into_iter().enumerate()).then(
        move |(i, frame)| async move {
            if i > 0 {
                if delay.is_zero() {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(delay).await;
                }
            }
            Ok::<Bytes, Infallible>(Bytes::from(frame))
        },
    );
    let mut all = vec![("cache-control".to_string(), "no-cache".to_string())];
    all.extend_from_slice(headers);
    raw(
        200,
        "text/event-stream; charset=utf-8",
        Body::from_stream(stream),
        &all,
    )
}

/// A response whose body fails at once, so hyper drops the connection: what a stalled
/// request gets when the fixture shuts down.
pub(crate) fn broken() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("fixture shut down"))
    });
    Response::new(Body::from_stream(stream))
}

/// Scripted error headers plus the request-id header the dialect always sends.
pub(crate) fn merged(
    extra: &[(String, String)],
    base: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut all = base;
    all.extend_from_slice(extra);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_text_in_order() {
        let s = "héllo wörld, ünïcode";
        for n in 1..30 {
            let p = split_pieces(s, n);
            assert_eq!(p.concat(), s);
            assert!(p.iter().all(|x| !x.is_empty()));
            assert_eq!(p.len(), n.min(s.chars().count()));
        }
        assert!(split_pieces("", 3).is_empty());
        assert_eq!(split_pieces("abcdef", 0), vec!["abcdef"]);
    }

    #[test]
    fn ids_are_distinct_and_base62() {
        let ids = Ids::default();
        let a = ids.token(24);
        let b = ids.token(24);
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }
}
