//! The OpenAI chat-completions dialect, driven over real HTTP.

mod common;

use std::time::Duration;

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
async fn non_stream_text_has_the_completion_shape() {
    let fx = Fixture::start(keyed(), vec![Step::text("Hello there.")])
        .await
        .unwrap();
    let resp = openai_post(&fx.base_url(), Some(KEY), &openai_body(GPT, false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "application/json");
    assert!(header(&resp, "x-request-id").starts_with("req_"));
    let v: Value = resp.json().await.unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["model"], GPT);
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "Hello there.");
    assert!(choice["message"].get("tool_calls").is_none());
    assert_eq!(choice["finish_reason"], "stop");
    let u = &v["usage"];
    let (p, c) = (
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
    );
    assert!(p > 0 && c > 0);
    assert_eq!(u["total_tokens"].as_u64().unwrap(), p + c);
    fx.shutdown().await;
}

#[tokio::test]
async fn non_stream_tool_call_has_null_content_and_string_arguments() {
    let args = json!({"path": "src/main.rs", "limit": 40});
    let fx = Fixture::start(keyed(), vec![Step::tool_call("fs_read", args.clone())])
        .await
        .unwrap();
    let v: Value = openai_post(&fx.base_url(), Some(KEY), &openai_body(GPT, false))
        .await
        .json()
        .await
        .unwrap();
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "fs_read");
    let raw = call["function"]["arguments"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(raw).unwrap(), args);
    fx.shutdown().await;
}

#[tokio::test]
async fn stream_text_reassembles_with_usage_chunk_and_done() {
    let text = "The quick brown fox jumps over the lazy dog.";
    let fx = Fixture::start(keyed(), vec![Step::text(text)])
        .await
        .unwrap();
    let mut body = openai_body(GPT, true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = openai_post(&fx.base_url(), Some(KEY), &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "content-type"),
        "text/event-stream; charset=utf-8"
    );
    let events = parse_sse(&resp.text().await.unwrap());
    assert!(
        events.iter().all(|e| e.name.is_none()),
        "OpenAI sends no event names"
    );
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(Event::json).collect();
    let id = chunks[0]["id"].clone();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], id);
        assert_eq!(c["model"], GPT);
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(usage_chunk["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert!(rest.iter().all(|c| c["usage"].is_null()));
    let pieces: Vec<&str> = rest
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(pieces.len(), 3, "default chunk_pieces is 3");
    assert_eq!(pieces.concat(), text);
    let finish: Vec<&Value> = rest
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, vec![&json!("stop")]);
    assert_eq!(rest.last().unwrap()["choices"][0]["delta"], json!({}));
    fx.shutdown().await;
}

#[tokio::test]
async fn stream_tool_calls_arrive_in_pieces_and_reassemble() {
    let a = json!({"command": "ls -la /tmp", "timeout_ms": 5000});
    let b = json!({"path": "notes/ünïcode.txt", "content": "line one\nline two"});
    let step = Step::Reply {
        text: "Let me look.".into(),
        tool_calls: vec![
            ScriptedCall::new("shell", a.clone()),
            ScriptedCall::new("fs_write", b.clone()),
        ],
    };
    let config = FixtureConfig {
        chunk_pieces: 4,
        ..keyed()
    };
    let fx = Fixture::start(config, vec![step]).await.unwrap();
    let resp = openai_post(&fx.base_url(), Some(KEY), &openai_body(GPT, true)).await;
    let events = parse_sse(&resp.text().await.unwrap());
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let deltas: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json()["choices"][0].clone())
        .collect();
    // Reassemble the way a client must: by tool-call index.
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut fragments = [0usize; 2];
    let mut text = String::new();
    for d in &deltas {
        text.push_str(d["delta"]["content"].as_str().unwrap_or(""));
        for tc in d["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let i = tc["index"].as_u64().unwrap() as usize;
            if let Some(id) = tc["id"].as_str() {
                assert_eq!(i, calls.len(), "a new call opens at the next index");
                assert_eq!(tc["type"], "function");
                assert_eq!(tc["function"]["arguments"], "");
                let name = tc["function"]["name"].as_str().unwrap().to_string();
                calls.push((id.to_string(), name, String::new()));
            } else {
                let keys: Vec<&String> = tc.as_object().unwrap().keys().collect();
                assert_eq!(
                    keys,
                    ["function", "index"],
                    "later pieces carry only arguments"
                );
                assert!(tc["function"].get("name").is_none());
                calls[i]
                    .2
                    .push_str(tc["function"]["arguments"].as_str().unwrap());
                fragments[i] += 1;
            }
        }
    }
    assert_eq!(text, "Let me look.");
    assert_eq!(calls.len(), 2);
    assert!(
        fragments.iter().all(|&n| n >= 2),
        "fragments: {fragments:?}"
    );
    assert!(calls[0].0.starts_with("call_") && calls[0].0 != calls[1].0);
    assert_eq!(calls[0].1, "shell");
    assert_eq!(calls[1].1, "fs_write");
    assert_eq!(serde_json::from_str::<Value>(&calls[0].2).unwrap(), a);
    assert_eq!(serde_json::from_str::<Value>(&calls[1].2).unwrap(), b);
    assert_eq!(deltas.last().unwrap()["finish_reason"], "tool_calls");
    fx.shutdown().await;
}

