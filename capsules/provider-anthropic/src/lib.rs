//! `provider-anthropic`: answers `llm.v1.complete.anthropic` and `llm.v1.models.anthropic`
//! with the Anthropic Messages API (docs/AGENT-PROTOCOL.md). The API key is added by the host
//! from the manifest's `[[secret]]`; this code never sees it, and works without one against a
//! keyless gateway.
#![forbid(unsafe_code)]

use astrid_sdk::prelude::*;
use llm_common::{driver, Api};

#[derive(Default)]
struct Anthropic;

#[capsule]
impl Anthropic {
    /// One completion, streamed to the request's `stream_topic` when it has one.
    #[astrid::handler]
    fn complete(&self, event: &Event) -> Result<Vec<u8>, CapsuleError> {
        driver::complete(Api::Anthropic, event)
    }

    /// The models the API lists, with the configured one.
    #[astrid::handler]
    fn models(&self, event: &Event) -> Result<Vec<u8>, CapsuleError> {
        driver::models(Api::Anthropic, event)
    }
}
