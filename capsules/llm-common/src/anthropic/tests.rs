use serde_json::json;

use super::*;
use crate::api::Params;
use crate::testutil::{conversation, decode_split, events};
use crate::types::{CompleteReply, CompleteRequest, StopReason, ToolCall, Usage};
use crate::LlmError;

const TOOLS: &str = include_str!("../../fixtures/anthropic_tools.sse");

fn params(stream: bool) -> Params<'static> {
    Params {
        model: "claude-3-5-haiku-latest",
        max_tokens: 1024,
        stream,
        max_completion_tokens: true,
    }
}

#[test]
fn golden_request() {
    let body = build_request(&conversation(), &params(true));
    let expected = json!({
        "model": "claude-3-5-haiku-latest",
        "max_tokens": 1024,
        "stream": true,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Read notes/é.txt and list the directory."}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Reading."},
                {"type": "tool_use", "id": "call_1", "name": "fs_read",
                 "input": {"path": "notes/é.txt"}},
                {"type": "tool_use", "id": "call_2", "name": "shell", "input": {"_raw": "ls -la"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "hello",
                 "is_error": false},
                {"type": "tool_result", "tool_use_id": "call_2",
                 "content": "denied by the operator", "is_error": true},
                {"type": "text", "text": "Thanks."}
            ]}
        ],
        "tools": [{"name": "fs_read", "description": "Reads a file.",
                   "input_schema": {"type": "object",
                                    "properties": {"path": {"type": "string"}},
                                    "required": ["path"]}}]
    });
    assert_eq!(body, expected);
}

#[test]
fn text_before_results_is_moved_after_them_and_empty_messages_dropped() {
    let req: CompleteRequest = serde_json::from_value(json!({
        "system": "",
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "t1", "name": "x", "arguments": {}}]},
            {"role": "user", "content": "also this"},
            {"role": "tool", "tool_call_id": "t1", "content": "ok"},
            {"role": "assistant", "content": ""}
        ]
    }))
    .unwrap();
    let body = build_request(&req, &params(false));
    assert_eq!(body.get("system"), None);
    assert_eq!(body.get("stream"), None);
    assert_eq!(body.get("tools"), None);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "go"}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "t1", "name": "x", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "ok", "is_error": false},
                {"type": "text", "text": "also this"}]}
        ])
    );
}

#[test]
fn whole_response_with_text_and_tool_use() {
    let body = br#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022","content":[{"type":"text","text":"Let me check."},{"type":"tool_use","id":"toolu_01","name":"fs_read","input":{"path":"a.txt"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":100,"cache_creation_input_tokens":5,"cache_read_input_tokens":0,"output_tokens":30}}"#;
    let r = parse_response(body, "x").unwrap();
    assert_eq!(
        r,
        CompleteReply {
            content: "Let me check.".into(),
            tool_calls: vec![ToolCall {
                id: "toolu_01".into(),
                name: "fs_read".into(),
                arguments: json!({"path": "a.txt"}),
            }],
            stop: StopReason::ToolUse,
            usage: Usage {
                input_tokens: 105,
                output_tokens: 30
            },
            model: "claude-3-5-haiku-20241022".into(),
        }
    );
}

#[test]
fn whole_response_stop_reasons() {
    let with = |reason: &str| {
        let body = format!(
            r#"{{"type":"message","content":[{{"type":"text","text":"t"}}],"stop_reason":"{reason}","usage":{{"input_tokens":1,"output_tokens":2}}}}"#
        );
        parse_response(body.as_bytes(), "m").unwrap().stop
    };
    assert_eq!(with("end_turn"), StopReason::End);
    assert_eq!(with("stop_sequence"), StopReason::End);
    assert_eq!(with("max_tokens"), StopReason::Length);
    assert_eq!(with("refusal"), StopReason::End);
}

