//! Turning the agent's events (docs/AGENT-PROTOCOL.md) into terminal output. Pure: the
//! renderer returns what to write where, so it is tested without a terminal or a daemon.

use astrid_types::text::escape_controls;
use serde::Deserialize;
use serde_json::Value;

/// Longest tool-call argument or tool-error text shown on one line.
const MAX_LINE: usize = 200;

/// One event on `agent.v1.event.<session>`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TurnEvent {
    Delta {
        #[serde(default)]
        text: String,
    },
    ToolCall {
        /// Pairs the call with its result; older agents may not send it.
        #[serde(default)]
        id: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        arguments: Value,
    },
    ToolResult {
        #[serde(default)]
        id: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        ok: bool,
        #[serde(default)]
        output: String,
    },
    Step {
        #[serde(default)]
        n: u64,
    },
}

impl TurnEvent {
    /// `None` for kinds this client does not know yet: newer agents may add some.
    pub fn parse(payload: &[u8]) -> Option<TurnEvent> {
        serde_json::from_slice(payload).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// Keeps track of the answer text on stdout so tool lines never start mid-sentence and the
/// output always ends with a newline.
#[derive(Debug, Default)]
pub struct Renderer {
    streamed: bool,
    mid_line: bool,
    /// Who the turn runs for, named in the fix for a failed tool call.
    principal: String,
}

impl Renderer {
    pub fn new() -> Self {
        Renderer::default()
    }

    pub fn for_principal(principal: &str) -> Self {
        Renderer {
            principal: principal.to_string(),
            ..Renderer::default()
        }
    }

    pub fn event(&mut self, ev: &TurnEvent) -> Vec<(Stream, String)> {
        match ev {
            TurnEvent::Delta { text } => self.text(text),
            TurnEvent::ToolCall {
                name, arguments, ..
            } => {
                let mut out = self.end_line();
                let args = match arguments {
                    Value::Null => String::new(),
                    v => format!(" {}", clip(&v.to_string())),
                };
                out.push((Stream::Err, format!("⚙ {name}{args}\n")));
                out
            }
            TurnEvent::ToolResult { ok, output, .. } => {
                let mut out = self.end_line();
                let line = if *ok {
                    "  ✓ ok\n".to_string()
                } else {
                    let first = output.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                    let text = if first.is_empty() { "failed" } else { first };
                    let mut line = format!("  ✗ {}\n", clip(text.trim()));
                    if let Some(advice) = crate::advice::advise(output, &self.principal) {
                        line.push_str(&format!("    → {advice}\n"));
                    }
                    line
                };
                out.push((Stream::Err, line));
                out
            }
            TurnEvent::Step { .. } => Vec::new(),
        }
    }

    /// Answer text: streamed deltas, or the reply's `answer` when nothing streamed.
    pub fn text(&mut self, text: &str) -> Vec<(Stream, String)> {
        if text.is_empty() {
            return Vec::new();
        }
        self.streamed = true;
        self.mid_line = !text.ends_with('\n');
        vec![(Stream::Out, text.to_string())]
    }

    /// What ends the turn's output: the answer if nothing streamed, and a final newline.
    pub fn finish(&mut self, answer: &str) -> Vec<(Stream, String)> {
        let mut out = if self.streamed {
            Vec::new()
        } else {
            self.text(answer)
        };
        out.extend(self.end_line());
        out
    }

    /// A line on stderr (a notice, an approval) that must not start in the middle of the answer.
    /// Control characters are escaped line by line: a notice often quotes a capsule.
    pub fn notice(&mut self, line: &str) -> Vec<(Stream, String)> {
        let mut out = self.end_line();
        let safe: Vec<String> = line.trim_end().split('\n').map(escape_controls).collect();
        out.push((Stream::Err, format!("{}\n", safe.join("\n"))));
        out
    }

    fn end_line(&mut self) -> Vec<(Stream, String)> {
        if self.mid_line {
            self.mid_line = false;
            vec![(Stream::Out, "\n".to_string())]
        } else {
            Vec::new()
        }
    }
}

/// One line, at most `MAX_LINE` characters.
pub fn clip(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= MAX_LINE {
        return one_line;
    }
    let cut: String = one_line.chars().take(MAX_LINE).collect();
    format!("{cut}…")
}

/// Writes rendered pieces, flushing so deltas appear as they arrive.
pub fn emit(pieces: Vec<(Stream, String)>) {
    use std::io::Write;
    for (stream, text) in pieces {
        // A closed pipe (e.g. `| head`) must not abort the turn; the output is just lost.
        match stream {
            Stream::Out => {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(text.as_bytes());
                let _ = o.flush();
            }
            Stream::Err => {
                let mut e = std::io::stderr().lock();
                let _ = e.write_all(text.as_bytes());
                let _ = e.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(v: Value) -> TurnEvent {
        TurnEvent::parse(v.to_string().as_bytes()).unwrap()
    }

    fn joined(pieces: &[(Stream, String)], s: Stream) -> String {
        pieces
            .iter()
            .filter(|(st, _)| *st == s)
            .map(|(_, t)| t.as_str())
            .collect()
    }

    #[test]
    fn events_parse_and_unknown_kinds_are_ignored() {
        assert_eq!(
            ev(json!({"kind": "delta", "text": "hi"})),
            TurnEvent::Delta { text: "hi".into() }
        );
        assert_eq!(
            ev(json!({"kind": "step", "n": 2})),
            TurnEvent::Step { n: 2 }
        );
        assert!(TurnEvent::parse(br#"{"kind":"thinking","text":"x"}"#).is_none());
        assert!(TurnEvent::parse(b"not json").is_none());
    }

    #[test]
    fn a_turn_with_a_tool_call_renders_on_the_right_streams() {
        let mut r = Renderer::new();
        let mut all = Vec::new();
        for e in [
            json!({"kind": "delta", "text": "Let me "}),
            json!({"kind": "delta", "text": "look."}),
            json!({"kind": "tool_call", "id": "c1", "name": "shell",
                   "arguments": {"command": "ls"}}),
            json!({"kind": "tool_result", "id": "c1", "name": "shell", "ok": true,
                   "output": "a\nb"}),
            json!({"kind": "tool_call", "id": "c2", "name": "fs_read",
                   "arguments": {"path": "x"}}),
            json!({"kind": "tool_result", "id": "c2", "name": "fs_read", "ok": false,
                   "output": "\ndenied: fs.read /etc/shadow\nmore"}),
            json!({"kind": "step", "n": 2}),
            json!({"kind": "delta", "text": "Done."}),
        ] {
            all.extend(r.event(&ev(e)));
        }
        all.extend(r.finish("Done."));
        assert_eq!(joined(&all, Stream::Out), "Let me look.\nDone.\n");
        assert_eq!(
            joined(&all, Stream::Err),
            "⚙ shell {\"command\":\"ls\"}\n  ✓ ok\n⚙ fs_read {\"path\":\"x\"}\n  ✗ denied: fs.read /etc/shadow\n"
        );
        // The newline that ends "look." comes before the tool line, not after it.
        let first_err = all.iter().position(|(s, _)| *s == Stream::Err).unwrap();
        assert_eq!(all[first_err - 1], (Stream::Out, "\n".into()));
    }

    #[test]
    fn the_answer_is_printed_only_when_nothing_streamed() {
        let mut r = Renderer::new();
        assert_eq!(
            r.finish("42"),
            [(Stream::Out, "42".into()), (Stream::Out, "\n".into())]
        );
        let mut r = Renderer::new();
        r.event(&TurnEvent::Delta { text: "4".into() });
        r.event(&TurnEvent::Delta { text: "2\n".into() });
        assert!(
            r.finish("42").is_empty(),
            "already streamed and newline-terminated"
        );
        let mut r = Renderer::new();
        assert!(r.finish("").is_empty());
    }

    #[test]
    fn long_arguments_and_errors_are_clipped_to_one_line() {
        let mut r = Renderer::new();
        let long = "x".repeat(500);
        let out = r.event(&ev(json!({"kind": "tool_call", "name": "fs_write",
                                     "arguments": {"content": long}})));
        let line = &out[0].1;
        assert!(
            line.ends_with("…\n") && line.chars().count() < 220,
            "{line}"
        );
        let out = r.event(&ev(json!({"kind": "tool_result", "name": "x", "ok": false,
                                     "output": ""})));
        assert_eq!(out[0].1, "  ✗ failed\n");
    }

    #[test]
    fn notices_start_on_their_own_line() {
        let mut r = Renderer::new();
        r.text("partial");
        assert_eq!(
            r.notice("cancelling…"),
            [
                (Stream::Out, "\n".into()),
                (Stream::Err, "cancelling…\n".into())
            ]
        );
        assert_eq!(r.notice("again"), [(Stream::Err, "again\n".into())]);
        assert_eq!(
            r.notice("a\x1b[2K\rb\nc\u{202e}"),
            [(Stream::Err, "a\\x1b[2K\\rb\nc\\u{202e}\n".into())]
        );
    }
}
