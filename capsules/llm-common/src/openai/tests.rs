use serde_json::json;

use super::*;
use crate::api::Params;
use crate::sse::SseParser;
use crate::testutil::{conversation, decode_split, events};
use crate::types::{CompleteRequest, StopReason, ToolCall, Usage};
use crate::LlmError;

const TEXT: &str = include_str!("../../fixtures/openai_text.sse");
const TOOLS: &str = include_str!("../../fixtures/openai_tools.sse");

fn params(stream: bool) -> Params<'static> {
    Params {
        model: "gpt-4o-mini",
        max_tokens: 1024,
        stream,
        max_completion_tokens: false,
    }
}

#[test]
fn golden_request() {
    let body = build_request(&conversation(), &params(true));
    let expected = json!({
        "model": "gpt-4o-mini",
        "max_tokens": 1024,
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Read notes/é.txt and list the directory."},
            {"role": "assistant", "content": "Reading.", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "fs_read", "arguments": "{\"path\":\"notes/é.txt\"}"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_2", "type": "function",
                 "function": {"name": "shell", "arguments": "ls -la"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "hello"},
            {"role": "tool", "tool_call_id": "call_2", "content": "error: denied by the operator"},
            {"role": "user", "content": "Thanks."}
        ],
        "tools": [{"type": "function", "function": {
            "name": "fs_read", "description": "Reads a file.",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                           "required": ["path"]}}}]
    });
    assert_eq!(body, expected);
}

#[test]
fn minimal_request_without_stream_system_or_tools() {
    let req: CompleteRequest =
        serde_json::from_value(json!({"messages": [{"role": "user", "content": "hi"}]})).unwrap();
    let p = Params {
        max_completion_tokens: true,
        ..params(false)
    };
    assert_eq!(
        build_request(&req, &p),
        json!({"model": "gpt-4o-mini", "max_completion_tokens": 1024,
               "messages": [{"role": "user", "content": "hi"}]})
    );
}

#[test]
fn the_max_completion_tokens_hint_is_recognised() {
    let body = br#"{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}"#;
    assert!(wants_max_completion_tokens(400, body));
    assert!(!wants_max_completion_tokens(404, body));
    assert!(!wants_max_completion_tokens(
        400,
        br#"{"error":{"message":"bad"}}"#
    ));
}

#[test]
fn whole_response_with_text() {
    let body = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#;
    let r = parse_response(body, "gpt-4o-mini").unwrap();
    assert_eq!(r.content, "Hello!");
    assert_eq!(r.stop, StopReason::End);
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 9,
            output_tokens: 3
        }
    );
    assert_eq!(r.model, "gpt-4o-mini-2024-07-18");
}

#[test]
fn whole_response_with_tool_calls() {
    let body = br#"{"id":"chatcmpl-2","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"fs_read","arguments":"{\"path\":\"a.txt\"}"}},{"id":"call_b","type":"function","function":{"name":"shell","arguments":"not json"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#;
    let r = parse_response(body, "x").unwrap();
    assert_eq!(r.content, "");
    assert_eq!(r.stop, StopReason::ToolUse);
    assert_eq!(
        r.tool_calls,
        vec![
            ToolCall {
                id: "call_a".into(),
                name: "fs_read".into(),
                arguments: json!({"path": "a.txt"})
            },
            ToolCall {
                id: "call_b".into(),
                name: "shell".into(),
                arguments: json!({"_raw": "not json"})
            },
        ]
    );
}

#[test]
fn whole_response_oddities() {
    // A server that says `stop` after calling tools, and gives no usage or model.
    let body = br#"{"choices":[{"message":{"content":"","tool_calls":[{"function":{"name":"t","arguments":{"k":1}}}]},"finish_reason":"stop"}]}"#;
    let r = parse_response(body, "local").unwrap();
    assert_eq!(r.stop, StopReason::ToolUse);
    assert_eq!(r.tool_calls[0].id, "call_0");
    assert_eq!(r.tool_calls[0].arguments, json!({"k": 1}));
    assert_eq!((r.model.as_str(), r.usage), ("local", Usage::default()));
    let r = parse_response(
        br#"{"choices":[{"message":{"content":"x"},"finish_reason":"length"}]}"#,
        "m",
    )
    .unwrap();
    assert_eq!(r.stop, StopReason::Length);
}

#[test]
fn malformed_whole_responses_say_what_is_wrong() {
    let e = parse_response(b"<html>oops</html>", "m")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("malformed response from the provider: the completion is not JSON"),
        "{e}"
    );
    assert!(e.ends_with("<html>oops</html>"), "{e}");
    assert_eq!(
        parse_response(br#"{"choices":[]}"#, "m")
            .unwrap_err()
            .to_string(),
        "malformed response from the provider: the completion has no `choices`"
    );
    assert!(parse_response(
        br#"{"choices":[{"message":{"tool_calls":[{"function":{}}]}}]}"#,
        "m"
    )
    .unwrap_err()
    .to_string()
    .contains("tool call 0 has no function name"));
    let e = parse_response(
        br#"{"error":{"message":"quota","type":"insufficient_quota"}}"#,
        "m",
    );
    assert_eq!(e.unwrap_err(), LlmError::Reported("quota".into()));
}

