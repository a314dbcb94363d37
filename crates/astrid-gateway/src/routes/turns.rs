//! A turn on a thread, streamed as server-sent events: `thread`, then the agent's events
//! (`delta`, `tool_call`, `tool_result`, `step`), `approval` requests (answer them with
//! `POST /v1/approvals/{id}`), capsules' `question`s (answer with `POST /v1/questions/{id}`),
//! and finally `done` (the agent's reply) or `error` (a problem document). The turn runs on a
//! daemon connection of its own that is registered as an approver and answerer for the
//! principal and closes with the stream (which passes whatever it was asked and left open).

use std::time::Duration;

use astrid_client::{ApprovalStream, Client, ElicitStream};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::agent::{self, Thread, TurnItem, TurnRun};
use crate::app::{Authed, Body, PathParam, Shared, Token};
use crate::approvals::ask_json;
use crate::error::{ApiError, Problem};
use crate::questions::ask_json as question_json;
use crate::sse::{self, Closed, SseSender};
use crate::upstream::DeviceToken;

const KEEPALIVE: Duration = Duration::from_secs(15);

/// What the turn's connection is asked: approvals and capsules' questions.
struct Asks {
    approvals: ApprovalStream,
    questions: ElicitStream,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewThread {
    /// `[A-Za-z0-9._-]{1,64}`; without it the thread is named after its id.
    #[serde(default)]
    pub name: Option<String>,
}

/// Creates a thread (or returns the existing one of that name).
#[utoipa::path(post, path = "/v1/threads", tag = "threads", security(("device_token" = [])),
    request_body = NewThread,
    responses((status = 201, body = Thread),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    auth: Authed,
    Body(b): Body<NewThread>,
) -> Result<(StatusCode, Json<Thread>), ApiError> {
    let t = agent::open(&auth.client, b.name.as_deref(), true).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TurnInput {
    #[schema(min_length = 1)]
    pub input: String,
}

/// Posts a message to a thread and streams the turn.
#[utoipa::path(post, path = "/v1/threads/{id}/turns", tag = "threads", security(("device_token" = [])),
    params(("id" = String, Path, description = "thread id or name")),
    request_body = TurnInput,
    responses((status = 200, description = "an event stream", content_type = "text/event-stream", body = crate::sse::SseEvent),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn post_turn(
    State(st): State<Shared>,
    Token(dev): Token,
    PathParam(id): PathParam<String>,
    Body(b): Body<TurnInput>,
) -> Result<Response, ApiError> {
    if b.input.trim().is_empty() {
        return Err(ApiError::bad_request("`input` is empty"));
    }
    let client = st.upstream.connect(&dev).await?;
    let thread = agent::open(&client, Some(&id), false).await?;
    let approvals = client
        .register_approver()
        .await
        .map_err(ApiError::from_client)?;
    let questions = client
        .register_elicitor(true)
        .await
        .map_err(ApiError::from_client)?;
    let run = TurnRun::start(&client, &thread.id, &b.input, st.config.turn_timeout).await?;
    let (tx, resp) = sse::channel(st.config.stream_queue);
    let asks = Asks {
        approvals,
        questions,
    };
    tokio::spawn(stream(st, dev, client, thread, run, asks, tx));
    Ok(resp)
}

async fn stream(
    st: Shared,
    dev: DeviceToken,
    client: Client,
    thread: Thread,
    mut run: TurnRun,
    asks: Asks,
    tx: SseSender,
) {
    let Asks {
        mut approvals,
        mut questions,
    } = asks;
    let _open = st.metrics.stream();
    let mut stopping = st.stopping.clone();
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    let mut approvals_open = true;
    let mut questions_open = true;
    let mut finished = false;
    let mut r = tx.event(Some("thread"), &json!(thread).to_string());
    while r.is_ok() {
        r = tokio::select! {
            biased;
            _ = stopping.changed() => {
                let _ = tx.event(Some("error"), &json!(ApiError::shutting_down().problem()).to_string());
                break;
            }
            _ = keepalive.tick() => tx.comment("keep-alive"),
            req = approvals.next(), if approvals_open => match req {
                Some(req) => tx.event(Some("approval"), &ask_json(&req).to_string()),
                None => { approvals_open = false; Ok(()) }
            },
            q = questions.next(), if questions_open => match q {
                Some(q) => tx.event(Some("question"), &question_json(&q).to_string()),
                None => { questions_open = false; Ok(()) }
            },
            item = run.next() => match item {
                Some(TurnItem::Event(ev)) => {
                    let kind = ev["kind"].as_str().unwrap_or("event").to_string();
                    tx.event(Some(&kind), &ev.to_string())
                }
                Some(TurnItem::Done(Ok(reply))) => {
                    finished = true;
                    // Before `done` goes out: a client that lists next sees the turn's thread.
                    st.lists.forget(dev.key());
                    let _ = tx.event(Some("done"), &json!(reply).to_string());
                    break;
                }
                Some(TurnItem::Done(Err(e))) => {
                    finished = true;
                    let e = ended(&st, &dev, e).await;
                    let _ = tx.event(Some("error"), &json!(e.problem()).to_string());
                    break;
                }
                None => break,
            },
        };
    }
    if !finished {
        // The reader left (or was too slow, or we are stopping): the turn is not wanted.
        let _ = agent::cancel(&client, &thread.id).await;
    }
    if r == Err(Closed::Slow) {
        st.metrics
            .slow_readers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Why a stream's connection ended: when the daemon is still there but refuses the token
/// now, the device was revoked or expired, and the reader is told so (401).
pub async fn ended(st: &Shared, dev: &DeviceToken, e: ApiError) -> ApiError {
    if e.status() != StatusCode::SERVICE_UNAVAILABLE {
        return e;
    }
    match st.upstream.connect(dev).await {
        Err(refused) if refused.status() == StatusCode::UNAUTHORIZED => refused,
        _ => e,
    }
}

/// Asks the thread's running turn to stop.
#[utoipa::path(post, path = "/v1/threads/{id}/cancel", tag = "threads", security(("device_token" = [])),
    params(("id" = String, Path, description = "thread id or name")),
    responses((status = 202, description = "the cancel was published"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn cancel(
    auth: Authed,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    let thread = agent::open(&auth.client, Some(&id), false).await?;
    agent::cancel(&auth.client, &thread.id).await?;
    Ok(StatusCode::ACCEPTED)
}