#[test]
fn whole_response_errors() {
    let body =
        br#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-9"}}"#;
    let e = parse_response(body, "claude-9").unwrap_err();
    assert_eq!(
        e.to_string(),
        "model `claude-9` not found (404): model: claude-9"
    );
    assert_eq!(
        parse_response(br#"{"type":"message"}"#, "m")
            .unwrap_err()
            .to_string(),
        "malformed response from the provider: the message has no `content` list"
    );
    let no_id = br#"{"content":[{"type":"tool_use","name":"x","input":{}}]}"#;
    assert!(parse_response(no_id, "m")
        .unwrap_err()
        .to_string()
        .contains("tool_use block 0 has no `id`"));
}

#[test]
fn stream_at_every_split() {
    decode_split(
        TOOLS,
        || crate::Api::Anthropic.decoder("claude-3-5-haiku-latest"),
        |deltas, reply| {
            assert_eq!(deltas, ["Ich lese die", " Datei «é.txt» 📄"]);
            assert_eq!(
                *reply,
                CompleteReply {
                    content: "Ich lese die Datei «é.txt» 📄".into(),
                    tool_calls: vec![ToolCall {
                        id: "toolu_01A09q90qw90lq917835lq9".into(),
                        name: "fs_read".into(),
                        arguments: json!({"path": "notes/é.txt"}),
                    }],
                    stop: StopReason::ToolUse,
                    usage: Usage {
                        input_tokens: 432,
                        output_tokens: 61
                    },
                    model: "claude-3-5-haiku-20241022".into(),
                }
            );
        },
    );
}

fn decode(text: &str) -> Result<CompleteReply, LlmError> {
    let mut d = StreamDecoder::new("fallback");
    for e in events(text) {
        d.on_event(&e)?;
    }
    d.finish(false)
}

#[test]
fn tool_without_input_deltas_uses_the_start_input() {
    let stream = concat!(
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"now\",\"input\":{}}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"input_tokens\":7,\"output_tokens\":3}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let r = decode(stream).unwrap();
    assert_eq!(r.tool_calls[0].arguments, json!({}));
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 7,
            output_tokens: 3
        }
    );
    assert_eq!(r.model, "fallback");
}

#[test]
fn broken_tool_json_is_kept_raw() {
    let stream = concat!(
        "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"x\",\"input\":{}}}\n\n",
        "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\": \"}}\n\n",
        "data: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );
    let r = decode(stream).unwrap();
    assert_eq!(r.tool_calls[0].arguments, json!({"_raw": "{\"a\": "}));
    assert_eq!(r.stop, StopReason::ToolUse);
}

#[test]
fn error_events_are_classified() {
    let stream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n",
        "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n",
    );
    assert_eq!(
        decode(stream).unwrap_err().to_string(),
        "provider error 529: Overloaded"
    );
}

#[test]
fn malformed_streams_say_what_is_wrong() {
    let e = decode("event: content_block_delta\ndata: {oops\n\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "malformed response from the provider: the `content_block_delta` event is not JSON"
        ),
        "{e}"
    );
    let e = decode("data: {\"type\":\"content_block_delta\",\"index\":4,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("block 4, which is not a tool_use block"),
        "{e}"
    );
    let cut = &TOOLS[..TOOLS.find("event: message_stop").unwrap()];
    assert!(decode(cut)
        .unwrap_err()
        .to_string()
        .contains("no message_stop"));
}

#[test]
fn unknown_events_and_thinking_blocks_are_ignored() {
    let stream = concat!(
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n",
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: brand_new\ndata: {\"type\":\"brand_new\"}\n\n",
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"A\"}}\n\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":5}}\n\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );
    let r = decode(stream).unwrap();
    assert_eq!((r.content.as_str(), r.stop), ("A", StopReason::End));
}

#[test]
fn cancelling_keeps_text_and_drops_tool_calls() {
    let mut d = StreamDecoder::new("m");
    let evs = events(TOOLS);
    for e in &evs[..evs.len() - 2] {
        d.on_event(e).unwrap();
    }
    let r = d.finish(true).unwrap();
    assert_eq!(r.stop, StopReason::Cancelled);
    assert_eq!(r.content, "Ich lese die Datei «é.txt» 📄");
    assert!(r.tool_calls.is_empty());
}
