//! `http-probe`: one request through `astrid:http` (today's SDK: `@1.2.0`) with the options its payload names,
//! replying with exactly what the guest got, so the daemon's tests see the SDK's view.
//!
//! Payload: the URL on the first line, then one option per line: `integrity=<sri>`,
//! `redirects=none` or `redirects=<n>`, `max_body=<bytes>`, `https_only`, and `hold=<n>`
//! (first send the same request n times and keep those responses open, unread). Reply:
//! `ok: <status> <location or -> <body>` or `error: <error-code>: <message>` (for a held
//! request that failed, `error: held #<i>: …`).
//!
//! `upload` (`astrid:http@1.2.0`'s streamed body): the URL on the first line, then each
//! line is one piece of a `POST` body, the first given with the request and the rest written
//! one by one before `finish`; a line `follow` instead asks for redirects to be followed, and
//! `abandon` drops the body unfinished. Reply: `ok: <status> <location or -> <body>`,
//! `abandoned`, or `error: …`.
#![forbid(unsafe_code)]

use astrid_sdk::http::{Redirects, Request};
use astrid_sdk::prelude::*;

#[derive(Default)]
struct HttpProbe;

/// The request and how many copies of it to hold open first.
fn build(payload: &str) -> Result<(Request, u32), String> {
    let mut lines = payload.lines();
    let mut req = Request::get(lines.next().unwrap_or_default());
    let mut hold = 0;
    for line in lines {
        req = match line.split_once('=') {
            Some(("hold", n)) => {
                hold = n.parse().map_err(|e| format!("hold: {e}"))?;
                req
            }
            Some(("integrity", v)) => req.integrity(v),
            Some(("redirects", "none")) => req.redirects(Redirects::None),
            Some(("redirects", n)) => req.redirects(Redirects::Follow(
                n.parse().map_err(|e| format!("redirects: {e}"))?,
            )),
            Some(("max_body", n)) => {
                req.max_body_bytes(n.parse().map_err(|e| format!("max_body: {e}"))?)
            }
            None if line == "https_only" => req.https_only(),
            _ => return Err(format!("unknown option `{line}`")),
        };
    }
    Ok((req, hold))
}

fn upload(payload: &str) -> Result<String, SysError> {
    let mut lines = payload.lines();
    let url = lines.next().unwrap_or_default();
    let mut pieces: Vec<&str> = lines.collect();
    let mut req = Request::new("POST", url).header("content-type", "text/plain");
    if pieces.first() == Some(&"follow") {
        req = req.redirects(Redirects::Follow(2));
        pieces.remove(0);
    }
    let abandon = pieces.last() == Some(&"abandon");
    if abandon {
        pieces.pop();
    }
    let mut rest = pieces.into_iter();
    if let Some(first) = rest.next() {
        req = req.body(first.as_bytes().to_vec());
    }
    let mut body = req.start()?;
    for piece in rest {
        body.write(piece.as_bytes())?;
    }
    if abandon {
        drop(body);
        return Ok("abandoned".into());
    }
    let resp = body.finish()?;
    let (status, location) = (resp.status, resp.header("location").map(str::to_owned));
    let text = resp.text()?;
    Ok(format!(
        "ok: {status} {} {text}",
        location.as_deref().unwrap_or("-")
    ))
}

#[capsule]
impl HttpProbe {
    #[astrid::handler]
    fn upload(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let answer = match upload(&String::from_utf8_lossy(&event.payload)) {
            Ok(text) => text,
            Err(e) => format!("error: {e}"),
        };
        Ok(Some(answer.into_bytes()))
    }

    #[astrid::handler]
    fn fetch(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let payload = String::from_utf8_lossy(&event.payload);
        let (req, hold) = build(&payload).map_err(CapsuleError::InvalidArgument)?;
        let mut held = Vec::new();
        for i in 0..hold {
            match req.clone().send() {
                Ok(resp) => held.push(resp),
                Err(e) => return Ok(Some(format!("error: held #{i}: {e}").into_bytes())),
            }
        }
        let answer = match req.send() {
            Ok(resp) => {
                let (status, location) = (resp.status, resp.header("location").map(str::to_owned));
                match resp.text() {
                    Ok(body) => {
                        format!("ok: {status} {} {body}", location.as_deref().unwrap_or("-"))
                    }
                    Err(e) => format!("error: {e}"),
                }
            }
            Err(e) => format!("error: {e}"),
        };
        Ok(Some(answer.into_bytes()))
    }
}
