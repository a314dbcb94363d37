//! The HTTP gateway (crates/astrid-gateway) in front of a real daemon, the real agent fleet
//! and the model fixture: its operational routes, its errors, rate limits and the daemon
//! going away; the OpenAI-compatible endpoint completing tool-using turns, streamed and not,
//! through reqwest, the official `openai` Python package and curl.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

mod common;
mod gateway_rig;

use std::process::Command;
use std::time::Duration;

use astrid_audit::Decision;
use astrid_llm_fixture::Step;
use common::agent::{openai_calls, openai_tool_result};
use gateway_rig::{problem, GwRig, Sse, SseReader};
use serde_json::{json, Value};

const NOTES: &str = "Buy oat milk.\nCall the plumber on Tuesday.\n";
const ANSWER: &str = "Your notes say to buy oat milk and to call the plumber on Tuesday.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_routes_and_refusals_are_problem_documents() {
    let gw = GwRig::start_with(vec![], |c| c.max_body_bytes = 1024).await;
    let (_, token) = gw.device("default").await;
    let http = &gw.http;

    let ok: Value = http
        .get(gw.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["status"], "ok");
    let ready = http.get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    // The console: static files under a CSP that allows only this origin's own script.
    let page = http.get(gw.url("/")).send().await.unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("<script src=\"/console.js\""));
    let js = http.get(gw.url("/console.js")).send().await.unwrap();
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(js.text().await.unwrap().contains("/v1/approvals/"));

    let doc: Value = http
        .get(gw.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["paths"]["/v1/chat/completions"]["post"].is_object());

    // No token, not a device token, a forged device token: 401, and the forgery is the
    // kernel's refusal, recorded in the chain of the principal it names.
    let none = http.get(gw.url("/v1/threads")).send().await.unwrap();
    assert_eq!(
        none.headers()["www-authenticate"],
        "Bearer realm=\"astrid\""
    );
    assert!(problem(none, 401).await.contains("Authorization: Bearer"));
    let junk = gw
        .get("/v1/threads", "sk-not-a-device")
        .send()
        .await
        .unwrap();
    assert!(problem(junk, 401).await.contains("not a device token"));
    let secret = token.rsplit('.').next().unwrap();
    let forged = token.replace(secret, &"0".repeat(64));
    let refused = gw.get("/v1/threads", &forged).send().await.unwrap();
    let detail = problem(refused, 401).await;
    assert!(detail.contains("wrong secret"), "{detail}");
    assert!(gw.rig.audit().iter().any(|e| e.action == "auth.refuse"
        && e.decision == Decision::Denied
        && e.outcome.contains("wrong secret")));

    // The real token works.
    let list: Value = gw
        .get("/v1/threads", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["threads"], json!([]));

    // Bad bodies: too large, not JSON, the wrong shape, the wrong type.
    let big = json!({"input": "x".repeat(2048)});
    let too_large = gw
        .post("/v1/threads/x/turns", &token, &big)
        .send()
        .await
        .unwrap();
    assert!(problem(too_large, 413).await.contains("1024 bytes"));
    let not_json = http
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(not_json, 400).await;
    let shape = gw
        .post("/v1/chat/completions", &token, &json!({"messages": 3}))
        .send()
        .await
        .unwrap();
    assert!(problem(shape, 422).await.contains("messages"));
    let text = http
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .body("hello")
        .send()
        .await
        .unwrap();
    problem(text, 415).await;
    let empty = gw
        .post("/v1/chat/completions", &token, &json!({"messages": []}))
        .send()
        .await
        .unwrap();
    assert!(problem(empty, 400).await.contains("empty"));
    let nowhere = gw.get("/v2/nothing", &token).send().await.unwrap();
    problem(nowhere, 404).await;
    let unknown = gw
        .get("/v1/threads/0123456789abcdef", &token)
        .send()
        .await
        .unwrap();
    assert!(problem(unknown, 404).await.contains("no session"));
    let wrong_method = http.delete(gw.url("/healthz")).send().await.unwrap();
    problem(wrong_method, 405).await;

    let metrics = http
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "astrid_gateway_requests_total{route=\"/v1/threads\",method=\"GET\",status=\"401\"} 3"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("astrid_gateway_upstream_connects_refused 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("astrid_gateway_request_duration_seconds_bucket{route=\"/v1/threads\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_over_its_rate_gets_429_with_retry_after() {
    let gw = GwRig::start_with(vec![], |c| {
        c.rate = astrid_gateway::RateLimit {
            per_second: 0.01,
            burst: 2,
        }
    })
    .await;
    let (_, token) = gw.device("default").await;
    let (_, other) = gw.device("default").await;
    for _ in 0..2 {
        let r = gw.get("/v1/threads", &token).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let limited = gw.get("/v1/threads", &token).send().await.unwrap();
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=100).contains(&wait), "{wait}");
    assert!(problem(limited, 429).await.contains("retry after"));
    // Another token has its own budget.
    let r = gw.get("/v1/threads", &other).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_going_away_is_503_with_a_reason() {
    let mut gw = GwRig::start(vec![]).await;
    let (_, token) = gw.device("default").await;
    let r = gw.get("/v1/threads", &token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    gw.rig.daemon.kill();
    let ready = gw.http.get(gw.url("/readyz")).send().await.unwrap();
    assert!(problem(ready, 503).await.contains("not running"));
    let r = gw.get("/v1/threads", &token).send().await.unwrap();
    assert!(problem(r, 503).await.contains("daemon"));
    gw.shutdown().await;
}

/// A tool-using turn: the model reads the notes file (by absolute path: a gateway thread has
/// no workspace), then answers.
fn read_notes_script(rig: &GwRig, turns: usize) -> Vec<Step> {
    let path = rig.rig.workspace.join("notes.txt");
    let mut s = Vec::new();
    for _ in 0..turns {
        s.push(Step::tool_call("fs_read", json!({"path": path})));
        s.push(Step::text(ANSWER));
    }
    s
}

async fn notes_rig(turns: usize) -> (GwRig, String) {
    // The script names the workspace, which exists only once the rig does: start with an
    // empty script, then queue the steps.
    let gw = GwRig::start(vec![]).await;
    for step in read_notes_script(&gw, turns) {
        gw.rig.fixture.push(step);
    }
    std::fs::write(gw.rig.workspace.join("notes.txt"), NOTES).unwrap();
    let (_, token) = gw.device("default").await;
    (gw, token)
}

fn assert_model_saw_the_notes(gw: &GwRig) {
    let reqs = gw.rig.model_requests();
    let second = reqs.last().expect("the model was asked");
    let calls = openai_calls(second);
    let told = openai_tool_result(second, &calls.last().unwrap().0);
    assert!(
        told.contains(NOTES),
        "the model was not shown the file: {told}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completions_runs_a_tool_using_turn_streamed_and_not() {
    let (gw, token) = notes_rig(2).await;
    let ask = json!({"model": "gpt-4o-mini",
                     "messages": [{"role": "user", "content": "What do my notes say?"}]});

    let r = gw
        .post("/v1/chat/completions", &token, &ask)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let thread = r.headers()["x-astrid-thread"].to_str().unwrap().to_string();
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["object"], "chat.completion");
    assert_eq!(c["choices"][0]["message"]["content"], ANSWER, "{c}");
    assert_eq!(c["choices"][0]["finish_reason"], "stop");
    assert_eq!(c["model"], "gpt-4o-mini");
    assert_eq!(c["astrid"]["thread"]["id"], thread.as_str());
    let tools = c["astrid"]["tool_events"].as_array().unwrap();
    assert_eq!(tools[0]["kind"], "tool_call");
    assert_eq!(tools[0]["name"], "fs_read");
    assert_eq!(tools[1]["kind"], "tool_result");
    assert_eq!(tools[1]["ok"], true, "{c}");
    assert_model_saw_the_notes(&gw);

    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let r = gw
        .post("/v1/chat/completions", &token, &streamed)
        .send()
        .await
        .unwrap();
    let frames = SseReader::new(r).all().await;
    let mut text = String::new();
    let mut finish = None;
    let mut usage = false;
    for f in &frames {
        if let Sse::Event { data, .. } = f {
            if data == "[DONE]" {
                continue;
            }
            let chunk: Value = serde_json::from_str(data).unwrap();
            assert_eq!(chunk["object"], "chat.completion.chunk", "{chunk}");
            usage |= chunk["usage"].is_object();
            if let Some(choice) = chunk["choices"].get(0) {
                text.push_str(choice["delta"]["content"].as_str().unwrap_or_default());
                if let Some(f) = choice["finish_reason"].as_str() {
                    finish = Some(f.to_string());
                }
            }
        }
    }
    assert_eq!(text, ANSWER);
    assert_eq!(finish.as_deref(), Some("stop"));
    assert!(usage, "include_usage asked for a usage chunk");
    assert_eq!(
        frames.last(),
        Some(&Sse::Event {
            name: None,
            data: "[DONE]".into()
        })
    );
    // Tool activity rides in comment lines, which OpenAI clients skip.
    let comments: Vec<&String> = frames
        .iter()
        .filter_map(|f| match f {
            Sse::Comment(c) => Some(c),
            _ => None,
        })
        .collect();
    assert!(comments
        .iter()
        .any(|c| c.starts_with("astrid {") && c.contains("\"tool_call\"")));
    assert!(comments.iter().any(|c| c.contains("\"tool_result\"")));
    assert_model_saw_the_notes(&gw);

    // Both turns are threads of the principal now.
    let list: Value = gw
        .get("/v1/threads", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["threads"].as_array().unwrap().len(), 2, "{list}");
    let one: Value = gw
        .get(&format!("/v1/threads/{thread}"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let roles: Vec<&str> = one["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"], "{one}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_nobody_can_answer_is_denied_and_the_model_is_told() {
    let gw = GwRig::start(vec![]).await;
    // Outside the workspace: reading it needs a grant the principal lacks, or a person.
    let secret = gw.rig.home.outside().join("outside.txt");
    std::fs::write(&secret, "not for the model").unwrap();
    gw.rig
        .fixture
        .push(Step::tool_call("fs_read", json!({"path": secret})));
    gw.rig
        .fixture
        .push(Step::text("I was not allowed to read it."));
    let (_, token) = gw.device("default").await;
    let ask = json!({"messages": [{"role": "user", "content": "Read the outside file."}]});
    let c: Value = gw
        .post("/v1/chat/completions", &token, &ask)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        c["choices"][0]["message"]["content"],
        "I was not allowed to read it."
    );
    let result = &c["astrid"]["tool_events"][1];
    assert_eq!(result["ok"], false, "{c}");
    let reqs = gw.rig.model_requests();
    let calls = openai_calls(&reqs[1]);
    let told = openai_tool_result(&reqs[1], &calls[0].0);
    assert!(
        told.contains("denied"),
        "the model was not told of the denial: {told}"
    );
    assert!(!told.contains("not for the model"));
    let secret_s = secret.to_str().unwrap();
    assert!(
        gw.rig.audit().iter().any(
            |e| matches!(e.decision, Decision::Denied | Decision::Rejected)
                && e.resource.contains(secret_s)
        ),
        "no denial of {secret_s} in the audit chain"
    );
}

/// The official `openai` Python package (installed by .ci/run), streamed and not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_python_client_completes_tool_using_turns() {
    let (gw, token) = notes_rig(2).await;
    let env = vec![
        ("OPENAI_BASE_URL", gw.url("/v1")),
        ("OPENAI_API_KEY", token),
        ("EXPECT_ANSWER", ANSWER.to_string()),
    ];
    let stdout = gateway_rig::run_python("openai_client.py", vec![], env).await;
    assert_eq!(stdout.trim(), "plain ok\nstream ok", "{stdout}");
    assert_model_saw_the_notes(&gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_completes_tool_using_turns() {
    let (gw, token) = notes_rig(2).await;
    let url = gw.url("/v1/chat/completions");
    let body = json!({"messages": [{"role": "user", "content": "What do my notes say?"}]});
    let run = |body: Value| {
        let (url, token) = (url.clone(), token.clone());
        tokio::task::spawn_blocking(move || {
            Command::new("curl")
                .args(["-sS", "--fail-with-body", "-N", "--max-time", "300"])
                .args(["-H", &format!("Authorization: Bearer {token}")])
                .args(["-H", "Content-Type: application/json"])
                .args(["-d", &body.to_string(), &url])
                .output()
                .expect("running curl")
        })
    };
    let plain = run(body.clone()).await.unwrap();
    assert!(plain.status.success(), "{plain:?}");
    let c: Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert_eq!(c["choices"][0]["message"]["content"], ANSWER);

    let mut streamed = body;
    streamed["stream"] = json!(true);
    let out = run(streamed).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut buf = String::from_utf8(out.stdout).unwrap();
    let frames = gateway_rig::parse_frames(&mut buf);
    let text: String = frames
        .iter()
        .filter_map(|f| match f {
            Sse::Event { data, .. } if data != "[DONE]" => {
                let v: Value = serde_json::from_str(data).unwrap();
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(String::from)
            }
            _ => None,
        })
        .collect();
    assert_eq!(text, ANSWER);
    assert_model_saw_the_notes(&gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams_and_stops() {
    let mut gw = GwRig::start(vec![]).await;
    let (_, token) = gw.device("default").await;
    let feed = gw.get("/v1/events", &token).send().await.unwrap();
    let mut feed = SseReader::new(feed);
    assert_eq!(
        feed.next().await,
        Some(Sse::Comment("astrid live feed".into()))
    );
    let stopping = tokio::time::timeout(Duration::from_secs(60), gw.shutdown());
    let (_, (name, ev)) = tokio::join!(stopping, async { feed.next_event().await.unwrap() });
    assert_eq!(name, "error");
    assert!(
        ev["detail"].as_str().unwrap().contains("shutting down"),
        "{ev}"
    );
    assert!(feed.next().await.is_none());
}