#[test]
fn text_stream_at_every_split() {
    let expected_deltas = ["Grüße", " aus", " Tōkyō 🌸", "!"];
    decode_split(
        TEXT,
        || crate::Api::OpenAi.decoder("gpt-4o-mini"),
        |deltas, reply| {
            assert_eq!(deltas, expected_deltas);
            assert_eq!(reply.content, "Grüße aus Tōkyō 🌸!");
            assert_eq!(reply.stop, StopReason::End);
            assert!(reply.tool_calls.is_empty());
            assert_eq!(
                reply.usage,
                Usage {
                    input_tokens: 19,
                    output_tokens: 9
                }
            );
            assert_eq!(reply.model, "gpt-4o-mini-2024-07-18");
        },
    );
}

#[test]
fn tool_call_stream_is_reassembled_by_index() {
    decode_split(
        TOOLS,
        || crate::Api::OpenAi.decoder("gpt-4o-mini"),
        |deltas, reply| {
            assert!(deltas.is_empty());
            assert_eq!(reply.stop, StopReason::ToolUse);
            assert_eq!(
                reply.tool_calls,
                vec![
                    ToolCall {
                        id: "call_4vPLpx1zJ8mKq0S2cXbYd9Ut".into(),
                        name: "fs_read".into(),
                        arguments: json!({"path": "notes/é.txt"}),
                    },
                    ToolCall {
                        id: "call_Xr7bWq2LmN0cV5tYp3KsZ1Ae".into(),
                        name: "shell".into(),
                        arguments: json!({"command": "ls -la"}),
                    },
                ]
            );
            assert_eq!(
                reply.usage,
                Usage {
                    input_tokens: 141,
                    output_tokens: 52
                }
            );
        },
    );
}

fn decode(text: &str) -> Result<crate::types::CompleteReply, LlmError> {
    let mut d = StreamDecoder::new("fallback");
    for e in events(text) {
        d.on_event(&e)?;
    }
    d.finish(false)
}

#[test]
fn interleaved_pieces_repeated_names_and_missing_ids() {
    let stream = concat!(
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"name\":\"b\",\"arguments\":\"{\\\"x\\\"\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c0\",\"function\":{\"name\":\"a\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"name\":\"b\",\"arguments\":\":2}\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let r = decode(stream).unwrap();
    assert_eq!(
        r.tool_calls[0],
        ToolCall {
            id: "c0".into(),
            name: "a".into(),
            arguments: json!({})
        }
    );
    assert_eq!(
        r.tool_calls[1],
        ToolCall {
            id: "call_1".into(),
            name: "b".into(),
            arguments: json!({"x": 2})
        }
    );
    assert_eq!(r.model, "fallback");
}

#[test]
fn done_without_usage_or_finish_reason_is_accepted() {
    let r = decode("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n")
        .unwrap();
    assert_eq!(
        (r.content.as_str(), r.stop, r.usage),
        ("hi", StopReason::End, Usage::default())
    );
}

#[test]
fn a_stream_cut_short_is_malformed() {
    // Cut at the event boundary before the chunk carrying `finish_reason`.
    let finish = TEXT.find(r#""finish_reason":"stop""#).unwrap();
    let cut = &TEXT[..TEXT[..finish].rfind("data:").unwrap()];
    let e = decode(cut).unwrap_err();
    assert!(
        e.to_string()
            .contains("the stream ended before the answer was complete"),
        "{e}"
    );
}

#[test]
fn cancelling_keeps_the_text_and_drops_half_calls() {
    let mut d = StreamDecoder::new("m");
    let evs = events(TOOLS);
    for e in &evs[..3] {
        d.on_event(e).unwrap();
    }
    let r = d.finish(true).unwrap();
    assert_eq!(r.stop, StopReason::Cancelled);
    assert!(r.tool_calls.is_empty());

    let mut d = StreamDecoder::new("m");
    for e in &events(TEXT)[..3] {
        d.on_event(e).unwrap();
    }
    let r = d.finish(true).unwrap();
    assert_eq!(
        (r.content.as_str(), r.stop),
        ("Grüße aus", StopReason::Cancelled)
    );
}

#[test]
fn errors_inside_the_stream() {
    let e = decode(
        "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n",
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "provider error 500: The server had an error");
    let e = decode("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {not json\n\n")
        .unwrap_err();
    assert_eq!(
        e.to_string().split(" (").next().unwrap(),
        "malformed response from the provider: a stream event is not JSON"
    );
    assert!(e.to_string().ends_with("{not json"), "{e}");
}

#[test]
fn comments_and_keepalives_between_chunks_are_harmless() {
    let mut with_comments = String::from(": OPENROUTER PROCESSING\n\n");
    with_comments.push_str(&TEXT.replace("\n\ndata:", "\n\n: ping\n\ndata:"));
    let mut p = SseParser::new();
    let mut d = StreamDecoder::new("m");
    for e in p.feed(with_comments.as_bytes()).unwrap() {
        d.on_event(&e).unwrap();
    }
    assert_eq!(d.finish(false).unwrap().content, "Grüße aus Tōkyō 🌸!");
}
