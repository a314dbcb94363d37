//! Normalised request → chat completions body.

use serde_json::{json, Map, Value};

use crate::api::Params;
use crate::types::{CompleteRequest, Message, ToolCall};

/// Builds the `POST /v1/chat/completions` body.
pub fn build_request(req: &CompleteRequest, params: &Params<'_>) -> Value {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.extend(req.messages.iter().map(message));

    let mut body = Map::new();
    body.insert("model".into(), json!(params.model));
    body.insert("messages".into(), Value::Array(messages));
    let limit_field = if params.max_completion_tokens {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    body.insert(limit_field.into(), json!(params.max_tokens));
    if !req.tools.is_empty() {
        let tools = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.input_schema}})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        if req.tool_choice.as_deref() == Some("none") {
            body.insert("tool_choice".into(), json!("none"));
        }
    }
    if params.stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Value::Object(body)
}

fn message(m: &Message) -> Value {
    match m {
        Message::User { content } => json!({"role": "user", "content": content}),
        Message::Assistant {
            content,
            tool_calls,
        } => {
            // OpenAI wants `null` content, not "", on a message that only calls tools.
            let content = if content.is_empty() && !tool_calls.is_empty() {
                Value::Null
            } else {
                json!(content)
            };
            let mut out = json!({"role": "assistant", "content": content});
            if !tool_calls.is_empty() {
                out["tool_calls"] = tool_calls.iter().map(tool_call).collect();
            }
            out
        }
        Message::Tool {
            tool_call_id,
            content,
            is_error,
            ..
        } => {
            // The API has no error flag for tool messages, so the text has to say it.
            let content = if *is_error {
                format!("error: {content}")
            } else {
                content.clone()
            };
            json!({"role": "tool", "tool_call_id": tool_call_id, "content": content})
        }
    }
}

fn tool_call(c: &ToolCall) -> Value {
    json!({"id": c.id, "type": "function",
           "function": {"name": c.name, "arguments": arguments_text(&c.arguments)}})
}

/// The argument string to send back: the model's own text when it was not a JSON object
/// (kept under `_raw`), so the history shows what it really said.
fn arguments_text(arguments: &Value) -> String {
    if let Some(obj) = arguments.as_object() {
        if obj.len() == 1 {
            if let Some(Value::String(raw)) = obj.get("_raw") {
                return raw.clone();
            }
        }
    }
    arguments.to_string()
}
