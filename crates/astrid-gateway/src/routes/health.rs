//! `/healthz` (the process answers), `/readyz` (the daemon accepts connections) and
//! `/metrics` (Prometheus). None needs a token: they reveal nothing about any principal.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::Shared;
use crate::error::ApiError;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// The gateway process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// The daemon is reachable on its socket, so requests can be served.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health),
        (status = 503, body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn readyz(State(st): State<Shared>) -> Result<Json<Health>, ApiError> {
    if *st.stopping.borrow() {
        return Err(ApiError::shutting_down());
    }
    if st.upstream.daemon_reachable().await {
        Ok(Json(Health {
            status: "ok".into(),
        }))
    } else {
        Err(ApiError::unavailable(format!(
            "the Astrid daemon is not running (nothing listens on {})",
            st.upstream.home().socket().display()
        )))
    }
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, body = String, content_type = "text/plain")))]
pub async fn metrics(State(st): State<Shared>) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let up = &st.upstream;
    let text = st.metrics.render(&[
        (
            "astrid_gateway_pooled_connections",
            "Live daemon connections kept for reuse.",
            up.pooled() as f64,
        ),
        (
            "astrid_gateway_upstream_connects_ok",
            "Daemon connections the kernel accepted (counter).",
            up.connects_ok.load(Relaxed) as f64,
        ),
        (
            "astrid_gateway_upstream_connects_refused",
            "Device tokens the kernel refused at the handshake (counter).",
            up.connects_refused.load(Relaxed) as f64,
        ),
        (
            "astrid_gateway_upstream_connects_failed",
            "Daemon connections that failed otherwise (counter).",
            up.connects_failed.load(Relaxed) as f64,
        ),
    ]);
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}
