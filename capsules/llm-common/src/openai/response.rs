//! A whole (non-streamed) chat completion → normalised reply.

use serde_json::Value;

use super::stop_reason;
use crate::error::{quote, ErrorBody, LlmError};
use crate::types::{arguments_from_value, CompleteReply, ToolCall, Usage};

/// Reads a `chat.completion` body; `model` is reported when the body names none.
pub fn parse_response(body: &[u8], model: &str) -> Result<CompleteReply, LlmError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        LlmError::Malformed(format!(
            "the completion is not JSON ({e}): {}",
            quote(&String::from_utf8_lossy(body))
        ))
    })?;
    if let Some(err) = ErrorBody::from_json(&v).filter(|_| v.get("choices").is_none()) {
        return Err(LlmError::from_reported(&err, Some(model)));
    }
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| LlmError::Malformed("the completion has no `choices`".into()))?;
    let message = choice
        .get("message")
        .ok_or_else(|| LlmError::Malformed("the completion's choice has no `message`".into()))?;
    let content = message
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let tool_calls = match message.get("tool_calls") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(calls)) => calls
            .iter()
            .enumerate()
            .map(|(i, c)| tool_call(i, c))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(LlmError::Malformed(format!(
                "`tool_calls` is not a list: {other}"
            )))
        }
    };
    let finish = choice.get("finish_reason").and_then(Value::as_str);
    Ok(CompleteReply {
        stop: stop_reason(finish, !tool_calls.is_empty()),
        content,
        tool_calls,
        usage: usage(v.get("usage")),
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(model)
            .to_owned(),
    })
}

fn tool_call(i: usize, c: &Value) -> Result<ToolCall, LlmError> {
    let function = c.get("function").unwrap_or(&Value::Null);
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| LlmError::Malformed(format!("tool call {i} has no function name")))?;
    let id = c
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map_or_else(|| format!("call_{i}"), str::to_owned);
    Ok(ToolCall {
        id,
        name: name.to_owned(),
        arguments: arguments_from_value(function.get("arguments").cloned().unwrap_or(Value::Null)),
    })
}

/// Reads `usage` (`prompt_tokens`, `completion_tokens`); absent counts are zero.
pub(super) fn usage(u: Option<&Value>) -> Usage {
    let count = |k: &str| {
        u.and_then(|u| u.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Usage {
        input_tokens: count("prompt_tokens"),
        output_tokens: count("completion_tokens"),
    }
}
