//! What the chat pane shows: the conversation as entries (the user's messages, the agent's
//! answers, tool calls with their results, notices), built from the live events of a turn or
//! from a resumed session's stored history.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    User(String),
    /// Markdown, still growing while `streaming`.
    Assistant {
        text: String,
        streaming: bool,
    },
    Tool(ToolEntry),
    /// Something the client says (dim): a session switch, an approval answered.
    Notice(String),
    /// Something that went wrong, with what to do about it.
    Error(String),
    /// A capsule's `astrid:uplink` notice, drawn under the capsule's name (stamped by the
    /// kernel) so it can never pass for the client's own words.
    CapsuleNotice(astrid_types::uplink::Notice),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolEntry {
    pub id: String,
    pub name: String,
    pub arguments: Value,
    /// `None` while the tool runs.
    pub result: Option<ToolOutcome>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    pub ok: bool,
    pub output: String,
}

#[derive(Debug, Default)]
pub struct Transcript {
    pub entries: Vec<Entry>,
}

impl Transcript {
    pub fn push(&mut self, e: Entry) {
        self.close_stream();
        self.entries.push(e);
    }

    /// A streamed piece of the answer: it extends the answer being written, or starts one.
    pub fn delta(&mut self, piece: &str) {
        if let Some(Entry::Assistant {
            text,
            streaming: true,
        }) = self.entries.last_mut()
        {
            text.push_str(piece);
            return;
        }
        self.entries.push(Entry::Assistant {
            text: piece.to_string(),
            streaming: true,
        });
    }

    /// Ends the answer being streamed, if any (a tool call or the turn's end follows it).
    pub fn close_stream(&mut self) {
        if let Some(Entry::Assistant { streaming, .. }) = self.entries.last_mut() {
            *streaming = false;
        }
    }

    pub fn tool_result(&mut self, id: &str, name: &str, ok: bool, output: String) {
        self.close_stream();
        // By id when the agent sent one; else the oldest unanswered call of that name.
        let slot = self.entries.iter_mut().rev().find_map(|e| match e {
            Entry::Tool(t) if t.result.is_none() && !id.is_empty() && t.id == id => Some(t),
            _ => None,
        });
        let slot = match slot {
            Some(t) => Some(t),
            None => self.entries.iter_mut().find_map(|e| match e {
                Entry::Tool(t) if t.result.is_none() && t.name == name => Some(t),
                _ => None,
            }),
        };
        match slot {
            Some(t) => t.result = Some(ToolOutcome { ok, output }),
            None => self.entries.push(Entry::Tool(ToolEntry {
                id: id.to_string(),
                name: name.to_string(),
                arguments: Value::Null,
                result: Some(ToolOutcome { ok, output }),
            })),
        }
    }

    /// The turn's reply is the authority on its answer: the streamed text since the turn's
    /// last tool call is replaced by it (a delta may have been lost), or it is added when
    /// nothing streamed. `since` is where the turn's entries start.
    pub fn final_answer(&mut self, since: usize, answer: &str) {
        self.close_stream();
        let since = since.min(self.entries.len());
        let tail = &mut self.entries[since..];
        let after_tools = tail
            .iter()
            .rposition(|e| matches!(e, Entry::Tool(_) | Entry::User(_)))
            .map_or(0, |i| i + 1);
        let existing = tail[after_tools..].iter_mut().rev().find_map(|e| match e {
            Entry::Assistant { text, .. } => Some(text),
            _ => None,
        });
        match existing {
            Some(text) if !answer.is_empty() => *text = answer.to_string(),
            Some(_) => {}
            None if !answer.trim().is_empty() => self.entries.push(Entry::Assistant {
                text: answer.to_string(),
                streaming: false,
            }),
            None => {}
        }
    }

