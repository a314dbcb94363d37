//! The live feed: every thread's agent events for the token's principal, as server-sent
//! events, so a second tab sees a turn that the CLI started. The subscription is made on a
//! connection that is the principal's own, and the kernel delivers only that principal's
//! events to it. The connection is registered as an approver and answerer: approval requests
//! appear as `approval` events, capsules' questions (`astrid:elicit`) as `question` events,
//! and capsules' `astrid:uplink` notices to the principal as `notice` events
//! (`{"capsule", "level", "text"}`, the capsule stamped by the kernel). Ends with an `error`
//! event when the device is revoked or the daemon goes away.

use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use crate::app::{Shared, Token};
use crate::approvals::ask_json;
use crate::error::{ApiError, Problem};
use crate::questions::ask_json as question_json;
use crate::routes::turns::ended;
use crate::sse::{self, Closed};

const KEEPALIVE: Duration = Duration::from_secs(15);
const TOPIC_PREFIX: &str = "agent.v1.event.";

/// The principal's live feed (`agent`, `approval`, `question` and `notice` events).
#[utoipa::path(get, path = "/v1/events", tag = "threads", security(("device_token" = [])),
    responses((status = 200, description = "an event stream: `agent` {thread, event}, `approval`, `question`, `notice` {capsule, level, text}, `error`", content_type = "text/event-stream", body = crate::sse::SseEvent),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn live(State(st): State<Shared>, Token(dev): Token) -> Result<Response, ApiError> {
    let client = st.upstream.connect(&dev).await?;
    let mut events = client
        .subscribe(&format!("{TOPIC_PREFIX}*"))
        .await
        .map_err(ApiError::from_client)?;
    let mut notices = client
        .subscribe(astrid_types::uplink::NOTICE_TOPIC)
        .await
        .map_err(ApiError::from_client)?;
    let mut approvals = client
        .register_approver()
        .await
        .map_err(ApiError::from_client)?;
    let mut questions = client
        .register_elicitor(true)
        .await
        .map_err(ApiError::from_client)?;
    let (tx, resp) = sse::channel(st.config.stream_queue);
    tokio::spawn(async move {
        let _open = st.metrics.stream();
        let _client = client;
        let mut stopping = st.stopping.clone();
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;
        let mut approvals_open = true;
        let mut questions_open = true;
        let mut r = tx.comment("astrid live feed");
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
                // Only the kernel publishes notices; a payload that is not one is dropped.
                Some(n) = notices.next() => match serde_json::from_slice::<astrid_types::uplink::Notice>(&n.payload) {
                    Ok(notice) => tx.event(Some("notice"), &json!(notice).to_string()),
                    Err(_) => Ok(()),
                },
                ev = events.next() => match ev {
                    Some(ev) => {
                        let thread = ev.topic.strip_prefix(TOPIC_PREFIX).unwrap_or_default();
                        let event: serde_json::Value = serde_json::from_slice(&ev.payload)
                            .unwrap_or(serde_json::Value::Null);
                        tx.event(Some("agent"), &json!({"thread": thread, "event": event}).to_string())
                    }
                    None => {
                        let gone = ApiError::from_client(astrid_client::ClientError::Disconnected);
                        let e = ended(&st, &dev, gone).await;
                        let _ = tx.event(Some("error"), &json!(e.problem()).to_string());
                        break;
                    }
                },
            };
        }
        if r == Err(Closed::Slow) {
            st.metrics
                .slow_readers
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    Ok(resp)
}
