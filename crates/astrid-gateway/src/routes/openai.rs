//! The OpenAI-compatible endpoint: `POST /v1/chat/completions` (streaming or not) and
//! `GET /v1/models`. Any OpenAI client drives an Astrid agent turn for the token's principal;
//! the tools are Astrid's, run in its sandbox under the principal's grants. Tool activity is
//! reported as SSE comment lines (`: astrid {...}`), which every SSE parser skips, and as an
//! `astrid` member of the non-streamed completion, which clients ignore.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use astrid_client::Client;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::agent::{self, Thread, TurnItem, TurnReply, TurnRun};
use crate::app::{Authed, Body, Shared};
use crate::error::{ApiError, Problem};
use crate::sse::{self, Closed, SseSender};

/// Names the thread to continue (id or name); without it every request starts a new one.
pub const THREAD_HEADER: &str = "x-astrid-thread";
const KEEPALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatRequest {
    /// Accepted for compatibility; the principal's configured model answers (see `model` in
    /// the response).
    #[serde(default)]
    pub model: Option<String>,
    #[schema(min_items = 1)]
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` (`tool` messages are the client's own tools
    /// and are skipped: Astrid's agent runs its own).
    #[schema(pattern = "^(system|developer|user|assistant|tool)$")]
    pub role: String,
    /// A string, or an array of `{"type": "text", "text": …}` parts.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub content: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<ModelEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelEntry {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub owned_by: String,
}

/// The provider's live models for the token's principal.
#[utoipa::path(get, path = "/v1/models", tag = "openai", security(("device_token" = [])),
    responses((status = 200, body = ModelList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 502, body = Problem, content_type = "application/problem+json")))]
pub async fn models(auth: Authed) -> Result<Json<ModelList>, ApiError> {
    let current = agent::current(&auth.client).await?;
    let ids = agent::models(&auth.client, &current.provider).await?;
    let data = ids
        .into_iter()
        .map(|id| ModelEntry {
            id,
            object: "model".into(),
            created: 0,
            owned_by: current.provider.clone(),
        })
        .collect();
    Ok(Json(ModelList {
        object: "list".into(),
        data,
    }))
}

/// What the request asks the agent: the input text and the history a new thread starts with.
#[derive(Debug, PartialEq)]
struct Prompt {
    input: String,
    history: Vec<Value>,
}

fn text_of(content: &Value) -> Result<String, ApiError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut out = Vec::new();
            for p in parts {
                match (p["type"].as_str(), p["text"].as_str()) {
                    (Some("text"), Some(t)) => out.push(t),
                    _ => {
                        return Err(ApiError::bad_request(
                            "only text content parts are supported (`{\"type\": \"text\", \"text\": …}`)",
                        ))
                    }
                }
            }
            Ok(out.join("\n"))
        }
        _ => Err(ApiError::bad_request(
            "a message's `content` must be a string or an array of text parts",
        )),
    }
}

fn prompt(messages: &[ChatMessage]) -> Result<Prompt, ApiError> {
    let (last, earlier) = messages
        .split_last()
        .ok_or_else(|| ApiError::bad_request("`messages` is empty"))?;
    if last.role != "user" {
        return Err(ApiError::bad_request(format!(
            "the last message must be the user's (it is `{}`)",
            last.role
        )));
    }
    let mut system = Vec::new();
    let mut history = Vec::new();
    for m in earlier {
        match m.role.as_str() {
            "system" | "developer" => system.push(text_of(&m.content)?),
            "user" | "assistant" => {
                history.push(json!({"role": m.role, "content": text_of(&m.content)?}))
            }
            "tool" | "function" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown message role `{other}`"
                )))
            }
        }
    }
    let user = text_of(&last.content)?;
    if user.trim().is_empty() {
        return Err(ApiError::bad_request("the user message is empty"));
    }
    // The agent has its own system prompt; the client's instructions travel with the input.
    let input = if system.is_empty() {
        user
    } else {
        format!("{}\n\n{user}", system.join("\n"))
    };
    Ok(Prompt { input, history })
}