    /// A stored session (`session.v1.history` messages) as entries.
    pub fn from_history(messages: &[Value]) -> Transcript {
        let mut t = Transcript::default();
        for m in messages {
            let Ok(msg) = Message::deserialize(m) else {
                continue;
            };
            match msg.role.as_str() {
                "user" => t.push(Entry::User(msg.content)),
                "assistant" => {
                    if !msg.content.trim().is_empty() {
                        t.push(Entry::Assistant {
                            text: msg.content,
                            streaming: false,
                        });
                    }
                    for call in msg.tool_calls {
                        t.push(Entry::Tool(ToolEntry {
                            id: call.id,
                            name: call.name,
                            arguments: call.arguments,
                            result: None,
                        }));
                    }
                }
                "tool" => t.tool_result(&msg.tool_call_id, &msg.name, !msg.is_error, msg.content),
                _ => {}
            }
        }
        t
    }
}

/// A normalised message (docs/AGENT-PROTOCOL.md, "Messages"); unknown fields are ignored.
#[derive(Deserialize)]
struct Message {
    role: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    tool_calls: Vec<Call>,
    #[serde(default)]
    tool_call_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    is_error: bool,
}

#[derive(Deserialize)]
struct Call {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    arguments: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deltas_stream_into_one_answer_until_a_tool_call() {
        let mut t = Transcript::default();
        t.push(Entry::User("hi".into()));
        t.delta("Let me ");
        t.delta("look.");
        t.push(Entry::Tool(ToolEntry {
            id: "c1".into(),
            name: "fs_read".into(),
            arguments: json!({"path": "a"}),
            result: None,
        }));
        t.tool_result("c1", "fs_read", true, "text".into());
        t.delta("Done");
        assert_eq!(t.entries.len(), 4);
        assert_eq!(
            t.entries[1],
            Entry::Assistant {
                text: "Let me look.".into(),
                streaming: false
            }
        );
        let Entry::Tool(tool) = &t.entries[2] else {
            panic!()
        };
        assert_eq!(
            tool.result,
            Some(ToolOutcome {
                ok: true,
                output: "text".into()
            })
        );
        t.final_answer(0, "Done: the code is 7.");
        assert_eq!(
            t.entries[3],
            Entry::Assistant {
                text: "Done: the code is 7.".into(),
                streaming: false
            }
        );
    }

    #[test]
    fn the_reply_adds_an_answer_nothing_streamed_and_keeps_text_before_tools() {
        let mut t = Transcript::default();
        t.push(Entry::User("q".into()));
        t.delta("thinking");
        t.push(Entry::Tool(ToolEntry {
            id: String::new(),
            name: "shell".into(),
            arguments: Value::Null,
            result: None,
        }));
        t.tool_result("", "shell", false, "denied".into());
        t.final_answer(0, "It was denied.");
        assert!(matches!(&t.entries[1], Entry::Assistant { text, .. } if text == "thinking"));
        assert!(matches!(&t.entries[3], Entry::Assistant { text, .. } if text == "It was denied."));
        t.final_answer(4, "  ");
        assert_eq!(t.entries.len(), 4, "a blank answer adds nothing");
    }

    #[test]
    fn a_stored_session_becomes_the_same_entries() {
        let history = vec![
            json!({"role": "user", "content": "read a.txt"}),
            json!({"role": "assistant", "content": "",
                   "tool_calls": [{"id": "c1", "name": "fs_read", "arguments": {"path": "a.txt"}}]}),
            json!({"role": "tool", "tool_call_id": "c1", "name": "fs_read", "content": "AURORA",
                   "is_error": false}),
            json!({"role": "assistant", "content": "It says AURORA."}),
            json!({"role": "system-ish-unknown", "content": "ignored"}),
            json!("not a message"),
        ];
        let t = Transcript::from_history(&history);
        assert_eq!(t.entries.len(), 3);
        assert_eq!(t.entries[0], Entry::User("read a.txt".into()));
        let Entry::Tool(tool) = &t.entries[1] else {
            panic!("{:?}", t.entries[1])
        };
        assert_eq!(
            (tool.name.as_str(), &tool.arguments),
            ("fs_read", &json!({"path": "a.txt"}))
        );
        assert_eq!(tool.result.as_ref().map(|r| r.ok), Some(true));
        assert!(
            matches!(&t.entries[2], Entry::Assistant { text, streaming: false } if text == "It says AURORA.")
        );
    }
}
