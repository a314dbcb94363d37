//! `agent`: runs one turn of the conversation (`agent.v1.turn`): asks the model, runs the
//! tools it calls, repeats until it answers, and stores the turn in the session.
//! Contract: `docs/AGENT-PROTOCOL.md`, section "A turn".
#![forbid(unsafe_code)]

mod config;
mod driver;
mod errors;
mod protocol;
mod tools;
mod turn;

use astrid_sdk::prelude::*;

#[derive(Default)]
struct Agent;

#[capsule]
impl Agent {
    /// `{"session", "input", "workspace", "max_steps"}` → the turn's reply.
    #[astrid::handler]
    fn turn(&self, event: &Event) -> Result<Vec<u8>, CapsuleError> {
        driver::turn(&event.payload)
    }
}
