//! Shared test inputs: one conversation exercising every message shape, and a driver that
//! decodes a captured stream split at every byte.

use serde_json::json;

use crate::api::Decoder;
use crate::sse::{SseEvent, SseParser};
use crate::types::{CompleteReply, CompleteRequest};

/// User text, an assistant turn with text and a call, one with only a call whose arguments
/// the model garbled, two results (one an error), and a closing user message.
pub fn conversation() -> CompleteRequest {
    serde_json::from_value(json!({
        "model": null,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": "Read notes/é.txt and list the directory."},
            {"role": "assistant", "content": "Reading.", "tool_calls": [
                {"id": "call_1", "name": "fs_read", "arguments": {"path": "notes/é.txt"}}]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_2", "name": "shell", "arguments": {"_raw": "ls -la"}}]},
            {"role": "tool", "tool_call_id": "call_1", "name": "fs_read", "content": "hello",
             "is_error": false},
            {"role": "tool", "tool_call_id": "call_2", "name": "shell",
             "content": "denied by the operator", "is_error": true},
            {"role": "user", "content": "Thanks."}
        ],
        "tools": [{"name": "fs_read", "description": "Reads a file.",
                   "input_schema": {"type": "object", "properties": {"path": {"type": "string"}},
                                    "required": ["path"]}}],
        "max_tokens": 1024,
        "stream_topic": "agent.v1.event.0123456789abcdef",
        "cancel_topic": null
    }))
    .unwrap()
}

/// All events of a whole stream.
pub fn events(text: &str) -> Vec<SseEvent> {
    let mut p = SseParser::new();
    let mut out = p.feed(text.as_bytes()).unwrap();
    out.extend(p.finish().unwrap());
    out
}

/// Feeds `text` in two chunks split at every byte (and one byte at a time), decoding as the
/// capsule does, and checks each outcome.
pub fn decode_split(
    text: &str,
    decoder: impl Fn() -> Decoder,
    check: impl Fn(&[String], &CompleteReply),
) {
    let bytes = text.as_bytes();
    let run = |chunks: &[&[u8]]| {
        let mut p = SseParser::new();
        let mut d = decoder();
        let mut deltas = Vec::new();
        for chunk in chunks {
            for e in p.feed(chunk).unwrap() {
                deltas.extend(d.on_event(&e).unwrap());
            }
        }
        if let Some(e) = p.finish().unwrap() {
            deltas.extend(d.on_event(&e).unwrap());
        }
        assert!(d.is_done(), "the end marker was seen");
        (deltas, d.finish(false).unwrap())
    };
    for cut in 0..=bytes.len() {
        let (deltas, reply) = run(&[&bytes[..cut], &bytes[cut..]]);
        check(&deltas, &reply);
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    let (deltas, reply) = run(&singles);
    check(&deltas, &reply);
}
