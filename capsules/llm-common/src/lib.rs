//! What the agent and the provider capsules share about talking to language models: the
//! normalised conversation and `llm.v1.*` payloads of docs/AGENT-PROTOCOL.md, an incremental
//! server-sent-event parser, the pure translation to and from the OpenAI chat completions and
//! Anthropic Messages APIs, and the user-facing error messages.
//!
//! Everything here is pure and host-testable. The HTTP and bus side the provider capsules run
//! lives in [`driver`], behind the `capsule` feature.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod anthropic;
mod api;
mod config;
mod error;
pub mod openai;
pub mod sse;
mod types;

#[cfg(feature = "capsule")]
pub mod driver;

#[cfg(test)]
mod testutil;

pub use api::{parse_models, Api, Decoder, Params};
pub use config::{ProviderConfig, DEFAULT_MAX_TOKENS, DEFAULT_TIMEOUT_MS};
pub use error::{retry_after, ErrorBody, LlmError};
pub use sse::{SseError, SseEvent, SseParser};
pub use types::{
    arguments_from_str, arguments_from_value, AgentEvent, CompleteReply, CompleteRequest, Message,
    ModelInfo, ModelsReply, StopReason, ToolCall, ToolSpec, Usage,
};

impl From<SseError> for LlmError {
    fn from(e: SseError) -> Self {
        LlmError::Malformed(e.to_string())
    }
}
