//! Threads: the principal's agent sessions, read through the session capsule on a connection
//! that is the principal's own, so another principal's thread ids simply do not resolve.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::agent::{self, Thread};
use crate::app::{Authed, Body, Params, PathParam, Shared};
use crate::error::{ApiError, Problem};
use crate::search::Hit;

#[derive(Debug, Serialize, ToSchema)]
pub struct ThreadList {
    pub threads: Vec<Thread>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
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
pub async fn list(
    State(st): State<Shared>,
    auth: Authed,
    Params(q): Params<ListQuery>,
) -> Result<Json<ThreadList>, ApiError> {
    let all = st.lists.list(auth.key, &auth.client).await?;
    let n = q.limit.unwrap_or(usize::MAX).min(all.len());
    Ok(Json(ThreadList {
        threads: all[..n].to_vec(),
    }))
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
    PathParam(id): PathParam<String>,
) -> Result<Json<ThreadWithMessages>, ApiError> {
    let thread = agent::open(&auth.client, Some(&id), false).await?;
    let history = agent::history(&auth.client, &thread.id).await?;
    Ok(Json(ThreadWithMessages { thread, history }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Rename {
    /// `[A-Za-z0-9._-]{1,64}`, not taken by another thread.
    pub name: String,
}

/// Renames a thread.
#[utoipa::path(patch, path = "/v1/threads/{id}", tag = "threads", security(("device_token" = [])),
    params(("id" = String, Path, description = "thread id or name")),
    request_body = Rename,
    responses((status = 200, body = Thread),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "another thread has that name", body = Problem, content_type = "application/problem+json")))]
pub async fn rename(
    auth: Authed,
    PathParam(id): PathParam<String>,
    Body(r): Body<Rename>,
) -> Result<Json<Thread>, ApiError> {
    let thread = agent::open(&auth.client, Some(&id), false).await?;
    Ok(Json(
        agent::rename(&auth.client, &thread.id, &r.name).await?,
    ))
}

/// Deletes a thread and its history.
#[utoipa::path(delete, path = "/v1/threads/{id}", tag = "threads", security(("device_token" = [])),
    params(("id" = String, Path, description = "thread id or name")),
    responses((status = 204, description = "deleted"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    auth: Authed,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    let thread = agent::open(&auth.client, Some(&id), false).await?;
    agent::delete(&auth.client, &thread.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words that must all appear in a message.
    #[param(min_length = 1)]
    pub q: String,
    /// At most this many hits (default 20, at most 200).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    pub query: String,
    /// Best match first.
    pub hits: Vec<Hit>,
}

/// Full-text search over the principal's threads (SQLite FTS5, ranked by bm25, with snippets).
#[utoipa::path(get, path = "/v1/search", tag = "threads", security(("device_token" = [])),
    params(SearchQuery),
    responses((status = 200, body = SearchResults),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn search(
    State(st): State<Shared>,
    auth: Authed,
    Params(q): Params<SearchQuery>,
) -> Result<Json<SearchResults>, ApiError> {
    let limit = q.limit.unwrap_or(20).clamp(1, 200);
    let hits = st
        .search
        .search(&auth.principal, &auth.client, &q.q, limit)
        .await?;
    Ok(Json(SearchResults { query: q.q, hits }))
}
