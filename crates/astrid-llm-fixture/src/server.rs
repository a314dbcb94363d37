//! Routing and the order of checks a real service makes before it answers.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::watch;

use crate::anthropic::{self, Anthropic};
use crate::openai::{self, OpenAi};
use crate::script::Script;
use crate::wire::{self, Ids, Turn};
use crate::{Api, FixtureConfig, Recorded, Step};

/// Both services accept request bodies far larger than axum's 2 MiB default; long agent
/// histories must not be refused by the fixture when the real service would take them.
const BODY_LIMIT: usize = 32 * 1024 * 1024;

pub(crate) struct Shared {
    pub(crate) config: FixtureConfig,
    pub(crate) script: Mutex<Script>,
    pub(crate) requests: Mutex<Vec<Recorded>>,
    pub(crate) ids: Ids,
    pub(crate) stop: watch::Receiver<bool>,
}

impl Shared {
    fn record(&self, api: Api, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) {
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
        };
        let headers = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let recorded = Recorded {
            api,
            method: method.as_str().to_string(),
            path: uri.path().to_string(),
            headers,
            body,
        };
        lock(&self.requests).push(recorded);
    }

    /// An empty model list means "serve any name".
    fn serves(&self, model: &str) -> bool {
        self.config.models.is_empty() || self.config.models.iter().any(|m| m == model)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What differs between the two services; the handler below fixes what they share.
pub(crate) trait Dialect {
    const API: Api;
    /// Checks on headers alone (key, version), made before the body is looked at.
    fn check_headers(cfg: &FixtureConfig, headers: &HeaderMap, ids: &Ids) -> Option<Response>;
    /// Checks on the body; yields the model asked for. (Boxed: a `Response` is too big an
    /// error value to move around by hand.)
    fn check_body(body: Option<&Value>, ids: &Ids) -> Result<String, Box<Response>>;
    /// `(stream, include_usage)` as the request asks.
    fn stream_flags(body: &Value) -> (bool, bool);
    /// How many times the model called tools since the user's last message (assistant turns
    /// after it), for [`crate::Playback::PerTurn`].
    fn tool_rounds(body: &Value) -> usize;
    fn unknown_model(model: &str, ids: &Ids) -> Response;
    fn error(
        status: u16,
        body: Value,
        extra: &[(String, String)],
        model: &str,
        ids: &Ids,
    ) -> Response;
    fn malformed(raw: String, stream: bool, ids: &Ids) -> Response;
    fn reply(turn: &Turn, ids: &Ids) -> Response;
}

/// Assistant messages after the latest message for which `spoke` holds (the user's own):
/// the tool rounds of the turn in progress.
pub(crate) fn assistant_turns_since(body: &Value, spoke: impl Fn(&Value) -> bool) -> usize {
    let messages = body["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    messages
        .iter()
        .rev()
        .take_while(|m| !spoke(m))
        .filter(|m| m["role"] == "assistant")
        .count()
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(complete::<OpenAi>))
        .route("/v1/messages", post(complete::<Anthropic>))
        .route("/v1/models", get(models))
        .fallback(unknown)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

async fn complete<D: Dialect>(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.record(D::API, &method, &uri, &headers, &body);
    if let Some(rejected) = D::check_headers(&s.config, &headers, &s.ids) {
        return rejected;
    }
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let model = match D::check_body(parsed.as_ref(), &s.ids) {
        Ok(model) => model,
        Err(rejected) => return *rejected,
    };
    if !s.serves(&model) {
        return D::unknown_model(&model, &s.ids);
    }
    let request = parsed.unwrap_or_default();
    let (stream, include_usage) = D::stream_flags(&request);
    let step = lock(&s.script).next_step(D::tool_rounds(&request));
    match step {
        Step::Reply { text, tool_calls } => {
            let turn = Turn {
                model,
                text,
                calls: tool_calls,
                prompt_tokens: wire::estimate_tokens(body.len()),
                stream,
                include_usage,
                pieces: s.config.chunk_pieces,
                delay: s.config.piece_delay,
            };
            D::reply(&turn, &s.ids)
        }
        Step::Error {
            status,
            body,
            headers,
        } => D::error(status, body, &headers, &model, &s.ids),
        Step::Malformed(raw) => D::malformed(raw, stream, &s.ids),
        Step::Stall => {
            let mut stop = s.stop.clone();
            // Either the fixture shuts down or its sender is gone; both end the stall.
            let _ = stop.wait_for(|stopped| *stopped).await;
            wire::broken()
        }
    }
}

/// One path, two services: a request that carries `anthropic-version` is answered (and
/// authenticated) the way Anthropic does, any other the way OpenAI does.
async fn models(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.record(Api::Models, &method, &uri, &headers, &body);
    if headers.contains_key("anthropic-version") {
        if let Some(rejected) = anthropic::check_key(&s.config, &headers, &s.ids) {
            return rejected;
        }
        return anthropic::models(&s.config.models, &s.ids);
    }
    if let Some(rejected) = openai::check_key(&s.config, &headers, &s.ids) {
        return rejected;
    }
    openai::models(&s.config.models, &s.ids)
}

async fn unknown(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.record(Api::Unknown, &method, &uri, &headers, &body);
    if headers.contains_key("anthropic-version") {
        return anthropic::unknown_route(&s.ids);
    }
    openai::unknown_route(method.as_str(), uri.path(), &s.ids)
}
