//! The normalised conversation and the `llm.v1.*` payloads of docs/AGENT-PROTOCOL.md.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One message of the conversation, tagged by `role` on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Message {
    /// What the human typed.
    User {
        /// The text.
        content: String,
    },
    /// What the model answered: text, tool calls, or both.
    Assistant {
        /// The text; may be empty when the model only called tools.
        #[serde(default)]
        content: String,
        /// The tools the model asked for, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// The outcome of one tool call, answering the call with the same id.
    Tool {
        /// The [`ToolCall::id`] this answers.
        tool_call_id: String,
        /// The tool's name (informational; the id links the call).
        #[serde(default)]
        name: String,
        /// The tool's output, or its error message.
        content: String,
        /// The tool failed (or was denied); `content` says why.
        #[serde(default)]
        is_error: bool,
    },
}

/// A tool the model asked to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call, echoed back in the tool result.
    pub id: String,
    /// The tool name (one topic segment, e.g. `fs_read`).
    pub name: String,
    /// Always a JSON object; see [`arguments_from_str`].
    pub arguments: Value,
}

/// A tool the model may call, as `tool.v1.describe` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The tool name.
    pub name: String,
    /// What the tool does, for the model.
    #[serde(default)]
    pub description: String,
    /// A JSON schema object for the arguments.
    pub input_schema: Value,
}

/// Token counts of one completion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens, including any the provider served from its cache.
    #[serde(default)]
    pub input_tokens: u64,
    /// Generated tokens.
    #[serde(default)]
    pub output_tokens: u64,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its answer.
    End,
    /// It wants the tool calls run.
    ToolUse,
    /// It hit `max_tokens`.
    Length,
    /// The turn was cancelled while the answer streamed in.
    Cancelled,
}

/// The `llm.v1.complete.<provider>` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompleteRequest {
    /// The model to use; `None` (or empty) means the provider's configured model.
    #[serde(default)]
    pub model: Option<String>,
    /// The system prompt.
    #[serde(default)]
    pub system: Option<String>,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// The tools the model may call.
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
    /// Output limit; `None` means the provider's configured default.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Where to publish text deltas while streaming; `None` asks for one whole answer.
    #[serde(default)]
    pub stream_topic: Option<String>,
    /// A topic whose first message cancels the completion.
    #[serde(default)]
    pub cancel_topic: Option<String>,
    /// `"none"` keeps the tools in the request (a conversation with tool calls needs them)
    /// but asks for a text answer; anything else, or absent, lets the model choose.
    #[serde(default)]
    pub tool_choice: Option<String>,
}

/// The `llm.v1.complete.<provider>` reply: the whole assistant message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompleteReply {
    /// The answer text (what was received so far, when cancelled).
    pub content: String,
    /// The tool calls; always empty when `stop` is `cancelled`, since a half-received call
    /// must not run.
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    /// Why the model stopped.
    pub stop: StopReason,
    /// Token counts (zero when the provider did not report them).
    #[serde(default)]
    pub usage: Usage,
    /// The model that served the answer.
    #[serde(default)]
    pub model: String,
}

impl CompleteReply {
    /// The assistant message to append to the conversation.
    pub fn to_message(&self) -> Message {
        Message::Assistant {
            content: self.content.clone(),
            tool_calls: self.tool_calls.clone(),
        }
    }
}

/// One entry of `llm.v1.models.<provider>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The id to put in `model`.
    pub id: String,
}

/// The `llm.v1.models.<provider>` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelsReply {
    /// `openai` or `anthropic`.
    pub provider: String,
    /// The configured base URL the list came from.
    pub base_url: String,
    /// The configured model.
    pub current: String,
    /// What the provider serves, in its order.
    pub models: Vec<ModelInfo>,
}

/// What travels on `agent.v1.event.<session>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentEvent {
    /// A piece of the answer text.
    Delta {
        /// The new text.
        text: String,
    },
    /// The agent is about to run a tool.
    ToolCall {
        /// The call id.
        id: String,
        /// The tool.
        name: String,
        /// Its arguments.
        arguments: Value,
    },
    /// A tool finished.
    ToolResult {
        /// The call id.
        id: String,
        /// The tool.
        name: String,
        /// Whether it succeeded.
        ok: bool,
        /// The start of its output.
        output: String,
    },
    /// A new model step began.
    Step {
        /// The step number, from 1.
        n: u32,
    },
}

