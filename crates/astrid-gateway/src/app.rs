//! The router, the state every handler shares, and what applies to every request: the
//! deadline, the body cap, metrics, and the bearer-token extractor (rate limit, then the
//! kernel's check through the handshake).

use std::sync::Arc;
use std::time::Instant;

use astrid_client::Client;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::limits::RateLimiter;
use crate::metrics::Metrics;
use crate::routes;
use crate::upstream::{DeviceToken, Upstream};
use crate::GatewayConfig;

pub struct AppState {
    pub config: GatewayConfig,
    pub upstream: Upstream,
    pub limiter: RateLimiter,
    pub metrics: Metrics,
    pub search: crate::search::Search,
    /// Each token's last thread list, dropped on change (see `listcache`).
    pub lists: crate::listcache::ListCache,
    /// Becomes true when the gateway starts shutting down; streams end on it.
    pub stopping: watch::Receiver<bool>,
    /// MCP over streamable HTTP at `/mcp` (see `routes::mcp`).
    pub mcp: astrid_mcp::McpHttp,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn new(config: GatewayConfig, stopping: watch::Receiver<bool>) -> AppState {
        AppState {
            upstream: Upstream::new(config.home.clone(), config.max_pooled),
            limiter: RateLimiter::new(config.rate),
            metrics: Metrics::default(),
            search: Default::default(),
            lists: crate::listcache::ListCache::new(config.list_max_age),
            stopping,
            // No `--yes` over HTTP: an effect no capability token covers is refused unless
            // another approver of the principal (a chat, the console) allows it.
            mcp: astrid_mcp::McpHttp::new(
                astrid_mcp::ServeOptions::default(),
                CancellationToken::new(),
            ),
            config,
        }
    }
}

/// Routes that run a whole agent turn before answering get the turn's deadline.
fn is_turn_route(route: &str) -> bool {
    // A tool call over MCP may run as long as a turn (the shell tool's ten minutes).
    route == "/v1/chat/completions" || route == "/mcp"
}

pub fn router(state: Shared) -> Router {
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .route("/", get(routes::console::index))
        .route("/console.js", get(routes::console::script))
        .route("/console.css", get(routes::console::style))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/v1/models", get(routes::openai::models))
        .route("/v1/chat/completions", post(routes::openai::chat))
        .route(
            "/v1/threads",
            get(routes::threads::list).post(routes::turns::create),
        )
        .route(
            "/v1/threads/{id}",
            get(routes::threads::get_one)
                .patch(routes::threads::rename)
                .delete(routes::threads::delete),
        )
        .route("/v1/threads/{id}/turns", post(routes::turns::post_turn))
        .route("/v1/threads/{id}/cancel", post(routes::turns::cancel))
        .route("/v1/approvals/{id}", post(crate::approvals::answer))
        .route("/v1/questions/{id}", post(crate::questions::answer))
        .route("/v1/events", get(routes::feed::live))
        .route("/v1/search", get(routes::threads::search))
        .route("/v1/capsules", get(routes::grants::capsules))
        .route("/v1/tools", get(routes::grants::tools))
        .route(
            "/v1/model",
            get(routes::grants::current_model).put(routes::grants::select_model),
        )
        .route("/v1/audit", get(routes::audit::entries))
        .route("/v1/audit/export", get(routes::audit::export))
        .route("/v1/audit/verify", get(routes::audit::verify))
        .route(
            "/mcp",
            post(routes::mcp::serve)
                .get(routes::mcp::serve)
                .delete(routes::mcp::serve),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), around))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("there is no such route (see /openapi.json)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// The request deadline and the metrics, around every handler.
async fn around(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let method = req.method().to_string();
    // A request that may change something drops its token's cached thread list once it is
    // answered, so the same client reads its own write (events also do, a moment later).
    let changes = if req.method() == axum::http::Method::GET {
        None
    } else {
        req.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .map(|(_, token)| DeviceToken::key_of(token.trim()))
    };
    let limit = if is_turn_route(&route) {
        st.config.turn_timeout
    } else {
        st.config.request_timeout
    };
    let start = Instant::now();
    let resp = match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::timeout(limit).into_response(),
    };
    if let Some(key) = changes {
        st.lists.forget(key);
    }
    st.metrics
        .record(&route, &method, resp.status().as_u16(), start.elapsed());
    resp
}

/// The bearer string of a request, or 401.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "this route needs `Authorization: Bearer <device token>` (from `astrid pair-device issue`)",
            )
        })?
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer <token>`",
        ));
    }
    Ok(token.trim())
}

/// The request's device token, within its rate limit. Whether it is valid is not known yet.
pub struct Token(pub DeviceToken);

impl FromRequestParts<Shared> for Token {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Shared) -> Result<Self, ApiError> {
        if *st.stopping.borrow() {
            return Err(ApiError::shutting_down());
        }
        let bearer = bearer(parts)?;
        st.limiter
            .check(DeviceToken::key_of(bearer), Instant::now())
            .map_err(|wait| {
                st.metrics
                    .rate_limited
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                ApiError::rate_limited(wait)
            })?;
        Ok(Token(DeviceToken::parse(bearer)?))
    }
}

/// A request whose device token the kernel accepted, with the (pooled) connection that acts
/// for it.
pub struct Authed {
    /// The principal the kernel accepted the token for.
    pub principal: String,
    pub client: Client,
    /// The token's pool key (a hash), for what the gateway keeps per token.
    pub key: [u8; 32],
    /// The token, to open another connection acting for it.
    pub device: DeviceToken,
}

impl FromRequestParts<Shared> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Shared) -> Result<Self, ApiError> {
        let Token(dev) = Token::from_request_parts(parts, st).await?;
        let client = st.upstream.client(&dev).await?;
        Ok(Authed {
            principal: dev.principal.clone(),
            client,
            key: dev.key(),
            device: dev,
        })
    }
}

/// Query parameters whose every rejection is a problem document (400).
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<Shared> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Shared) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, st).await {
            Ok(axum::extract::Query(v)) => Ok(Params(v)),
            Err(rej) => Err(ApiError::bad_request(rej.body_text())),
        }
    }
}

/// Path parameters whose every rejection is a problem document (400).
pub struct PathParam<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<Shared> for PathParam<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Shared) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, st).await {
            Ok(axum::extract::Path(v)) => Ok(PathParam(v)),
            Err(rej) => Err(ApiError::bad_request(rej.body_text())),
        }
    }
}

/// A JSON body whose every rejection is a problem document.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Shared> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, st: &Shared) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, st).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(rej) => Err(rejection(rej, st.config.max_body_bytes)),
        }
    }
}

fn rejection(rej: JsonRejection, limit: usize) -> ApiError {
    match rej.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::too_large(limit),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::unsupported_media(
            "send the body as JSON with `Content-Type: application/json`",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::invalid_body(rej.body_text()),
        _ => ApiError::bad_request(rej.body_text()),
    }
}
