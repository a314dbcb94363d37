//! OpenAI chat completions (`POST /v1/chat/completions`), also spoken by Ollama, vLLM,
//! llama.cpp, LM Studio, OpenRouter and others.

mod request;
mod response;
mod stream;

#[cfg(test)]
mod tests;

pub use request::build_request;
pub use response::parse_response;
pub use stream::StreamDecoder;

use crate::types::StopReason;

/// Whether a 400 answer asks for `max_completion_tokens` instead of `max_tokens` (newer
/// OpenAI models refuse the old name), so the request can be sent once more with it.
pub fn wants_max_completion_tokens(status: u16, body: &[u8]) -> bool {
    status == 400
        && crate::ErrorBody::parse(body)
            .message
            .contains("max_completion_tokens")
}

/// Maps `finish_reason`. Some compatible servers say `stop` after tool calls, so the calls
/// decide.
fn stop_reason(finish_reason: Option<&str>, has_tool_calls: bool) -> StopReason {
    match finish_reason {
        Some("length") => StopReason::Length,
        _ if has_tool_calls => StopReason::ToolUse,
        Some("tool_calls" | "function_call") => StopReason::ToolUse,
        _ => StopReason::End,
    }
}