/// Turns the model's argument string into the JSON object a tool receives: empty text is
/// `{}`, and anything that is not a JSON object becomes `{"_raw": text}` so the tool can
/// report what the model actually sent.
pub fn arguments_from_str(text: &str) -> Value {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Value::Object(Map::new());
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            let mut raw = Map::new();
            raw.insert("_raw".to_owned(), Value::String(text.to_owned()));
            Value::Object(raw)
        }
    }
}

/// Keeps an arguments value that arrived already parsed (non-streaming Anthropic) to the same
/// rule as [`arguments_from_str`]: objects pass, anything else is wrapped.
pub fn arguments_from_value(value: Value) -> Value {
    match value {
        Value::Object(_) => value,
        Value::Null => Value::Object(Map::new()),
        Value::String(s) => arguments_from_str(&s),
        other => {
            let mut raw = Map::new();
            raw.insert("_raw".to_owned(), Value::String(other.to_string()));
            Value::Object(raw)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_round_trip_in_the_protocol_shape() {
        let wire = json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "",
             "tool_calls": [{"id": "call_1", "name": "fs_read", "arguments": {"path": "a.txt"}}]},
            {"role": "tool", "tool_call_id": "call_1", "name": "fs_read", "content": "x",
             "is_error": false}
        ]);
        let msgs: Vec<Message> = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(
            msgs[1],
            Message::Assistant {
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "fs_read".into(),
                    arguments: json!({"path": "a.txt"}),
                }],
            }
        );
        assert_eq!(serde_json::to_value(&msgs).unwrap(), wire);
    }

    #[test]
    fn optional_fields_default() {
        let m: Message = serde_json::from_value(json!({"role": "assistant"})).unwrap();
        assert_eq!(
            m,
            Message::Assistant {
                content: String::new(),
                tool_calls: vec![]
            }
        );
        let t: Message =
            serde_json::from_value(json!({"role": "tool", "tool_call_id": "a", "content": "c"}))
                .unwrap();
        assert!(matches!(
            t,
            Message::Tool {
                is_error: false,
                ..
            }
        ));
        let r: CompleteRequest = serde_json::from_value(json!({"messages": []})).unwrap();
        assert_eq!(r.model, None);
        assert!(r.tools.is_empty() && r.stream_topic.is_none() && r.cancel_topic.is_none());
    }

    #[test]
    fn unknown_role_is_rejected() {
        assert!(
            serde_json::from_value::<Message>(json!({"role": "system", "content": "x"})).is_err()
        );
    }

    #[test]
    fn reply_and_events_serialise_as_documented() {
        let reply = CompleteReply {
            content: "hi".into(),
            tool_calls: vec![],
            stop: StopReason::ToolUse,
            usage: Usage {
                input_tokens: 12,
                output_tokens: 34,
            },
            model: "m".into(),
        };
        assert_eq!(
            serde_json::to_value(&reply).unwrap(),
            json!({"content": "hi", "tool_calls": [], "stop": "tool_use",
                   "usage": {"input_tokens": 12, "output_tokens": 34}, "model": "m"})
        );
        assert_eq!(
            serde_json::to_value(AgentEvent::Delta { text: "a".into() }).unwrap(),
            json!({"kind": "delta", "text": "a"})
        );
        assert_eq!(
            serde_json::to_value(AgentEvent::Step { n: 2 }).unwrap(),
            json!({"kind": "step", "n": 2})
        );
    }

    #[test]
    fn arguments_are_always_objects() {
        assert_eq!(arguments_from_str(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(arguments_from_str("  "), json!({}));
        assert_eq!(arguments_from_str("[1]"), json!({"_raw": "[1]"}));
        assert_eq!(arguments_from_str(r#"{"a":"#), json!({"_raw": r#"{"a":"#}));
        assert_eq!(arguments_from_value(json!({"b": 2})), json!({"b": 2}));
        assert_eq!(arguments_from_value(Value::Null), json!({}));
        assert_eq!(arguments_from_value(json!(r#"{"c":3}"#)), json!({"c": 3}));
        assert_eq!(arguments_from_value(json!(5)), json!({"_raw": "5"}));
    }
}
