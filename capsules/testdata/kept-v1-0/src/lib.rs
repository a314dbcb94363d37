//! A capsule built against the first release's world, `astrid:capsule/capsule@1.0.0` (every
//! `astrid:*` package at `@1.0.0`), with wit-bindgen rather than the SDK, so this source keeps
//! meaning 1.0 whatever the SDK moves to. Its built package is kept, as built, in
//! `crates/astrid-daemon/tests/data/kept-v1-0.capsule`, and `tests/abi_versions.rs` installs
//! those bytes into every later daemon: the host must go on serving them unchanged. Rebuilding
//! this source is for reading only; the kept bytes are the test.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "astrid:capsule/capsule@1.0.0",
    generate_all,
});

use astrid::capsule::types::{ErrorCode, Event};
use astrid::http1_0_0::http;
use astrid::kv::kv;
use astrid::sys::sys;

struct Kept;

fn failed(what: &str, e: impl core::fmt::Debug) -> ErrorCode {
    ErrorCode::Failed(format!("{what}: {e:?}"))
}

impl exports::astrid::capsule::guest::Guest for Kept {
    fn install() -> Result<(), ErrorCode> {
        Ok(())
    }

    fn upgrade(_previous: String) -> Result<(), ErrorCode> {
        Ok(())
    }

    fn run() -> Result<(), ErrorCode> {
        Ok(())
    }

    fn handle(handler: String, event: Event) -> Result<Option<Vec<u8>>, ErrorCode> {
        match handler.as_str() {
            // astrid:sys@1.0.0
            "whoami" => {
                let c = sys::caller();
                Ok(Some(format!("{} {}", c.principal, c.capsule).into_bytes()))
            }
            // astrid:kv@1.0.0: write the payload, read it back.
            "remember" => {
                kv::set("note", &event.payload).map_err(|e| failed("kv.set", e))?;
                kv::get("note").map_err(|e| failed("kv.get", e))
            }
            // astrid:http@1.0.0: GET the URL in the payload; `STATUS BODY`.
            "fetch" => {
                let url = String::from_utf8_lossy(&event.payload).into_owned();
                let req = http::Request {
                    method: "GET".into(),
                    url,
                    headers: Vec::new(),
                    body: Vec::new(),
                    timeout_ms: 10_000,
                };
                let (handle, head) = http::send(&req).map_err(|e| failed("http.send", e))?;
                let mut body = Vec::new();
                loop {
                    let piece =
                        http::read_body(handle, 65_536).map_err(|e| failed("http.read", e))?;
                    if piece.is_empty() {
                        break;
                    }
                    body.extend_from_slice(&piece);
                }
                http::close(handle);
                let mut out = format!("{} ", head.status).into_bytes();
                out.extend_from_slice(&body);
                Ok(Some(out))
            }
            other => Err(ErrorCode::UnknownHandler(other.into())),
        }
    }
}

export!(Kept);
