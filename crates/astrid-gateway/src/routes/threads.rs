//! Threads: the principal's agent sessions, read through the session capsule on a connection
//! that is the principal's own, so another principal's thread ids simply do not resolve.

use axum::extract::{Path, Query};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::agent::{self, Thread};
use crate::app::Authed;
use crate::error::{ApiError, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct ThreadList {
    pub threads: Vec<Thread>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// At most this many threads, newest first.
    pub limit: Option<usize>,
}

/// The principal's threads, newest first.
#[utoipa::path(get, path = "/v1/threads", tag = "threads", security(("device_token" = [])),
    params(ListQuery),
    responses((status = 200, body = ThreadList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json")))]
pub async fn list(auth: Authed, Query(q): Query<ListQuery>) -> Result<Json<ThreadList>, ApiError> {
    let mut threads = agent::list(&auth.client).await?;
    if let Some(n) = q.limit {
        threads.truncate(n);
    }
    Ok(Json(ThreadList { threads }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ThreadWithMessages {
    #[serde(flatten)]
    pub thread: Thread,
    /// The normalised conversation (docs/AGENT-PROTOCOL.md, "Messages").
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<Value>,
}

/// One thread and its messages, by id or name.
#[utoipa::path(get, path = "/v1/threads/{id}", tag = "threads", security(("device_token" = [])),
    params(("id" = String, Path, description = "thread id or name")),
    responses((status = 200, body = ThreadWithMessages),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn get_one(
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Json<ThreadWithMessages>, ApiError> {
    let thread = agent::open(&auth.client, Some(&id), false).await?;
    let history = agent::history(&auth.client, &thread.id).await?;
    Ok(Json(ThreadWithMessages { thread, history }))
}
