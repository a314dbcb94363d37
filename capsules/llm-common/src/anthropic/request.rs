//! Normalised request → Messages body.

use serde_json::{json, Map, Value};

use crate::api::Params;
use crate::types::{arguments_from_value, CompleteRequest, Message};

/// Builds the `POST /v1/messages` body. Consecutive messages of one role are merged, since
/// tool results travel as `user` content and the API wants all results of one assistant
/// turn in the user message that follows it (results first, then any text).
pub fn build_request(req: &CompleteRequest, params: &Params<'_>) -> Value {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in &req.messages {
        let (role, blocks) = blocks(m);
        if blocks.is_empty() {
            // Empty text is refused by the API; a message with nothing else says nothing.
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, mut content)| {
            if role == "user" {
                // Stable: results keep their order, and so does the text after them.
                content.sort_by_key(|b| b["type"] != "tool_result");
            }
            json!({"role": role, "content": content})
        })
        .collect();

    let mut body = Map::new();
    body.insert("model".into(), json!(params.model));
    body.insert("max_tokens".into(), json!(params.max_tokens));
    if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
        body.insert("system".into(), json!(system));
    }
    body.insert("messages".into(), Value::Array(messages));
    if !req.tools.is_empty() {
        let tools = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        if req.tool_choice.as_deref() == Some("none") {
            body.insert("tool_choice".into(), json!({"type": "none"}));
        }
    }
    if params.stream {
        body.insert("stream".into(), json!(true));
    }
    Value::Object(body)
}

fn blocks(m: &Message) -> (&'static str, Vec<Value>) {
    let text = |t: &str| (!t.is_empty()).then(|| json!({"type": "text", "text": t}));
    match m {
        Message::User { content } => ("user", text(content).into_iter().collect()),
        Message::Assistant {
            content,
            tool_calls,
        } => {
            let mut out: Vec<Value> = text(content).into_iter().collect();
            out.extend(tool_calls.iter().map(|c| {
                json!({"type": "tool_use", "id": c.id, "name": c.name,
                       "input": arguments_from_value(c.arguments.clone())})
            }));
            ("assistant", out)
        }
        Message::Tool {
            tool_call_id,
            content,
            is_error,
            ..
        } => (
            "user",
            vec![json!({"type": "tool_result", "tool_use_id": tool_call_id,
                        "content": content, "is_error": is_error})],
        ),
    }
}