/// The thread this request continues (the header), or a new one seeded with the request's
/// earlier messages.
async fn thread_for(client: &Client, headers: &HeaderMap, p: &Prompt) -> Result<Thread, ApiError> {
    if let Some(h) = headers.get(THREAD_HEADER) {
        let name = h
            .to_str()
            .map_err(|_| ApiError::bad_request("the x-astrid-thread header is not text"))?;
        return agent::open(client, Some(name), false).await;
    }
    let t = agent::open(client, None, true).await?;
    if !p.history.is_empty() {
        agent::append(client, &t.id, &p.history).await?;
    }
    Ok(t)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn finish_reason(stop: &str) -> &'static str {
    match stop {
        "max_steps" => "length",
        _ => "stop",
    }
}

fn usage_json(r: &TurnReply) -> Value {
    let (i, o) = (r.usage.input_tokens, r.usage.output_tokens);
    json!({"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o})
}

/// Runs an Astrid agent turn and answers in the OpenAI chat-completion format.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai", security(("device_token" = [])),
    request_body = ChatRequest,
    params(("x-astrid-thread" = Option<String>, Header, description = "continue this thread (id or name)")),
    responses(
        (status = 200, description = "a `chat.completion`, or with `stream: true` an event stream of `chat.completion.chunk`s", body = Object),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
        (status = 502, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn chat(
    State(st): State<Shared>,
    auth: Authed,
    headers: HeaderMap,
    Body(req): Body<ChatRequest>,
) -> Result<Response, ApiError> {
    let p = prompt(&req.messages)?;
    let client = auth.client;
    let model = match agent::current(&client).await {
        Ok(c) => c.model.unwrap_or(c.provider),
        Err(_) => req.model.clone().unwrap_or_else(|| "astrid".into()),
    };
    let thread = thread_for(&client, &headers, &p).await?;
    let id = format!("chatcmpl-{}-{}", thread.id, now_secs());
    let run = TurnRun::start(&client, &thread.id, &p.input, st.config.turn_timeout).await?;
    let thread_header = HeaderValue::from_str(&thread.id).ok();
    let mut resp = if req.stream {
        let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
        let (tx, resp) = sse::channel(st.config.stream_queue);
        let meta = Meta {
            id,
            model,
            created: now_secs(),
        };
        tokio::spawn(stream_turn(
            st,
            auth.key,
            client,
            thread,
            run,
            tx,
            meta,
            include_usage,
        ));
        resp
    } else {
        complete(client, thread, run, id, model)
            .await?
            .into_response()
    };
    if let Some(v) = thread_header {
        resp.headers_mut().insert(THREAD_HEADER, v);
    }
    Ok(resp)
}

async fn complete(
    client: Client,
    thread: Thread,
    mut run: TurnRun,
    id: String,
    model: String,
) -> Result<Json<Value>, ApiError> {
    // Dropped (the client hung up or the deadline passed) before the end: stop the turn.
    let mut guard = CancelOnDrop(Some((client, thread.id.clone())));
    let mut tools = Vec::new();
    let reply = loop {
        match run.next().await {
            Some(TurnItem::Event(ev))
                if ev["kind"] == "tool_call" || ev["kind"] == "tool_result" =>
            {
                tools.push(ev)
            }
            Some(TurnItem::Event(_)) => {}
            Some(TurnItem::Done(r)) => break r?,
            None => return Err(ApiError::upstream("the turn ended without a reply")),
        }
    };
    guard.0 = None;
    Ok(Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": now_secs(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply.answer},
            "finish_reason": finish_reason(&reply.stop),
        }],
        "usage": usage_json(&reply),
        "astrid": {"thread": {"id": thread.id, "name": thread.name}, "steps": reply.steps,
                   "stop": reply.stop, "tool_events": tools},
    })))
}

/// Publishes the turn's cancel when dropped while still armed.
struct CancelOnDrop(Option<(Client, String)>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some((client, session)) = self.0.take() {
            tokio::spawn(async move {
                let _ = agent::cancel(&client, &session).await;
            });
        }
    }
}

struct Meta {
    id: String,
    model: String,
    created: u64,
}

