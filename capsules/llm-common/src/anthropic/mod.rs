//! Anthropic Messages (`POST /v1/messages`, `anthropic-version: 2023-06-01`).

mod request;
mod response;
mod stream;

#[cfg(test)]
mod tests;

pub use request::build_request;
pub use response::parse_response;
pub use stream::StreamDecoder;

use serde_json::Value;

use crate::types::{StopReason, Usage};

/// Maps `stop_reason`; `pause_turn`, `refusal` and the like end the turn.
fn stop_reason(reason: Option<&str>, has_tool_calls: bool) -> StopReason {
    match reason {
        Some("max_tokens") => StopReason::Length,
        Some("tool_use") => StopReason::ToolUse,
        None if has_tool_calls => StopReason::ToolUse,
        _ => StopReason::End,
    }
}

/// Input tokens including those written to or read from the prompt cache, which Anthropic
/// counts separately, so the total is comparable with other providers.
fn input_tokens(u: &Value) -> Option<u64> {
    let count = |k: &str| u.get(k).and_then(Value::as_u64);
    let base = count("input_tokens")?;
    Some(
        base + count("cache_creation_input_tokens").unwrap_or(0)
            + count("cache_read_input_tokens").unwrap_or(0),
    )
}

fn usage(u: Option<&Value>) -> Usage {
    let Some(u) = u else {
        return Usage::default();
    };
    Usage {
        input_tokens: input_tokens(u).unwrap_or(0),
        output_tokens: u.get("output_tokens").and_then(Value::as_u64).unwrap_or(0),
    }
}
