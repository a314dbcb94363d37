//! The agent protocol (docs/AGENT-PROTOCOL.md) as the gateway speaks it over an
//! [`astrid_client::Client`]: sessions ("threads" over HTTP) and turns. Every call goes out on
//! a connection authenticated as the request's device, so the session capsule answers from
//! that principal's store and nobody else's.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use astrid_client::{Client, ClientError, Subscription};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::error::ApiError;

/// Session bookkeeping is a key-value lookup in the principal's store.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(30);

/// Selecting a model asks the provider for its live list first (the registry waits 30 s).
pub const MODELS_TIMEOUT: Duration = Duration::from_secs(35);

/// A thread: one of the principal's agent sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Thread {
    /// 16 lowercase hex characters.
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub workspace: Option<String>,
    #[serde(default)]
    pub created_ms: u64,
    #[serde(default)]
    pub updated_ms: u64,
    /// Messages in the thread's history.
    #[serde(default)]
    pub messages: u64,
}

/// Token counts the provider reported for a turn.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ThreadRef {
    pub id: String,
    pub name: String,
}

/// A tool the turn called and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ToolOutcome {
    pub name: String,
    pub ok: bool,
}

/// The agent's reply to `agent.v1.turn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TurnReply {
    pub session: ThreadRef,
    #[serde(default)]
    pub answer: String,
    #[serde(default)]
    pub steps: u64,
    /// `end`, `max_steps` or `cancelled`.
    #[serde(default)]
    pub stop: String,
    #[serde(default)]
    pub usage: Usage,
    #[serde(default)]
    pub tool_calls: Vec<ToolOutcome>,
}

/// One request on the principal's connection, its JSON reply decoded.
pub async fn ask<T: serde::de::DeserializeOwned>(
    client: &Client,
    topic: &str,
    body: Value,
    timeout: Duration,
) -> Result<T, ApiError> {
    let bytes = client
        .request(topic, body.to_string(), timeout)
        .await
        .map_err(ApiError::from_client)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::upstream(format!(
            "`{topic}` answered with something unexpected ({e}): {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ))
    })
}

/// `session.v1.open`: `session` is an id or a name; `None` with `create` makes a new one.
pub async fn open(
    client: &Client,
    session: Option<&str>,
    create: bool,
) -> Result<Thread, ApiError> {
    let body = json!({"session": session, "workspace": null, "create": create});
    ask(client, "session.v1.open", body, SESSION_TIMEOUT).await
}

/// Every thread of the principal, newest first.
pub async fn list(client: &Client) -> Result<Vec<Thread>, ApiError> {
    #[derive(Deserialize)]
    struct List {
        sessions: Vec<Thread>,
    }
    let l: List = ask(client, "session.v1.list", json!({}), SESSION_TIMEOUT).await?;
    Ok(l.sessions)
}

/// The normalised messages of a thread (docs/AGENT-PROTOCOL.md, "Messages").
pub async fn history(client: &Client, id: &str) -> Result<Vec<Value>, ApiError> {
    #[derive(Deserialize)]
    struct History {
        messages: Vec<Value>,
    }
    let h: History = ask(
        client,
        "session.v1.history",
        json!({"id": id}),
        SESSION_TIMEOUT,
    )
    .await?;
    Ok(h.messages)
}

/// Adds messages to a thread's history (an OpenAI client's earlier turns).
pub async fn append(client: &Client, id: &str, messages: &[Value]) -> Result<(), ApiError> {
    let _: Value = ask(
        client,
        "session.v1.append",
        json!({"id": id, "messages": messages}),
        SESSION_TIMEOUT,
    )
    .await?;
    Ok(())
}

/// Asks the running turn of `session_id` to stop (the agent checks between steps).
pub async fn cancel(client: &Client, session_id: &str) -> Result<(), ApiError> {
    client
        .publish(&format!("agent.v1.cancel.{session_id}"), Vec::new())
        .await
        .map_err(ApiError::from_client)
}

/// What a running turn produces, in order: events, then exactly one `Done`.
#[derive(Debug)]
pub enum TurnItem {
    /// An event of `agent.v1.event.<session>`: `delta`, `tool_call`, `tool_result`, `step`.
    Event(Value),
    Done(Result<TurnReply, ApiError>),
}

type ReplyFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, ClientError>> + Send>>;

