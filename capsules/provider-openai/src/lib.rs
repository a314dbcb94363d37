//! `provider-openai`: answers `llm.v1.complete.openai` and `llm.v1.models.openai` against any
//! OpenAI-compatible chat completions server (docs/AGENT-PROTOCOL.md). The API key is added by
//! the host from the manifest's `[[secret]]`; this code never sees it, and works without one
//! against local servers.
#![forbid(unsafe_code)]

use astrid_sdk::prelude::*;
use llm_common::{driver, Api};

#[derive(Default)]
struct OpenAi;

#[capsule]
impl OpenAi {
    /// One completion, streamed to the request's `stream_topic` when it has one.
    #[astrid::handler]
    fn complete(&self, event: &Event) -> Result<Vec<u8>, CapsuleError> {
        driver::complete(Api::OpenAi, event)
    }

    /// The models the server lists, with the configured one.
    #[astrid::handler]
    fn models(&self, event: &Event) -> Result<Vec<u8>, CapsuleError> {
        driver::models(Api::OpenAi, event)
    }
}
