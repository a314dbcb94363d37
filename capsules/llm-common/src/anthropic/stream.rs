//! Messages stream events → normalised reply, with tool input JSON assembled per block.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{input_tokens, stop_reason};
use crate::error::{quote, ErrorBody, LlmError};
use crate::sse::SseEvent;
use crate::types::{
    arguments_from_str, arguments_from_value, CompleteReply, StopReason, ToolCall, Usage,
};

/// A `tool_use` block as its input arrives.
#[derive(Debug)]
struct ToolBlock {
    id: String,
    name: String,
    /// `input` from `content_block_start`, used when no `partial_json` follows.
    initial: Value,
    json: String,
    /// Set at `content_block_stop`.
    arguments: Option<Value>,
}

impl ToolBlock {
    fn close(&mut self) {
        if self.arguments.is_none() {
            self.arguments = Some(if self.json.trim().is_empty() {
                arguments_from_value(self.initial.clone())
            } else {
                arguments_from_str(&self.json)
            });
        }
    }
}

/// The state of one streamed message.
#[derive(Debug)]
pub struct StreamDecoder {
    model: String,
    content: String,
    /// By content block index, which is the order of the final message.
    tools: BTreeMap<u64, ToolBlock>,
    stop_reason: Option<String>,
    usage: Usage,
    done: bool,
}

impl StreamDecoder {
    /// `model` is reported when `message_start` names none.
    pub fn new(model: &str) -> Self {
        Self {
            model: model.to_owned(),
            content: String::new(),
            tools: BTreeMap::new(),
            stop_reason: None,
            usage: Usage::default(),
            done: false,
        }
    }

    /// Takes one event; returns its text deltas.
    pub fn on_event(&mut self, event: &SseEvent) -> Result<Vec<String>, LlmError> {
        let data = event.data.trim();
        if data.is_empty() || self.done {
            return Ok(Vec::new());
        }
        let v: Value = serde_json::from_str(data).map_err(|e| {
            LlmError::Malformed(format!(
                "the `{}` event is not JSON ({e}): {}",
                event.event,
                quote(data)
            ))
        })?;
        // The data repeats the event name as `type`; it is the more reliable of the two.
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(&event.event);
        let index = || {
            v.get("index").and_then(Value::as_u64).ok_or_else(|| {
                LlmError::Malformed(format!("a `{kind}` event has no block `index`"))
            })
        };
        let mut deltas = Vec::new();
        match kind {
            "message_start" => {
                let message = v.get("message").unwrap_or(&Value::Null);
                if let Some(m) = message.get("model").and_then(Value::as_str) {
                    m.clone_into(&mut self.model);
                }
                self.take_usage(message.get("usage"));
            }
            "content_block_start" => {
                let block = v.get("content_block").unwrap_or(&Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                        self.push_text(text, &mut deltas);
                    }
                    Some("tool_use") => {
                        let field = |k: &str| {
                            block
                                .get(k)
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_owned()
                        };
                        let (id, name) = (field("id"), field("name"));
                        if id.is_empty() || name.is_empty() {
                            return Err(LlmError::Malformed(
                                "a tool_use block starts without an id or name".into(),
                            ));
                        }
                        let initial = block.get("input").cloned().unwrap_or(Value::Null);
                        self.tools.insert(
                            index()?,
                            ToolBlock {
                                id,
                                name,
                                initial,
                                json: String::new(),
                                arguments: None,
                            },
                        );
                    }
                    // Thinking, redacted thinking, server tools: not part of the message.
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = v.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let text = delta.get("text").and_then(Value::as_str).unwrap_or("");
                        self.push_text(text, &mut deltas);
                    }
                    Some("input_json_delta") => {
                        let i = index()?;
                        let piece = delta
                            .get("partial_json")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        let block = self.tools.get_mut(&i).ok_or_else(|| {
                            LlmError::Malformed(format!(
                                "input for block {i}, which is not a tool_use block"
                            ))
                        })?;
                        block.json.push_str(piece);
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(block) = self.tools.get_mut(&index()?) {
                    block.close();
                }
            }
            "message_delta" => {
                if let Some(r) = v
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str)
                {
                    self.stop_reason = Some(r.to_owned());
                }
                self.take_usage(v.get("usage"));
            }
            "message_stop" => self.done = true,
            "error" => {
                let err = ErrorBody::from_json(&v).unwrap_or_default();
                return Err(LlmError::from_reported(&err, Some(&self.model)));
            }
            // `ping`, and event types added after this was written.
            _ => {}
        }
        Ok(deltas)
    }

    fn push_text(&mut self, text: &str, deltas: &mut Vec<String>) {
        if !text.is_empty() {
            self.content.push_str(text);
            deltas.push(text.to_owned());
        }
    }

    /// `message_start` carries the input count; `message_delta` the cumulative output count
    /// (and, on newer API versions, the input count again).
    fn take_usage(&mut self, u: Option<&Value>) {
        let Some(u) = u else { return };
        if let Some(input) = input_tokens(u).filter(|n| *n > 0) {
            self.usage.input_tokens = input;
        }
        if let Some(output) = u.get("output_tokens").and_then(Value::as_u64) {
            self.usage.output_tokens = output;
        }
    }

    /// The provider sent `message_stop`.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The assembled reply; see [`crate::Decoder::finish`].
    pub fn finish(self, cancelled: bool) -> Result<CompleteReply, LlmError> {
        if cancelled {
            return Ok(CompleteReply {
                content: self.content,
                tool_calls: Vec::new(),
                stop: StopReason::Cancelled,
                usage: self.usage,
                model: self.model,
            });
        }
        if !self.done {
            return Err(LlmError::Malformed(
                "the stream ended before the answer was complete (no message_stop)".into(),
            ));
        }
        let tool_calls: Vec<ToolCall> = self
            .tools
            .into_values()
            .map(|mut b| {
                b.close();
                ToolCall {
                    id: b.id,
                    name: b.name,
                    arguments: b.arguments.unwrap_or_default(),
                }
            })
            .collect();
        Ok(CompleteReply {
            stop: stop_reason(self.stop_reason.as_deref(), !tool_calls.is_empty()),
            content: self.content,
            tool_calls,
            usage: self.usage,
            model: self.model,
        })
    }
}