impl Meta {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> String {
        json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
        .to_string()
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename them"
)]
async fn stream_turn(
    st: Shared,
    key: [u8; 32],
    client: Client,
    thread: Thread,
    mut run: TurnRun,
    tx: SseSender,
    meta: Meta,
    include_usage: bool,
) {
    let _open = st.metrics.stream();
    let mut guard = CancelOnDrop(Some((client, thread.id.clone())));
    let mut stopping = st.stopping.clone();
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    let mut step_text = String::new();
    let sent = (|| {
        tx.event(
            None,
            &meta.chunk(json!({"role": "assistant", "content": ""}), None),
        )?;
        tx.comment(&format!(
            "astrid {}",
            json!({"kind": "thread", "id": thread.id, "name": thread.name})
        ))
    })();
    if sent.is_err() {
        return;
    }
    let outcome: Result<(), Closed> = loop {
        let item = tokio::select! {
            biased;
            _ = stopping.changed() => {
                let e = ApiError::shutting_down();
                let _ = tx.event(None, &json!({"error": {"message": e.detail(), "type": "unavailable"}}).to_string());
                break Ok(());
            }
            _ = keepalive.tick() => match tx.comment("keep-alive") {
                Ok(()) => continue,
                Err(c) => break Err(c),
            },
            item = run.next() => item,
        };
        let r = match item {
            Some(TurnItem::Event(ev)) => match ev["kind"].as_str() {
                Some("delta") => {
                    let text = ev["text"].as_str().unwrap_or_default();
                    step_text.push_str(text);
                    tx.event(None, &meta.chunk(json!({"content": text}), None))
                }
                Some("step") => {
                    step_text.clear();
                    tx.comment(&format!("astrid {ev}"))
                }
                _ => tx.comment(&format!("astrid {ev}")),
            },
            Some(TurnItem::Done(Ok(reply))) => {
                guard.0 = None;
                // Before the finish chunk: a client that lists next sees the new thread.
                st.lists.forget(key);
                break finish(&tx, &meta, &reply, &step_text, include_usage);
            }
            Some(TurnItem::Done(Err(e))) => {
                guard.0 = None;
                let body = json!({"error": {"message": e.detail(), "type": e.problem().kind,
                                  "code": e.status().as_u16()}});
                break tx.event(None, &body.to_string());
            }
            None => break Ok(()),
        };
        if let Err(c) = r {
            break Err(c);
        }
    };
    if outcome == Err(Closed::Slow) {
        st.metrics
            .slow_readers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn finish(
    tx: &SseSender,
    meta: &Meta,
    reply: &TurnReply,
    streamed: &str,
    include_usage: bool,
) -> Result<(), Closed> {
    // Whatever of the final answer did not arrive as deltas (a provider that does not stream).
    if let Some(rest) = reply
        .answer
        .strip_prefix(streamed)
        .filter(|r| !r.is_empty())
    {
        tx.event(None, &meta.chunk(json!({"content": rest}), None))?;
    }
    tx.event(
        None,
        &meta.chunk(json!({}), Some(finish_reason(&reply.stop))),
    )?;
    if include_usage {
        let mut u: Value = serde_json::from_str(&meta.chunk(json!({}), None)).unwrap_or_default();
        u["choices"] = json!([]);
        u["usage"] = usage_json(reply);
        tx.event(None, &u.to_string())?;
    }
    tx.event(None, "[DONE]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: Value) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content,
        }
    }

    #[test]
    fn the_last_user_message_is_the_input_and_earlier_turns_the_history() {
        let p = prompt(&[
            msg("system", json!("Be brief.")),
            msg("user", json!("hi")),
            msg("assistant", json!("hello")),
            msg("tool", json!("ignored")),
            msg("user", json!([{"type": "text", "text": "what is 2+2?"}])),
        ])
        .unwrap();
        assert_eq!(p.input, "Be brief.\n\nwhat is 2+2?");
        assert_eq!(
            p.history,
            vec![
                json!({"role": "user", "content": "hi"}),
                json!({"role": "assistant", "content": "hello"})
            ]
        );
    }

    #[test]
    fn requests_the_agent_cannot_answer_are_refused_in_words() {
        for (messages, says) in [
            (vec![], "`messages` is empty"),
            (vec![msg("assistant", json!("x"))], "must be the user's"),
            (vec![msg("user", json!("  "))], "empty"),
            (
                vec![msg("user", json!([{"type": "image_url", "image_url": {}}]))],
                "only text",
            ),
            (
                vec![msg("wizard", json!("x")), msg("user", json!("y"))],
                "unknown message role",
            ),
        ] {
            let e = prompt(&messages).unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
            assert!(e.detail().contains(says), "{}", e.detail());
        }
    }
}
