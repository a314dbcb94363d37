//! The Anthropic Messages dialect, driven over real HTTP.

mod common;

use astrid_llm_fixture::{Api, Fixture, FixtureConfig, ScriptedCall, Step};
use common::*;
use serde_json::{json, Value};

fn keyed() -> FixtureConfig {
    FixtureConfig {
        api_key: Some(KEY.into()),
        ..FixtureConfig::default()
    }
}

#[tokio::test]
async fn non_stream_text_has_the_message_shape() {
    let fx = Fixture::start(keyed(), vec![Step::text("Hi!")])
        .await
        .unwrap();
    let resp = anthropic_post(&fx.base_url(), Some(KEY), &anthropic_body(CLAUDE, false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "application/json");
    assert!(header(&resp, "request-id").starts_with("req_"));
    let v: Value = resp.json().await.unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], CLAUDE);
    assert_eq!(v["content"], json!([{"type": "text", "text": "Hi!"}]));
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["stop_sequence"], Value::Null);
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);
    fx.shutdown().await;
}

#[tokio::test]
async fn non_stream_tool_use_carries_input_object() {
    let args = json!({"path": "a.txt"});
    let step = Step::Reply {
        text: "Reading.".into(),
        tool_calls: vec![ScriptedCall::new("fs_read", args.clone())],
    };
    let fx = Fixture::start(keyed(), vec![step]).await.unwrap();
    let v: Value = anthropic_post(&fx.base_url(), Some(KEY), &anthropic_body(CLAUDE, false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    let content = v["content"].as_array().unwrap();
    assert_eq!(content.len(), 2);
    assert_eq!(content[0], json!({"type": "text", "text": "Reading."}));
    assert_eq!(content[1]["type"], "tool_use");
    assert!(content[1]["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(content[1]["name"], "fs_read");
    assert_eq!(content[1]["input"], args);
    fx.shutdown().await;
}

#[tokio::test]
async fn stream_text_follows_the_event_sequence() {
    let text = "Streaming works in pieces.";
    let fx = Fixture::start(keyed(), vec![Step::text(text)])
        .await
        .unwrap();
    let resp = anthropic_post(&fx.base_url(), Some(KEY), &anthropic_body(CLAUDE, true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "content-type"),
        "text/event-stream; charset=utf-8"
    );
    let events = parse_sse(&resp.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    for e in &events {
        assert_eq!(
            e.json()["type"],
            e.name.as_deref().unwrap(),
            "data.type names the event"
        );
    }
    let start = events[0].json();
    assert_eq!(start["message"]["content"], json!([]));
    assert_eq!(start["message"]["stop_reason"], Value::Null);
    assert_eq!(start["message"]["model"], CLAUDE);
    assert_eq!(
        events[1].json()["content_block"],
        json!({"type": "text", "text": ""})
    );
    let mut got = String::new();
    for e in &events[3..6] {
        let d = e.json();
        assert_eq!(d["index"], 0);
        assert_eq!(d["delta"]["type"], "text_delta");
        got.push_str(d["delta"]["text"].as_str().unwrap());
    }
    assert_eq!(got, text);
    let delta = events[7].json();
    assert_eq!(
        delta["delta"],
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
    fx.shutdown().await;
}

#[tokio::test]
async fn stream_tool_use_input_arrives_in_pieces_and_reassembles() {
    let a = json!({"command": "cargo test --workspace", "cwd": "/work"});
    let b = json!({"url": "https://example.com/ä?q=1", "headers": {"accept": "*/*"}});
    let step = Step::Reply {
        text: "On it.".into(),
        tool_calls: vec![
            ScriptedCall::new("shell", a.clone()),
            ScriptedCall::new("http_fetch", b.clone()),
        ],
    };
    let fx = Fixture::start(keyed(), vec![step]).await.unwrap();
    let resp = anthropic_post(&fx.base_url(), Some(KEY), &anthropic_body(CLAUDE, true)).await;
    let events: Vec<Value> = parse_sse(&resp.text().await.unwrap())
        .iter()
        .map(Event::json)
        .collect();
    // Reassemble the way a client must: blocks by index, input from partial_json.
    let mut blocks: Vec<Value> = Vec::new();
    let mut partial: Vec<String> = Vec::new();
    let mut fragments: Vec<usize> = Vec::new();
    let mut open: Option<usize> = None;
    for e in &events {
        match e["type"].as_str().unwrap() {
            "content_block_start" => {
                let i = e["index"].as_u64().unwrap() as usize;
                assert_eq!(i, blocks.len());
                assert!(open.replace(i).is_none(), "blocks do not overlap");
                blocks.push(e["content_block"].clone());
                partial.push(String::new());
                fragments.push(0);
            }
            "content_block_delta" => {
                let i = e["index"].as_u64().unwrap() as usize;
                assert_eq!(Some(i), open);
                let d = &e["delta"];
                match d["type"].as_str().unwrap() {
                    "text_delta" => {
                        let t = blocks[i]["text"].as_str().unwrap().to_string();
                        blocks[i]["text"] = json!(t + d["text"].as_str().unwrap());
                    }
                    "input_json_delta" => {
                        let piece = d["partial_json"].as_str().unwrap();
                        partial[i].push_str(piece);
                        fragments[i] += usize::from(!piece.is_empty());
                    }
                    other => panic!("unexpected delta {other}"),
                }
            }
            "content_block_stop" => {
                let i = e["index"].as_u64().unwrap() as usize;
                assert_eq!(open.take(), Some(i));
            }
            "message_delta" => assert_eq!(e["delta"]["stop_reason"], "tool_use"),
            _ => {}
        }
    }
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[0], json!({"type": "text", "text": "On it."}));
    for (i, (name, want)) in [(1, ("shell", &a)), (2, ("http_fetch", &b))] {
        assert_eq!(blocks[i]["type"], "tool_use");
        assert_eq!(blocks[i]["name"], name);
        assert_eq!(blocks[i]["input"], json!({}), "input starts empty");
        assert!(blocks[i]["id"].as_str().unwrap().starts_with("toolu_"));
        assert!(fragments[i] >= 2, "fragments: {fragments:?}");
        assert_eq!(&serde_json::from_str::<Value>(&partial[i]).unwrap(), want);
    }
    assert_ne!(blocks[1]["id"], blocks[2]["id"]);
    assert_eq!(events.last().unwrap(), &json!({"type": "message_stop"}));
    fx.shutdown().await;
}

#[tokio::test]
async fn missing_version_header_is_400() {
    let fx = Fixture::start(keyed(), vec![Step::text("kept")])
        .await
        .unwrap();
    let resp = client()
        .post(format!("{}/v1/messages", fx.base_url()))
        .header("x-api-key", KEY)
        .json(&anthropic_body(CLAUDE, false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(
        v["error"],
        json!({"type": "invalid_request_error", "message": "anthropic-version: header is required"})
    );
    assert_eq!(fx.remaining(), 1);
    fx.shutdown().await;
}

#[tokio::test]
async fn wrong_or_missing_key_is_401_authentication_error() {
    let fx = Fixture::start(keyed(), vec![]).await.unwrap();
    let resp = anthropic_post(
        &fx.base_url(),
        Some("sk-ant-nope"),
        &anthropic_body(CLAUDE, false),
    )
    .await;
    assert_eq!(resp.status(), 401);
    let rid = header(&resp, "request-id");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["error"],
        json!({"type": "authentication_error", "message": "invalid x-api-key"})
    );
    assert_eq!(
        v["request_id"],
        rid.as_str(),
        "body and header carry the same id"
    );
    let resp = anthropic_post(&fx.base_url(), None, &anthropic_body(CLAUDE, false)).await;
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "x-api-key header is required");
    fx.shutdown().await;
}

#[tokio::test]
async fn unknown_model_is_404_not_found_error() {
    let fx = Fixture::start(keyed(), vec![]).await.unwrap();
    let resp = anthropic_post(
        &fx.base_url(),
        Some(KEY),
        &anthropic_body("claude-0", false),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["error"],
        json!({"type": "not_found_error", "message": "model: claude-0"})
    );
    fx.shutdown().await;
}

#[tokio::test]
async fn missing_max_tokens_is_400() {
    let fx = Fixture::start(keyed(), vec![]).await.unwrap();
    let body = json!({"model": CLAUDE, "messages": []});
    let resp = anthropic_post(&fx.base_url(), Some(KEY), &body).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "max_tokens: Field required");
    fx.shutdown().await;
}

#[tokio::test]
async fn rate_limit_and_overload_use_the_service_shapes() {
    let fx = Fixture::start(keyed(), vec![Step::rate_limited(3), Step::error(529)])
        .await
        .unwrap();
    let resp = anthropic_post(&fx.base_url(), Some(KEY), &anthropic_body(CLAUDE, true)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), "3");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "rate_limit_error");
    let resp = anthropic_post(&fx.base_url(), Some(KEY), &anthropic_body(CLAUDE, false)).await;
    assert_eq!(resp.status(), 529);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["error"],
        json!({"type": "overloaded_error", "message": "Overloaded"})
    );
    fx.shutdown().await;
}

#[tokio::test]
async fn malformed_body_is_sent_raw_with_200() {
    let fx = Fixture::start(keyed(), vec![Step::Malformed("not json at all".into())])
        .await
        .unwrap();
    let resp = anthropic_post(&fx.base_url(), Some(KEY), &anthropic_body(CLAUDE, false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "not json at all");
    fx.shutdown().await;
}

#[tokio::test]
async fn requests_are_recorded_as_anthropic() {
    let fx = Fixture::start(keyed(), vec![Step::text("x")])
        .await
        .unwrap();
    let body = anthropic_body(CLAUDE, false);
    anthropic_post(&fx.base_url(), Some(KEY), &body).await;
    let got = fx.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].api, Api::Anthropic);
    assert_eq!(got[0].path, "/v1/messages");
    assert_eq!(got[0].header("x-api-key"), Some(KEY));
    assert_eq!(got[0].header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(got[0].body, body);
    fx.shutdown().await;
}

#[tokio::test]
async fn bytes_keep_the_services_key_order() {
    let fx = Fixture::start(keyed(), vec![Step::text("hi"), Step::text("yo")])
        .await
        .unwrap();
    let base = fx.base_url();
    let whole = anthropic_post(&base, Some(KEY), &anthropic_body(CLAUDE, false))
        .await
        .text()
        .await
        .unwrap();
    assert!(whole.starts_with(r#"{"id":"msg_"#), "{whole}");
    assert!(whole.contains(
        r#","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":"#
    ), "{whole}");
    let stream = anthropic_post(&base, Some(KEY), &anthropic_body(CLAUDE, true))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        stream.starts_with(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_"
        ),
        "{stream}"
    );
    assert!(stream.contains(
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n"
    ), "{stream}");
    assert!(stream.contains(
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"y\"}}\n\n"
    ));
    assert!(stream.ends_with(
        "\"usage\":{\"output_tokens\":1}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
    ), "{stream}");
    let denied = anthropic_post(&base, Some("nope"), &anthropic_body(CLAUDE, false))
        .await
        .text()
        .await
        .unwrap();
    assert!(denied.starts_with(
        r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_"#
    ), "{denied}");
    fx.shutdown().await;
}
