//! `asker`: requests approval for `fs.read` on the resource its payload names and replies
//! with the decision's name (or the error's text), so tests see exactly what the guest saw.
#![forbid(unsafe_code)]

use astrid_sdk::prelude::*;

/// Long enough for a test's approver to answer, short enough for a timeout test.
const ASK_MS: u32 = 2000;

#[derive(Default)]
struct Asker;

#[capsule]
impl Asker {
    #[astrid::handler]
    fn ask(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let resource = String::from_utf8_lossy(&event.payload);
        let answer = match approval::request("fs.read", &resource, "test", ASK_MS) {
            Ok(d) => d.as_str().to_string(),
            Err(e) => format!("error: {e}"),
        };
        Ok(Some(answer.into_bytes()))
    }
}
