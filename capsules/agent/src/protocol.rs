//! The agent's side of `docs/AGENT-PROTOCOL.md`: what it reads and writes on the bus.
//!
//! Messages, tool arguments and tool schemas stay as raw JSON (`RawValue`) wherever the agent
//! only passes them along, so a turn encodes each message once and never rebuilds history.

use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `agent.v1.turn`.
#[derive(Debug, Deserialize)]
pub struct TurnRequest {
    #[serde(default)]
    pub session: Option<String>,
    pub input: String,
    #[serde(default)]
    pub workspace: Option<String>,
    #[serde(default)]
    pub max_steps: Option<u32>,
}

/// `session.v1.open`.
#[derive(Debug, Serialize)]
pub struct OpenSession<'a> {
    pub session: Option<&'a str>,
    pub workspace: Option<&'a str>,
    pub create: bool,
}

/// The fields of the `session.v1.open` reply the agent uses.
#[derive(Debug, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub workspace: Option<String>,
}

/// `session.v1.history` (request) and the id of `session.v1.append`.
#[derive(Debug, Serialize)]
pub struct SessionId<'a> {
    pub id: &'a str,
}

/// The `session.v1.history` reply; messages borrow from the reply bytes.
#[derive(Debug, Deserialize)]
pub struct History<'a> {
    #[serde(borrow)]
    pub messages: Vec<&'a RawValue>,
}

/// `session.v1.append`.
#[derive(Debug, Serialize)]
pub struct Append<'a> {
    pub id: &'a str,
    pub messages: &'a [Box<RawValue>],
}

/// The `registry.v1.current` reply.
#[derive(Debug, Deserialize)]
pub struct Current {
    pub provider: String,
    #[serde(default)]
    pub model: Option<String>,
}

/// `llm.v1.complete.<provider>`.
#[derive(Debug)]
pub struct Complete<'a> {
    pub model: Option<&'a str>,
    pub system: &'a str,
    pub history: &'a [&'a RawValue],
    pub new: &'a [Box<RawValue>],
    pub tools: &'a [Box<RawValue>],
    pub max_tokens: u32,
    pub stream_topic: &'a str,
    pub cancel_topic: &'a str,
    /// False once the model has only repeated calls it already made this turn.
    pub offer_tools: bool,
}

/// The history and this turn's messages as one array, without copying either into a new
/// list first.
struct Messages<'a>(&'a [&'a RawValue], &'a [Box<RawValue>]);

impl Serialize for Messages<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().copied().chain(self.1.iter().map(|m| &**m)))
    }
}

impl Serialize for Complete<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Complete", 9)?;
        st.serialize_field("model", &self.model)?;
        st.serialize_field("system", self.system)?;
        st.serialize_field("messages", &Messages(self.history, self.new))?;
        st.serialize_field("tools", self.tools)?;
        st.serialize_field("max_tokens", &self.max_tokens)?;
        st.serialize_field("stream_topic", self.stream_topic)?;
        st.serialize_field("cancel_topic", self.cancel_topic)?;
        let choice = if self.offer_tools { "auto" } else { "none" };
        st.serialize_field("tool_choice", choice)?;
        st.end()
    }
}

/// The `llm.v1.complete.<provider>` reply.
#[derive(Debug, Deserialize)]
pub struct Completion {
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default)]
    pub stop: String,
    #[serde(default)]
    pub usage: Usage,
}

/// One tool call the model asked for. `arguments` is always a JSON object once the turn has
/// accepted the call (see [`crate::tools::normalise_arguments`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub arguments: Option<Box<RawValue>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
    }
}

/// The normalised conversation messages the agent writes.
#[derive(Debug, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message<'a> {
    User {
        content: &'a str,
    },
    Assistant {
        content: &'a str,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        tool_calls: &'a [ToolCall],
    },
    Tool {
        tool_call_id: &'a str,
        name: &'a str,
        content: &'a str,
        is_error: bool,
    },
}

/// `tool.v1.execute.<name>`.
#[derive(Debug, Serialize)]
pub struct Execute<'a> {
    pub args: &'a RawValue,
    pub context: ToolContext<'a>,
}

#[derive(Debug, Serialize)]
pub struct ToolContext<'a> {
    pub session: &'a str,
    pub workspace: Option<&'a str>,
}

