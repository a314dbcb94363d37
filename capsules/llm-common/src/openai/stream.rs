//! Streamed chat completion chunks → normalised reply, with tool-call deltas reassembled.

use std::collections::BTreeMap;

use serde_json::Value;

use super::response::usage;
use super::stop_reason;
use crate::error::{quote, ErrorBody, LlmError};
use crate::sse::SseEvent;
use crate::types::{arguments_from_str, CompleteReply, StopReason, ToolCall, Usage};

/// One tool call as its pieces arrive: id and name in the first, argument text in all.
#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// The state of one streamed completion.
#[derive(Debug)]
pub struct StreamDecoder {
    model: String,
    content: String,
    /// By the `index` the chunks give, which orders the calls.
    calls: BTreeMap<u64, PartialCall>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    done: bool,
}

impl StreamDecoder {
    /// `model` is reported when no chunk names one.
    pub fn new(model: &str) -> Self {
        Self {
            model: model.to_owned(),
            content: String::new(),
            calls: BTreeMap::new(),
            finish_reason: None,
            usage: None,
            done: false,
        }
    }

    /// Takes one event; returns its text deltas.
    pub fn on_event(&mut self, event: &SseEvent) -> Result<Vec<String>, LlmError> {
        let data = event.data.trim();
        if data.is_empty() || self.done {
            return Ok(Vec::new());
        }
        if data == "[DONE]" {
            self.done = true;
            return Ok(Vec::new());
        }
        let chunk: Value = serde_json::from_str(data).map_err(|e| {
            LlmError::Malformed(format!("a stream event is not JSON ({e}): {}", quote(data)))
        })?;
        if let Some(err) = ErrorBody::from_json(&chunk).filter(|_| chunk.get("choices").is_none()) {
            return Err(LlmError::from_reported(&err, Some(&self.model)));
        }
        if let Some(m) = chunk
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
        {
            m.clone_into(&mut self.model);
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage(Some(u)));
        }
        let mut deltas = Vec::new();
        let choices = chunk.get("choices").and_then(Value::as_array);
        for choice in choices.into_iter().flatten() {
            if let Some(delta) = choice.get("delta") {
                if let Some(text) = delta.get("content").and_then(Value::as_str) {
                    if !text.is_empty() {
                        self.content.push_str(text);
                        deltas.push(text.to_owned());
                    }
                }
                if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                    for (pos, piece) in calls.iter().enumerate() {
                        self.add_call_piece(pos, piece);
                    }
                }
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(reason.to_owned());
            }
        }
        Ok(deltas)
    }

    fn add_call_piece(&mut self, pos: usize, piece: &Value) {
        // `index` is in the spec; a server that leaves it out sends whole calls, in order.
        let index = piece
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(pos as u64);
        let call = self.calls.entry(index).or_default();
        fn text(v: Option<&Value>) -> Option<&str> {
            v.and_then(Value::as_str).filter(|s| !s.is_empty())
        }
        if let Some(id) = text(piece.get("id")) {
            if call.id.is_empty() {
                id.clone_into(&mut call.id);
            }
        }
        let function = piece.get("function");
        // Some servers repeat the name in every piece; it is whole in the first.
        if let Some(name) = text(function.and_then(|f| f.get("name"))) {
            if call.name.is_empty() {
                name.clone_into(&mut call.name);
            }
        }
        match function.and_then(|f| f.get("arguments")) {
            Some(Value::String(s)) => call.arguments.push_str(s),
            Some(v @ Value::Object(_)) => call.arguments.push_str(&v.to_string()),
            _ => {}
        }
    }

    /// The provider sent `[DONE]`.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The assembled reply; see [`crate::Decoder::finish`].
    pub fn finish(self, cancelled: bool) -> Result<CompleteReply, LlmError> {
        let usage = self.usage.unwrap_or_default();
        if cancelled {
            return Ok(CompleteReply {
                content: self.content,
                tool_calls: Vec::new(),
                stop: StopReason::Cancelled,
                usage,
                model: self.model,
            });
        }
        if !self.done && self.finish_reason.is_none() {
            return Err(LlmError::Malformed(
                "the stream ended before the answer was complete (no finish_reason or [DONE])"
                    .into(),
            ));
        }
        let tool_calls = self
            .calls
            .into_iter()
            .map(|(index, c)| {
                if c.name.is_empty() {
                    return Err(LlmError::Malformed(format!(
                        "streamed tool call {index} has no function name"
                    )));
                }
                Ok(ToolCall {
                    id: if c.id.is_empty() {
                        format!("call_{index}")
                    } else {
                        c.id
                    },
                    name: c.name,
                    arguments: arguments_from_str(&c.arguments),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CompleteReply {
            stop: stop_reason(self.finish_reason.as_deref(), !tool_calls.is_empty()),
            content: self.content,
            tool_calls,
            usage,
            model: self.model,
        })
    }
}
