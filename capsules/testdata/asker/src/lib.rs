//! `asker`: requests approval on the resource its payload names and replies with the
//! decision's name (or the error's text), so tests see exactly what the guest saw; and reads
//! a file, so tests see whether a token minted for it covers the read. `asker-twin` is the
//! same code under another name (the capsule a token bound to `asker` must not serve).
#![forbid(unsafe_code)]

use astrid_sdk::prelude::*;

/// Long enough for a test's approver to answer, short enough for a timeout test.
const ASK_MS: u32 = 2000;

#[derive(Default)]
struct Asker;

#[capsule]
impl Asker {
    /// Payload: the resource, optionally followed by a newline and the reason to give
    /// (anything, control characters included: it is the capsule's own text).
    #[astrid::handler]
    fn ask(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let payload = String::from_utf8_lossy(&event.payload);
        let (resource, reason) = payload.split_once('\n').unwrap_or((&payload, "test"));
        let answer = match approval::request("fs.read", resource, reason, ASK_MS) {
            Ok(d) => d.as_str().to_string(),
            Err(e) => format!("error: {e}"),
        };
        Ok(Some(answer.into_bytes()))
    }

    /// Payload: an absolute path. Replies `ok: <n> bytes` or `error: <error-code>: …`.
    #[astrid::handler]
    fn read(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let path = String::from_utf8_lossy(&event.payload);
        let answer = match fs::read(&path) {
            Ok(bytes) => format!("ok: {} bytes", bytes.len()),
            Err(e) => format!("error: {e}"),
        };
        Ok(Some(answer.into_bytes()))
    }
}
