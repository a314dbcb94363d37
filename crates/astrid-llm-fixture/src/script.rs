//! What the fixture answers, one step per accepted completion request.

use std::collections::VecDeque;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Playback;

/// The text answered once a non-looping script has run out, so a benchmark can keep asking.
pub const EXHAUSTED_TEXT: &str = "(script exhausted)";

/// One scripted answer. A step is consumed only by a completion request that passed the
/// fixture's own checks (key, version header, body, model), so a rejected request never
/// shifts the script.
///
/// In a script file (JSON) a step is written `{"reply": {"text": "hi", "tool_calls": [...]}}`,
/// `{"error": {"status": 429, "headers": [["retry-after", "2"]]}}`, `{"malformed": "{oops"}`
/// or `"stall"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// A successful answer: `text` (may be empty) followed by `tool_calls` in order.
    Reply {
        #[serde(default)]
        text: String,
        #[serde(default)]
        tool_calls: Vec<ScriptedCall>,
    },
    /// An HTTP error. A `null` body is replaced by the real error body of the API that was
    /// asked, chosen by `status` (401, 404, 429, 500, 529…), so one script serves both APIs.
    Error {
        status: u16,
        #[serde(default)]
        body: Value,
        #[serde(default)]
        headers: Vec<(String, String)>,
    },
    /// This raw body, sent with status 200 (as an event stream when streaming was asked).
    Malformed(String),
    /// Accept the request and never answer (until the fixture shuts down).
    Stall,
}

/// A tool call the scripted model makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptedCall {
    pub name: String,
    /// Usually a JSON object; anything else is sent as given, to exercise client handling.
    pub arguments: Value,
}

impl Step {
    /// A plain text answer.
    pub fn text(text: impl Into<String>) -> Step {
        Step::Reply {
            text: text.into(),
            tool_calls: Vec::new(),
        }
    }

    /// An answer that is a single tool call and no text.
    pub fn tool_call(name: impl Into<String>, arguments: Value) -> Step {
        Step::Reply {
            text: String::new(),
            tool_calls: vec![ScriptedCall::new(name, arguments)],
        }
    }

    /// An error with the API's own body for `status`.
    pub fn error(status: u16) -> Step {
        Step::Error {
            status,
            body: Value::Null,
            headers: Vec::new(),
        }
    }

    /// A 429 with the API's rate-limit body and `retry-after: secs`.
    pub fn rate_limited(secs: u64) -> Step {
        Step::Error {
            status: 429,
            body: Value::Null,
            headers: vec![("retry-after".to_string(), secs.to_string())],
        }
    }
}

impl ScriptedCall {
    pub fn new(name: impl Into<String>, arguments: Value) -> ScriptedCall {
        ScriptedCall {
            name: name.into(),
            arguments,
        }
    }
}

/// Why a script file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("cannot read script {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("script is not a JSON array of steps: {0}")]
    Parse(#[from] serde_json::Error),
}

/// Parses a script: a JSON array of steps.
pub fn parse_script(text: &str) -> Result<Vec<Step>, ScriptError> {
    Ok(serde_json::from_str(text)?)
}

/// Reads and parses a script file.
pub fn load_script(path: &Path) -> Result<Vec<Step>, ScriptError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_script(&text)
}

/// The steps still to play. Looping scripts keep every step and walk a cursor round them.
#[derive(Debug)]
pub(crate) struct Script {
    steps: VecDeque<Step>,
    playback: Playback,
    cursor: usize,
}

impl Script {
    pub(crate) fn new(steps: Vec<Step>, playback: Playback) -> Script {
        Script {
            steps: steps.into(),
            playback,
            cursor: 0,
        }
    }

    pub(crate) fn push(&mut self, step: Step) {
        self.steps.push_back(step);
    }

    /// Steps left before the fixture falls back to [`EXHAUSTED_TEXT`] (looping: the cycle length).
    pub(crate) fn remaining(&self) -> usize {
        self.steps.len()
    }

    /// The step for a request whose conversation has had `rounds` tool rounds since the
    /// user's message (used only by [`Playback::PerTurn`]).
    pub(crate) fn next_step(&mut self, rounds: usize) -> Step {
        if self.playback == Playback::PerTurn {
            return self
                .steps
                .get(rounds % self.steps.len().max(1))
                .cloned()
                .unwrap_or_else(|| Step::text(EXHAUSTED_TEXT));
        }
        if self.playback == Playback::Loop {
            let Some(step) = self.steps.get(self.cursor % self.steps.len().max(1)) else {
                return Step::text(EXHAUSTED_TEXT);
            };
            let step = step.clone();
            self.cursor = (self.cursor + 1) % self.steps.len();
            return step;
        }
        self.steps
            .pop_front()
            .unwrap_or_else(|| Step::text(EXHAUSTED_TEXT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn script_file_syntax_parses_every_kind_of_step() {
        let steps = parse_script(
            r#"[{"reply": {"text": "hi"}},
                {"reply": {"tool_calls": [{"name": "shell", "arguments": {"command": "ls"}}]}},
                {"error": {"status": 429, "headers": [["retry-after", "2"]]}},
                {"malformed": "{oops"},
                "stall"]"#,
        )
        .unwrap();
        assert_eq!(
            steps,
            vec![
                Step::text("hi"),
                Step::tool_call("shell", json!({"command": "ls"})),
                Step::rate_limited(2),
                Step::Malformed("{oops".into()),
                Step::Stall,
            ]
        );
    }

    #[test]
    fn once_script_drains_then_answers_exhausted() {
        let mut s = Script::new(vec![Step::text("a")], Playback::Once);
        assert_eq!(s.next_step(0), Step::text("a"));
        assert_eq!(s.next_step(0), Step::text(EXHAUSTED_TEXT));
        s.push(Step::text("b"));
        assert_eq!(s.next_step(0), Step::text("b"));
    }

    #[test]
    fn looping_script_cycles() {
        let mut s = Script::new(vec![Step::text("a"), Step::text("b")], Playback::Loop);
        let got: Vec<Step> = (0..5).map(|_| s.next_step(0)).collect();
        let want: Vec<Step> = ["a", "b", "a", "b", "a"].map(Step::text).into();
        assert_eq!(got, want);
        let mut empty = Script::new(Vec::new(), Playback::Loop);
        assert_eq!(empty.next_step(0), Step::text(EXHAUSTED_TEXT));
    }

    #[test]
    fn a_per_turn_script_follows_the_conversation_not_the_request_count() {
        let mut s = Script::new(
            vec![Step::tool_call("fs_read", json!({})), Step::text("done")],
            Playback::PerTurn,
        );
        // Two conversations interleaved: each gets the call first, then the answer.
        assert_eq!(s.next_step(0), Step::tool_call("fs_read", json!({})));
        assert_eq!(s.next_step(0), Step::tool_call("fs_read", json!({})));
        assert_eq!(s.next_step(1), Step::text("done"));
        assert_eq!(s.next_step(1), Step::text("done"));
        assert_eq!(s.next_step(2), Step::tool_call("fs_read", json!({})));
        let mut empty = Script::new(Vec::new(), Playback::PerTurn);
        assert_eq!(empty.next_step(3), Step::text(EXHAUSTED_TEXT));
    }
}
