//! Models listing, script playback (once, looping, pushed, stalled) and the binary.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use astrid_llm_fixture::{Api, Fixture, FixtureConfig, Step, EXHAUSTED_TEXT};
use common::*;
use serde_json::{json, Value};

fn keyed() -> FixtureConfig {
    FixtureConfig {
        api_key: Some(KEY.into()),
        models: vec![GPT.into(), "gpt-4.1".into(), CLAUDE.into()],
        ..FixtureConfig::default()
    }
}

#[tokio::test]
async fn models_list_in_openai_shape() {
    let fx = Fixture::start(keyed(), vec![]).await.unwrap();
    let resp = client()
        .get(format!("{}/v1/models", fx.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "list");
    let data = v["data"].as_array().unwrap();
    let ids: Vec<&str> = data.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [GPT, "gpt-4.1", CLAUDE]);
    for m in data {
        assert_eq!(m["object"], "model");
        assert!(m["created"].is_u64());
        assert!(m["owned_by"].is_string());
    }
    let resp = client()
        .get(format!("{}/v1/models", fx.base_url()))
        .bearer_auth("sk-other-key-123456")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert!(fx.requests().iter().all(|r| r.api == Api::Models));
    fx.shutdown().await;
}

#[tokio::test]
async fn models_list_in_anthropic_shape() {
    let fx = Fixture::start(keyed(), vec![]).await.unwrap();
    let get = |key: &'static str| {
        client()
            .get(format!("{}/v1/models", fx.base_url()))
            .header("anthropic-version", "2023-06-01")
            .header("x-api-key", key)
            .send()
    };
    let resp = get(KEY).await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["has_more"], false);
    assert_eq!(v["first_id"], GPT);
    assert_eq!(v["last_id"], CLAUDE);
    let claude = &v["data"][2];
    assert_eq!(claude["type"], "model");
    assert_eq!(claude["id"], CLAUDE);
    assert_eq!(claude["display_name"], "Claude Sonnet 4.5");
    assert!(claude["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(v.get("object").is_none());
    let resp = get("bad").await.unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "authentication_error");
    fx.shutdown().await;
}

#[tokio::test]
async fn empty_model_list_serves_any_name() {
    let config = FixtureConfig {
        models: Vec::new(),
        ..FixtureConfig::default()
    };
    let fx = Fixture::start(config, vec![Step::text("ok")])
        .await
        .unwrap();
    let v: Value = openai_post(&fx.base_url(), None, &openai_body("local-llama", false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["model"], "local-llama");
    assert_eq!(v["choices"][0]["message"]["content"], "ok");
    let v: Value = client()
        .get(format!("{}/v1/models", fx.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"object": "list", "data": []}));
    fx.shutdown().await;
}

#[tokio::test]
async fn exhausted_script_keeps_answering_for_both_apis() {
    let fx = Fixture::start(FixtureConfig::default(), vec![Step::text("first")])
        .await
        .unwrap();
    let base = fx.base_url();
    let mut answers = Vec::new();
    for _ in 0..3 {
        let v: Value = openai_post(&base, None, &openai_body(GPT, false))
            .await
            .json()
            .await
            .unwrap();
        answers.push(
            v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(answers, ["first", EXHAUSTED_TEXT, EXHAUSTED_TEXT]);
    let v: Value = anthropic_post(&base, None, &anthropic_body(CLAUDE, false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["content"][0]["text"], EXHAUSTED_TEXT);
    fx.push(Step::text("pushed"));
    assert_eq!(fx.remaining(), 1);
    let v: Value = openai_post(&base, None, &openai_body(GPT, false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "pushed");
    fx.shutdown().await;
}

#[tokio::test]
async fn looping_script_alternates_tool_call_and_answer() {
    let steps = vec![
        Step::tool_call("fs_list", json!({"path": "."})),
        Step::text("Here are the files."),
    ];
    let fx = Fixture::start_looping(FixtureConfig::default(), steps)
        .await
        .unwrap();
    let mut reasons = Vec::new();
    for i in 0..6 {
        // Alternate APIs and stream modes: the cycle is shared by every completion request.
        let stop = if i % 2 == 0 {
            let v: Value = openai_post(&fx.base_url(), None, &openai_body(GPT, false))
                .await
                .json()
                .await
                .unwrap();
            v["choices"][0]["finish_reason"]
                .as_str()
                .unwrap()
                .to_string()
        } else {
            let resp = anthropic_post(&fx.base_url(), None, &anthropic_body(CLAUDE, true)).await;
            let events = parse_sse(&resp.text().await.unwrap());
            let delta = events
                .iter()
                .find(|e| e.name.as_deref() == Some("message_delta"))
                .unwrap()
                .json();
            delta["delta"]["stop_reason"].as_str().unwrap().to_string()
        };
        reasons.push(stop);
    }
    assert_eq!(
        reasons,
        [
            "tool_calls",
            "end_turn",
            "tool_calls",
            "end_turn",
            "tool_calls",
            "end_turn"
        ]
    );
    assert_eq!(fx.remaining(), 2);
    fx.shutdown().await;
}

#[tokio::test]
async fn stall_holds_the_request_until_shutdown() {
    let fx = Fixture::start(FixtureConfig::default(), vec![Step::Stall])
        .await
        .unwrap();
    let url = format!("{}/v1/chat/completions", fx.base_url());
    let pending = tokio::spawn(async move {
        let resp = client()
            .post(url)
            .json(&openai_body(GPT, false))
            .send()
            .await?;
        resp.text().await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished(), "a stalled request gets no answer");
    assert_eq!(fx.requests().len(), 1);
    tokio::time::timeout(Duration::from_secs(10), fx.shutdown())
        .await
        .expect("shutdown ends stalled requests");
    let outcome = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("the client is released")
        .unwrap();
    assert!(
        outcome.is_err(),
        "the stalled request never gets a body: {outcome:?}"
    );
}

/// Ends the spawned binary even when an assertion fails first.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_prints_base_url_and_serves_the_script() {
    let dir = std::env::temp_dir().join(format!("astrid-llm-fixture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("script.json");
    std::fs::write(
        &script,
        r#"[{"reply": {"tool_calls": [{"name": "shell", "arguments": {"command": "pwd"}}]}},
            {"reply": {"text": "from the file"}}]"#,
    )
    .unwrap();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_astrid-llm-fixture"))
            .args(["--port", "0", "--api-key", KEY, "--script"])
            .arg(&script)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base:?}");
    let v: Value = openai_post(&base, Some(KEY), &openai_body(GPT, false))
        .await
        .json()
        .await
        .unwrap();
    let call = &v["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "shell");
    assert_eq!(call["arguments"], r#"{"command":"pwd"}"#);
    let v: Value = anthropic_post(&base, Some(KEY), &anthropic_body(CLAUDE, false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["content"][0]["text"], "from the file");
    drop(child);
    std::fs::remove_dir_all(&dir).unwrap();
}