/// One `agent.v1.turn` in flight with its event subscription.
pub struct TurnRun {
    events: Subscription,
    events_open: bool,
    reply: Option<ReplyFuture>,
    done: Option<Result<TurnReply, ApiError>>,
    finished: bool,
}

impl TurnRun {
    /// Subscribes to the session's events, then sends the turn: the daemon handles a
    /// connection's frames in order, so no event of this turn is missed.
    pub async fn start(
        client: &Client,
        session_id: &str,
        input: &str,
        timeout: Duration,
    ) -> Result<TurnRun, ApiError> {
        let events = client
            .subscribe(&format!("agent.v1.event.{session_id}"))
            .await
            .map_err(ApiError::from_client)?;
        let body = json!({"session": session_id, "input": input, "workspace": null});
        let pending = client
            .send_request("agent.v1.turn", body.to_string(), timeout)
            .await
            .map_err(ApiError::from_client)?;
        Ok(TurnRun {
            events,
            events_open: true,
            reply: Some(Box::pin(pending.wait())),
            done: None,
            finished: false,
        })
    }

    /// The next item; `None` after `Done`.
    pub async fn next(&mut self) -> Option<TurnItem> {
        loop {
            if self.finished {
                return None;
            }
            if let Some(reply) = self.reply.as_mut() {
                let mut replied = None;
                let mut event = None;
                tokio::select! {
                    biased;
                    ev = self.events.next(), if self.events_open => event = Some(ev),
                    r = reply => replied = Some(r),
                }
                match event {
                    Some(Some(ev)) => {
                        if let Ok(v) = serde_json::from_slice::<Value>(&ev.payload) {
                            return Some(TurnItem::Event(v));
                        }
                    }
                    Some(None) => self.events_open = false,
                    None => {}
                }
                if let Some(r) = replied {
                    self.reply = None;
                    self.done = Some(parse_reply(r));
                }
                continue;
            }
            // The reply is here; the events published before it were routed before it
            // (one connection, in order), so whatever is queued is all there is.
            if self.events_open {
                let next = tokio::task::unconstrained(tokio::time::timeout(
                    Duration::ZERO,
                    self.events.next(),
                ));
                if let Ok(Some(ev)) = next.await {
                    if let Ok(v) = serde_json::from_slice::<Value>(&ev.payload) {
                        return Some(TurnItem::Event(v));
                    }
                    continue;
                }
                self.events_open = false;
            }
            self.finished = true;
            let done = self
                .done
                .take()
                .unwrap_or_else(|| Err(ApiError::upstream("the turn ended without a reply")));
            return Some(TurnItem::Done(done));
        }
    }
}

fn parse_reply(r: Result<Vec<u8>, ClientError>) -> Result<TurnReply, ApiError> {
    let bytes = r.map_err(ApiError::from_client)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::upstream(format!("the agent answered with something unexpected: {e}"))
    })
}

/// The provider and model the principal's registry names.
#[derive(Debug, Clone, Deserialize)]
pub struct Current {
    pub provider: String,
    #[serde(default)]
    pub model: Option<String>,
}

pub async fn current(client: &Client) -> Result<Current, ApiError> {
    ask(client, "registry.v1.current", json!({}), SESSION_TIMEOUT).await
}

/// The provider's live model list (`llm.v1.models.<provider>`).
pub async fn models(client: &Client, provider: &str) -> Result<Vec<String>, ApiError> {
    #[derive(Deserialize)]
    struct Model {
        id: String,
    }
    #[derive(Deserialize)]
    struct Models {
        models: Vec<Model>,
    }
    let m: Models = ask(
        client,
        &format!("llm.v1.models.{provider}"),
        json!({}),
        SESSION_TIMEOUT,
    )
    .await?;
    Ok(m.models.into_iter().map(|m| m.id).collect())
}

/// `session.v1.rename`.
pub async fn rename(client: &Client, id: &str, name: &str) -> Result<Thread, ApiError> {
    let body = json!({"id": id, "name": name});
    ask(client, "session.v1.rename", body, SESSION_TIMEOUT).await
}

/// `session.v1.delete`.
pub async fn delete(client: &Client, id: &str) -> Result<(), ApiError> {
    let _: Value = ask(
        client,
        "session.v1.delete",
        json!({"id": id}),
        SESSION_TIMEOUT,
    )
    .await?;
    Ok(())
}
