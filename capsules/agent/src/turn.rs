//! The decisions of one turn, free of host calls: what to do next, and what the conversation
//! looks like after each model reply and tool result. The driver (`crate::driver`) performs
//! the effects this asks for and feeds the results back.

use std::collections::{HashSet, VecDeque};

use serde_json::value::RawValue;

use crate::protocol::{Completion, Message, Stop, ToolCall, ToolOutcome, Usage};
use crate::tools;

/// What the driver should do next.
#[derive(Debug)]
pub enum Next {
    /// Ask the model; `step` counts from 1.
    Model { step: u32 },
    /// Run this tool and report with [`Turn::tool_done`].
    Tool(ToolCall),
    /// Do not run this call; report it as failed with the reason (events included, so the
    /// user sees it too), then [`Turn::tool_done`] with the same error.
    Refuse(ToolCall, String),
    /// The turn is over.
    Done(Stop),
}

/// One turn's state.
#[derive(Debug)]
pub struct Turn {
    max_steps: u32,
    steps: u32,
    output_limit: usize,
    known: HashSet<String>,
    /// This turn's messages (the user's first), each encoded once.
    messages: Vec<Box<RawValue>>,
    pending: VecDeque<ToolCall>,
    outcomes: Vec<ToolOutcome>,
    usage: Usage,
    answer: String,
    cancelled: bool,
    stop: Option<Stop>,
    /// Every (tool, arguments) called this turn, to notice a model that goes round in circles.
    seen: HashSet<String>,
    /// How many replies in a row only repeated earlier calls: 1 asks for text
    /// (`tool_choice: none`), 2 or more also leaves the tools out of the request, for servers
    /// that ignore `tool_choice`.
    circling: u8,
    /// Ids of pending calls that repeat an earlier call of this turn.
    repeats: HashSet<String>,
}

fn encode(m: &Message<'_>) -> Box<RawValue> {
    // Messages hold only strings, bools and already-valid raw JSON: encoding cannot fail.
    serde_json::value::to_raw_value(m).unwrap_or_default()
}

impl Turn {
    /// A turn answering `input`, allowed `max_steps` model calls and the tools in `known`.
    pub fn new(input: &str, max_steps: u32, known: HashSet<String>, output_limit: usize) -> Turn {
        Turn {
            max_steps,
            steps: 0,
            output_limit,
            known,
            messages: vec![encode(&Message::User { content: input })],
            pending: VecDeque::new(),
            outcomes: Vec::new(),
            usage: Usage::default(),
            answer: String::new(),
            cancelled: false,
            stop: None,
            seen: HashSet::new(),
            circling: 0,
            repeats: HashSet::new(),
        }
    }

    /// The user asked to stop; takes effect at the next decision.
    pub fn cancel(&mut self) {
        self.cancelled = true;
    }