/// What the agent publishes on `agent.v1.event.<session>` (the provider adds `delta`).
/// `End` is the last event of every turn that got a session, so a watcher that did not start
/// the turn (another tab, the TUI) learns that it is over.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event<'a> {
    Step {
        n: u32,
    },
    ToolCall {
        id: &'a str,
        name: &'a str,
        arguments: &'a RawValue,
    },
    ToolResult {
        id: &'a str,
        name: &'a str,
        ok: bool,
        output: &'a str,
    },
    End {
        ok: bool,
    },
}

/// Why a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    End,
    MaxSteps,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolOutcome {
    pub name: String,
    pub ok: bool,
}

/// The `agent.v1.turn` reply.
#[derive(Debug, Serialize)]
pub struct TurnReply<'a> {
    pub session: SessionRef<'a>,
    pub answer: &'a str,
    pub steps: u32,
    pub stop: Stop,
    pub usage: Usage,
    pub tool_calls: &'a [ToolOutcome],
}

#[derive(Debug, Serialize)]
pub struct SessionRef<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn the_model_request_chains_history_and_new_messages() {
        let h1 = raw(r#"{"role":"user","content":"old"}"#);
        let history = [&*h1];
        let new = [raw(r#"{"role":"user","content":"new"}"#)];
        let tools = [raw(
            r#"{"name":"fs_read","description":"d","input_schema":{}}"#,
        )];
        let req = Complete {
            model: None,
            system: "sys",
            history: &history,
            new: &new,
            tools: &tools,
            max_tokens: 100,
            stream_topic: "agent.v1.event.x",
            cancel_topic: "agent.v1.cancel.x",
            offer_tools: true,
        };
        let v: serde_json::Value = serde_json::to_value(&req).unwrap();
        assert_eq!(v["model"], serde_json::Value::Null);
        assert_eq!(v["messages"][0]["content"], "old");
        assert_eq!(v["messages"][1]["content"], "new");
        assert_eq!(v["tools"][0]["name"], "fs_read");
        assert_eq!(v["cancel_topic"], "agent.v1.cancel.x");
    }

    #[test]
    fn messages_and_events_have_the_documented_shape() {
        let call = ToolCall {
            id: "call_1".into(),
            name: "fs_read".into(),
            arguments: Some(raw(r#"{"path":"a.txt"}"#)),
        };
        let m = serde_json::to_string(&Message::Assistant {
            content: "",
            tool_calls: std::slice::from_ref(&call),
        })
        .unwrap();
        assert_eq!(
            m,
            r#"{"role":"assistant","content":"","tool_calls":[{"id":"call_1","name":"fs_read","arguments":{"path":"a.txt"}}]}"#
        );
        let m = serde_json::to_string(&Message::Assistant {
            content: "hi",
            tool_calls: &[],
        })
        .unwrap();
        assert_eq!(m, r#"{"role":"assistant","content":"hi"}"#);
        let m = serde_json::to_string(&Message::Tool {
            tool_call_id: "call_1",
            name: "fs_read",
            content: "x",
            is_error: false,
        })
        .unwrap();
        assert_eq!(
            m,
            r#"{"role":"tool","tool_call_id":"call_1","name":"fs_read","content":"x","is_error":false}"#
        );
        let e = serde_json::to_string(&Event::Step { n: 2 }).unwrap();
        assert_eq!(e, r#"{"kind":"step","n":2}"#);
        let e = serde_json::to_string(&Event::ToolResult {
            id: "c",
            name: "shell",
            ok: true,
            output: "o",
        })
        .unwrap();
        assert_eq!(
            e,
            r#"{"kind":"tool_result","id":"c","name":"shell","ok":true,"output":"o"}"#
        );
        let e = serde_json::to_string(&Event::End { ok: false }).unwrap();
        assert_eq!(e, r#"{"kind":"end","ok":false}"#);
        assert_eq!(
            serde_json::to_string(&Stop::MaxSteps).unwrap(),
            r#""max_steps""#
        );
    }

    #[test]
    fn a_completion_with_missing_fields_still_parses() {
        let c: Completion = serde_json::from_str(r#"{"content":"hi"}"#).unwrap();
        assert_eq!(c.content, "hi");
        assert!(c.tool_calls.is_empty());
        assert_eq!(c.usage, Usage::default());
        let c: Completion = serde_json::from_str(
            r#"{"content":"","tool_calls":[{"id":"1","name":"shell","arguments":{"command":"ls"}}],
                "stop":"tool_use","usage":{"input_tokens":3,"output_tokens":4},"model":"m"}"#,
        )
        .unwrap();
        assert_eq!(
            c.tool_calls[0].arguments.as_ref().unwrap().get(),
            r#"{"command":"ls"}"#
        );
        assert_eq!(c.usage.output_tokens, 4);
    }
}