#[tokio::test]
async fn streamed_pieces_reach_the_client_as_separate_chunks() {
    let config = FixtureConfig {
        piece_delay: Duration::from_millis(30),
        ..keyed()
    };
    let fx = Fixture::start(config, vec![Step::text("abcdefghi")])
        .await
        .unwrap();
    let mut resp = openai_post(&fx.base_url(), Some(KEY), &openai_body(GPT, true)).await;
    let mut reads = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        reads.push(String::from_utf8(chunk.to_vec()).unwrap());
    }
    // role, three pieces, finish, [DONE]: six events, none merged into another's read.
    assert_eq!(parse_sse(&reads.concat()).len(), 6);
    assert!(reads.len() >= 6, "reads: {reads:?}");
    fx.shutdown().await;
}

#[tokio::test]
async fn requests_are_recorded_in_order_with_headers_and_body() {
    let fx = Fixture::start(keyed(), vec![Step::text("a"), Step::text("b")])
        .await
        .unwrap();
    let base = fx.base_url();
    let first = json!({"model": GPT, "messages": [{"role": "user", "content": "one"}]});
    openai_post(&base, Some(KEY), &first).await;
    openai_post(&base, Some("wrong"), &openai_body(GPT, true)).await;
    let got = fx.requests();
    assert_eq!(got.len(), 2, "rejected requests are recorded too");
    assert_eq!(got[0].api, Api::OpenAi);
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/v1/chat/completions");
    assert_eq!(got[0].body, first);
    assert_eq!(
        got[0].header("Authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(got[1].header("authorization"), Some("Bearer wrong"));
    assert_eq!(got[1].body["stream"], true);
    fx.clear_requests();
    assert!(fx.requests().is_empty());
    fx.shutdown().await;
}

#[tokio::test]
async fn wrong_or_missing_key_is_401_and_does_not_consume_the_script() {
    let fx = Fixture::start(keyed(), vec![Step::text("kept")])
        .await
        .unwrap();
    let base = fx.base_url();
    let resp = openai_post(&base, Some("sk-wrong-key-999999"), &openai_body(GPT, false)).await;
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert_eq!(v["error"]["param"], Value::Null);
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("Incorrect API key provided: sk-"), "{msg}");
    assert!(!msg.contains("sk-wrong-key-999999"), "the key is masked");

    let resp = openai_post(&base, None, &openai_body(GPT, false)).await;
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("You didn't provide an API key"));

    assert_eq!(fx.remaining(), 1);
    let v: Value = openai_post(&base, Some(KEY), &openai_body(GPT, false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "kept");
    fx.shutdown().await;
}

#[tokio::test]
async fn unknown_model_is_404_model_not_found() {
    let fx = Fixture::start(keyed(), vec![]).await.unwrap();
    let resp = openai_post(
        &fx.base_url(),
        Some(KEY),
        &openai_body("gpt-9-ultra", false),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v,
        json!({"error": {
            "message": "The model `gpt-9-ultra` does not exist or you do not have access to it.",
            "type": "invalid_request_error", "param": null, "code": "model_not_found"}})
    );
    fx.shutdown().await;
}

#[tokio::test]
async fn bad_bodies_are_400_like_the_service() {
    let fx = Fixture::start(keyed(), vec![]).await.unwrap();
    let resp = client()
        .post(format!("{}/v1/chat/completions", fx.base_url()))
        .bearer_auth(KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("We could not parse the JSON body"));
    let resp = openai_post(&fx.base_url(), Some(KEY), &json!({"model": GPT})).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "messages");
    fx.shutdown().await;
}