    /// The next action. Tool calls of the last model reply come first (each call must get a
    /// result, or the conversation is invalid for the next request), then the stop checks,
    /// then another model call.
    pub fn next(&mut self) -> Next {
        if let Some(call) = self.pending.pop_front() {
            if self.cancelled {
                return Next::Refuse(call, "cancelled by the user before it ran".to_owned());
            }
            if !self.known.contains(&call.name) {
                let mut names: Vec<&str> = self.known.iter().map(String::as_str).collect();
                names.sort_unstable();
                let available = if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                };
                let why = format!("unknown tool `{}`; available tools: {available}", call.name);
                return Next::Refuse(call, why);
            }
            return Next::Tool(call);
        }
        if let Some(stop) = self.stop {
            return Next::Done(stop);
        }
        let stop = if self.cancelled {
            Stop::Cancelled
        } else if self.steps >= self.max_steps {
            Stop::MaxSteps
        } else {
            self.steps += 1;
            return Next::Model { step: self.steps };
        };
        self.stop = Some(stop);
        Next::Done(stop)
    }

    /// Records the model's reply for the current step.
    pub fn model_done(&mut self, reply: Completion) {
        self.usage.add(reply.usage);
        let calls: Vec<ToolCall> = reply
            .tool_calls
            .into_iter()
            .map(|c| ToolCall {
                arguments: Some(tools::normalise_arguments(c.arguments)),
                ..c
            })
            .collect();
        // An empty assistant message carries nothing and some providers refuse one.
        if !reply.content.is_empty() || !calls.is_empty() {
            self.messages.push(encode(&Message::Assistant {
                content: &reply.content,
                tool_calls: &calls,
            }));
        }
        if !reply.content.is_empty() || calls.is_empty() {
            self.answer = reply.content;
        }
        if reply.stop == "cancelled" {
            self.cancelled = true;
        }
        if calls.is_empty() && !self.cancelled {
            self.stop = Some(Stop::End);
        }
        // A reply made only of calls already made this turn (same tool, same arguments) is a
        // model going round in circles: the calls still get their results, but the next
        // request asks for a text answer instead of offering the tools again.
        let mut fresh = false;
        for c in &calls {
            let key = format!(
                "{}\0{}",
                c.name,
                c.arguments.as_ref().map_or("", |a| a.get())
            );
            if self.seen.insert(key) {
                fresh = true;
            } else {
                self.repeats.insert(c.id.clone());
            }
        }
        if !calls.is_empty() && !fresh {
            self.circling = self.circling.saturating_add(1);
        } else if fresh {
            self.circling = 0;
        }
        self.pending = calls.into();
    }

    /// Whether the next model request may call tools (see [`Turn::model_done`]).
    pub fn offers_tools(&self) -> bool {
        self.circling == 0
    }

    /// Whether the next model request carries the tool definitions at all.
    pub fn sends_tools(&self) -> bool {
        self.circling < 2
    }

    /// Records a tool's result (`Err` for a failure, a denial or a refusal): the model sees
    /// it as a `tool` message, capped to the output limit.
    pub fn tool_done(&mut self, call: &ToolCall, result: Result<&str, &str>) {
        let (text, ok) = match result {
            Ok(t) => (t, true),
            Err(e) => (e, false),
        };
        let mut content = tools::for_model(text, self.output_limit);
        if self.repeats.remove(&call.id) {
            // Some servers ignore `tool_choice: none`; say it in words as well.
            content = format!(
                "(You already called {} with these same arguments in this turn; the result \
                 is unchanged. Do not call it again: answer the user now.)\n{content}",
                call.name
            )
            .into();
        }
        self.messages.push(encode(&Message::Tool {
            tool_call_id: &call.id,
            name: &call.name,
            content: &content,
            is_error: !ok,
        }));
        self.outcomes.push(ToolOutcome {
            name: call.name.clone(),
            ok,
        });
    }

    /// Resolves calls that will not run because the turn failed, so the stored conversation
    /// stays valid (every tool call answered).
    pub fn abandon(&mut self, why: &str) {
        while let Some(call) = self.pending.pop_front() {
            self.tool_done(&call, Err(why));
        }
    }

    /// Model calls made so far.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// True once a model reply has been recorded (then the turn's messages are worth keeping
    /// even if it fails later).
    pub fn has_progress(&self) -> bool {
        self.messages.len() > 1 || !self.outcomes.is_empty()
    }

    pub fn messages(&self) -> &[Box<RawValue>] {
        &self.messages
    }

    pub fn answer(&self) -> &str {
        &self.answer
    }

    pub fn usage(&self) -> Usage {
        self.usage
    }

    pub fn outcomes(&self) -> &[ToolOutcome] {
        &self.outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(max_steps: u32) -> Turn {
        let known = ["fs_read", "shell"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        Turn::new("list files", max_steps, known, 64)
    }

    fn reply(json: &str) -> Completion {
        serde_json::from_str(json).unwrap()
    }

    fn call_reply(names: &[&str]) -> Completion {
        let calls: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| format!(r#"{{"id":"c{i}","name":"{n}","arguments":{{}}}}"#))
            .collect();
        reply(&format!(
            r#"{{"content":"","tool_calls":[{}],"stop":"tool_use","usage":{{"input_tokens":10,"output_tokens":2}}}}"#,
            calls.join(",")
        ))
    }

    fn roles(t: &Turn) -> Vec<String> {
        t.messages()
            .iter()
            .map(|m| {
                let v: serde_json::Value = serde_json::from_str(m.get()).unwrap();
                v["role"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    #[test]
    fn a_plain_answer_ends_the_turn_after_one_step() {
        let mut t = turn(8);
        assert!(matches!(t.next(), Next::Model { step: 1 }));
        assert!(!t.has_progress());
        t.model_done(reply(
            r#"{"content":"done","stop":"end","usage":{"input_tokens":5,"output_tokens":1}}"#,
        ));
        assert!(matches!(t.next(), Next::Done(Stop::End)));
        assert_eq!(t.answer(), "done");
        assert_eq!(t.steps(), 1);
        assert_eq!(roles(&t), ["user", "assistant"]);
        assert_eq!(
            t.usage(),
            Usage {
                input_tokens: 5,
                output_tokens: 1
            }
        );
    }

    #[test]
    fn tool_calls_run_in_order_then_the_model_is_asked_again() {
        let mut t = turn(8);
        assert!(matches!(t.next(), Next::Model { step: 1 }));
        t.model_done(call_reply(&["fs_read", "shell"]));
        let Next::Tool(a) = t.next() else {
            panic!("expected a tool")
        };
        assert_eq!((a.id.as_str(), a.name.as_str()), ("c0", "fs_read"));
        t.tool_done(&a, Ok("contents"));
        let Next::Tool(b) = t.next() else {
            panic!("expected a tool")
        };
        t.tool_done(&b, Err("denied: not in the workspace"));
        assert!(matches!(t.next(), Next::Model { step: 2 }));
        t.model_done(reply(
            r#"{"content":"ok","usage":{"input_tokens":20,"output_tokens":3}}"#,
        ));
        assert!(matches!(t.next(), Next::Done(Stop::End)));
        assert_eq!(
            roles(&t),
            ["user", "assistant", "tool", "tool", "assistant"]
        );
        let tool: serde_json::Value = serde_json::from_str(t.messages()[3].get()).unwrap();
        assert_eq!(tool["is_error"], true);
        assert_eq!(tool["content"], "denied: not in the workspace");
        assert_eq!(tool["tool_call_id"], "c1");
        assert_eq!(
            t.outcomes(),
            [
                ToolOutcome {
                    name: "fs_read".into(),
                    ok: true
                },
                ToolOutcome {
                    name: "shell".into(),
                    ok: false
                }
            ]
        );
        assert_eq!(
            t.usage(),
            Usage {
                input_tokens: 30,
                output_tokens: 5
            }
        );
    }

    #[test]
    fn unknown_tools_are_refused_and_the_model_is_told() {
        let mut t = turn(8);
        t.next();
        t.model_done(call_reply(&["rm_rf"]));
        let Next::Refuse(c, why) = t.next() else {
            panic!("expected a refusal")
        };
        assert_eq!(why, "unknown tool `rm_rf`; available tools: fs_read, shell");
        t.tool_done(&c, Err(&why));
        assert!(matches!(t.next(), Next::Model { step: 2 }));
        let tool: serde_json::Value = serde_json::from_str(t.messages()[2].get()).unwrap();
        assert_eq!(tool["is_error"], true);
    }

    #[test]
    fn the_step_limit_stops_after_the_last_calls_are_answered() {
        let mut t = turn(1);
        assert!(matches!(t.next(), Next::Model { step: 1 }));
        t.model_done(call_reply(&["shell"]));
        let Next::Tool(c) = t.next() else {
            panic!("expected a tool")
        };
        t.tool_done(&c, Ok("out"));
        assert!(matches!(t.next(), Next::Done(Stop::MaxSteps)));
        // Asking again gives the same answer rather than another step.
        assert!(matches!(t.next(), Next::Done(Stop::MaxSteps)));
        assert_eq!(t.steps(), 1);
        assert_eq!(roles(&t), ["user", "assistant", "tool"]);
    }

    #[test]
    fn cancelling_refuses_pending_calls_then_stops() {
        let mut t = turn(8);
        t.next();
        t.model_done(call_reply(&["fs_read", "shell"]));
        let Next::Tool(a) = t.next() else {
            panic!("expected a tool")
        };
        t.tool_done(&a, Ok("x"));
        t.cancel();
        let Next::Refuse(b, why) = t.next() else {
            panic!("expected a refusal")
        };
        assert!(why.contains("cancelled"));
        t.tool_done(&b, Err(&why));
        assert!(matches!(t.next(), Next::Done(Stop::Cancelled)));
        assert_eq!(roles(&t), ["user", "assistant", "tool", "tool"]);
    }

    #[test]
    fn a_cancelled_completion_keeps_its_partial_text_and_stops() {
        let mut t = turn(8);
        t.next();
        t.model_done(reply(r#"{"content":"partial ans","stop":"cancelled"}"#));
        assert!(matches!(t.next(), Next::Done(Stop::Cancelled)));
        assert_eq!(t.answer(), "partial ans");
        assert_eq!(roles(&t), ["user", "assistant"]);

        // Cancelled before the first step: no model call at all.
        let mut t = turn(8);
        t.cancel();
        assert!(matches!(t.next(), Next::Done(Stop::Cancelled)));
        assert_eq!(t.steps(), 0);
    }

    #[test]
    fn empty_replies_add_no_message_and_tool_text_is_capped() {
        let mut t = turn(8);
        t.next();
        t.model_done(call_reply(&["shell"]));
        let Next::Tool(c) = t.next() else {
            panic!("expected a tool")
        };
        t.tool_done(&c, Ok(&"x".repeat(1000)));
        let tool: serde_json::Value = serde_json::from_str(t.messages()[2].get()).unwrap();
        let content = tool["content"].as_str().unwrap();
        assert!(content.starts_with(&"x".repeat(64)));
        assert!(content.ends_with("[output truncated: showed 64 of 1000 bytes]"));
        t.next();
        t.model_done(reply(r#"{"content":""}"#));
        assert!(matches!(t.next(), Next::Done(Stop::End)));
        assert_eq!(roles(&t), ["user", "assistant", "tool"]);
        assert_eq!(t.answer(), "");
    }

    #[test]
    fn the_answer_keeps_text_said_alongside_tool_calls() {
        let mut t = turn(1);
        t.next();
        t.model_done(reply(
            r#"{"content":"Let me look.","tool_calls":[{"id":"1","name":"shell","arguments":"{\"command\":\"ls\"}"}]}"#,
        ));
        let Next::Tool(c) = t.next() else {
            panic!("expected a tool")
        };
        assert_eq!(c.arguments.as_ref().unwrap().get(), r#"{"command":"ls"}"#);
        t.tool_done(&c, Ok("a\nb"));
        assert!(matches!(t.next(), Next::Done(Stop::MaxSteps)));
        assert_eq!(t.answer(), "Let me look.");
        let assistant: serde_json::Value = serde_json::from_str(t.messages()[1].get()).unwrap();
        assert_eq!(assistant["tool_calls"][0]["arguments"]["command"], "ls");
    }

    #[test]
    fn abandoning_answers_every_pending_call() {
        let mut t = turn(8);
        t.next();
        t.model_done(call_reply(&["shell", "fs_read"]));
        assert!(t.has_progress());
        t.abandon("the turn failed before this ran");
        assert_eq!(roles(&t), ["user", "assistant", "tool", "tool"]);
        assert!(t.outcomes().iter().all(|o| !o.ok));
    }

    #[test]
    fn repeating_the_same_calls_asks_for_text_next() {
        let mut t = turn(8);
        assert!(matches!(t.next(), Next::Model { step: 1 }));
        t.model_done(call_reply(&["fs_read"]));
        assert!(t.offers_tools(), "a first call is not a repeat");
        while let Next::Tool(c) = t.next() {
            t.tool_done(&c, Ok("content"));
            if t.pending.is_empty() {
                break;
            }
        }
        assert!(matches!(t.next(), Next::Model { step: 2 }));
        t.model_done(call_reply(&["fs_read"]));
        assert!(!t.offers_tools(), "the same call again: ask for text");
        // The repeated call still gets its result, so the conversation stays valid.
        assert!(matches!(t.next(), Next::Tool(_)));
    }

    #[test]
    fn a_new_call_alongside_is_not_a_repeat() {
        let mut t = turn(8);
        t.next();
        t.model_done(call_reply(&["fs_read"]));
        while let Next::Tool(c) = t.next() {
            t.tool_done(&c, Ok("content"));
            if t.pending.is_empty() {
                break;
            }
        }
        t.next();
        t.model_done(call_reply(&["fs_read", "shell"]));
        assert!(t.offers_tools());
    }

    #[test]
    fn circling_twice_leaves_the_tools_out() {
        let mut t = turn(8);
        for step in 1..=3 {
            assert!(matches!(t.next(), Next::Model { .. }), "step {step}");
            t.model_done(call_reply(&["fs_read"]));
            while let Next::Tool(c) = t.next() {
                t.tool_done(&c, Ok("content"));
                if t.pending.is_empty() {
                    break;
                }
            }
        }
        assert!(!t.offers_tools());
        assert!(!t.sends_tools());
        let last = t.messages().last().unwrap().get();
        assert!(last.contains("already called fs_read"), "{last}");
    }
}
