//! A whole (non-streamed) Messages answer → normalised reply.

use serde_json::Value;

use super::{stop_reason, usage};
use crate::error::{quote, ErrorBody, LlmError};
use crate::types::{arguments_from_value, CompleteReply, ToolCall};

/// Reads a `message` body; `model` is reported when the body names none.
pub fn parse_response(body: &[u8], model: &str) -> Result<CompleteReply, LlmError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        LlmError::Malformed(format!(
            "the message is not JSON ({e}): {}",
            quote(&String::from_utf8_lossy(body))
        ))
    })?;
    if v.get("type").and_then(Value::as_str) == Some("error") {
        let err = ErrorBody::from_json(&v).unwrap_or_default();
        return Err(LlmError::from_reported(&err, Some(model)));
    }
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| LlmError::Malformed("the message has no `content` list".into()))?;
    let mut content = String::new();
    let mut tool_calls = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                content.push_str(block.get("text").and_then(Value::as_str).unwrap_or(""))
            }
            Some("tool_use") => {
                let field = |k: &str| {
                    block
                        .get(k)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            LlmError::Malformed(format!("tool_use block {i} has no `{k}`"))
                        })
                };
                tool_calls.push(ToolCall {
                    id: field("id")?,
                    name: field("name")?,
                    arguments: arguments_from_value(
                        block.get("input").cloned().unwrap_or(Value::Null),
                    ),
                });
            }
            // Thinking and server-tool blocks are not part of the normalised message.
            _ => {}
        }
    }
    let reason = v.get("stop_reason").and_then(Value::as_str);
    Ok(CompleteReply {
        stop: stop_reason(reason, !tool_calls.is_empty()),
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
