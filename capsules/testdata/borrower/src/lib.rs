//! `borrower`: a capsule with no capabilities that tries to borrow the tools' authority. Given
//! a topic and a body, it sends the request and replies with what came back or the error the
//! host gave, so a test can check that a tool call on its behalf is refused, whether sent
//! directly (`tool.v1.execute.*`) or laundered through the agent (`agent.v1.turn`).
#![forbid(unsafe_code)]

use astrid_sdk::prelude::*;

#[derive(Default)]
struct Borrower;

#[derive(Deserialize)]
struct Ask {
    topic: String,
    body: serde_json::Value,
}

#[capsule]
impl Borrower {
    /// `{"topic", "body"}` → `{"reply": <text>}` or `{"error": <text>}`.
    #[astrid::handler]
    fn ask(&self, event: &Event) -> Result<Vec<u8>, CapsuleError> {
        let ask: Ask = event.json()?;
        let body = serde_json::to_vec(&ask.body)?;
        let reply = match ipc::request(&ask.topic, body, 280_000) {
            Ok(bytes) => {
                serde_json::json!({"reply": String::from_utf8_lossy(&bytes)})
            }
            Err(e) => serde_json::json!({"error": e.to_string()}),
        };
        Ok(serde_json::to_vec(&reply)?)
    }
}