#[tokio::test]
async fn rate_limit_is_429_with_retry_after() {
    let fx = Fixture::start(keyed(), vec![Step::rate_limited(7), Step::text("after")])
        .await
        .unwrap();
    let resp = openai_post(&fx.base_url(), Some(KEY), &openai_body(GPT, true)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), "7");
    assert_eq!(header(&resp, "content-type"), "application/json");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert!(v["error"]["message"].as_str().unwrap().contains(GPT));
    let v: Value = openai_post(&fx.base_url(), Some(KEY), &openai_body(GPT, false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "after");
    fx.shutdown().await;
}

#[tokio::test]
async fn scripted_error_body_is_sent_verbatim() {
    let body =
        json!({"error": {"message": "boom", "type": "server_error", "param": null, "code": null}});
    let step = Step::Error {
        status: 503,
        body: body.clone(),
        headers: vec![("x-custom".into(), "1".into())],
    };
    let fx = Fixture::start(keyed(), vec![step]).await.unwrap();
    let resp = openai_post(&fx.base_url(), Some(KEY), &openai_body(GPT, false)).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(header(&resp, "x-custom"), "1");
    assert_eq!(resp.json::<Value>().await.unwrap(), body);
    fx.shutdown().await;
}

#[tokio::test]
async fn malformed_body_is_sent_raw_with_200() {
    let fx = Fixture::start(
        keyed(),
        vec![
            Step::Malformed("{\"choices\": [".into()),
            Step::Malformed("data: {oops\n\n".into()),
        ],
    )
    .await
    .unwrap();
    let resp = openai_post(&fx.base_url(), Some(KEY), &openai_body(GPT, false)).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert_eq!(text, "{\"choices\": [");
    assert!(serde_json::from_str::<Value>(&text).is_err());
    let resp = openai_post(&fx.base_url(), Some(KEY), &openai_body(GPT, true)).await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "content-type").starts_with("text/event-stream"));
    assert_eq!(resp.text().await.unwrap(), "data: {oops\n\n");
    fx.shutdown().await;
}

#[tokio::test]
async fn unknown_path_gets_invalid_url() {
    let fx = Fixture::start(keyed(), vec![]).await.unwrap();
    let resp = client()
        .post(format!("{}/v1/completions/nope", fx.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "Invalid URL (POST /v1/completions/nope)"
    );
    assert_eq!(fx.requests()[0].api, Api::Unknown);
    fx.shutdown().await;
}

#[tokio::test]
async fn bytes_keep_the_services_key_order() {
    let fx = Fixture::start(
        keyed(),
        vec![
            Step::text("hi"),
            Step::tool_call("shell", json!({"command": "ls"})),
        ],
    )
    .await
    .unwrap();
    let base = fx.base_url();
    let whole = openai_post(&base, Some(KEY), &openai_body(GPT, false))
        .await
        .text()
        .await
        .unwrap();
    assert!(whole.starts_with(r#"{"id":"chatcmpl-"#), "{whole}");
    assert!(whole.contains(
        r#""choices":[{"index":0,"message":{"role":"assistant","content":"hi","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":"#
    ), "{whole}");
    let stream = openai_post(&base, Some(KEY), &openai_body(GPT, true))
        .await
        .text()
        .await
        .unwrap();
    let first = stream.lines().next().unwrap();
    assert!(first.starts_with(r#"data: {"id":"chatcmpl-"#), "{first}");
    assert!(first.contains(r#","object":"chat.completion.chunk","created":"#));
    assert!(first.ends_with(
        r#""choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}"#
    ), "{first}");
    assert!(stream.contains(r#""delta":{"tool_calls":[{"index":0,"id":"call_"#));
    assert!(stream.contains(r#""type":"function","function":{"name":"shell","arguments":""}}]}"#));
    let denied = openai_post(&base, None, &openai_body(GPT, false))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        denied.starts_with(r#"{"error":{"message":"You didn't"#),
        "{denied}"
    );
    assert!(denied.ends_with(r#","type":"invalid_request_error","param":null,"code":null}}"#));
    fx.shutdown().await;
}
