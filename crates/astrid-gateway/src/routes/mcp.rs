//! `/mcp`: MCP over streamable HTTP (protocol 2026-07-28, stateless), serving the tools of
//! the capsules granted to the bearer token's principal, the same server `astrid mcp serve`
//! runs on stdio (`astrid_mcp::CapsuleTools`).
//!
//! The token is checked here exactly as on every other route (rate limit, then the kernel's
//! handshake through the pooled connection); the connection that acts for the token is put
//! in the request's extensions, where the MCP handler takes it. So each `tools/call` is the
//! kernel's decision for that token's principal and scope (manifest, capability tokens,
//! approval) and is audited in that principal's chain; a refusal is an MCP tool error
//! (`isError: true`) with the kernel's reason.
//!
//! A client on protocol 2026-07-28 that declared form elicitation is asked for approvals
//! (and capsules' non-secret questions) within its calls: the request also carries the
//! device and a way to open another connection as it, on which the MCP server answers that
//! device's approvals (`astrid_mcp::AnsweringDevice`).

use std::sync::Arc;

use astrid_mcp::AnsweringDevice;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt as _;

use crate::app::{Authed, Shared};
use crate::error::ApiError;

pub async fn serve(State(st): State<Shared>, auth: Authed, mut req: Request) -> Response {
    let (state, device) = (st.clone(), auth.device);
    let answering = AnsweringDevice {
        key: auth.key,
        connect: Arc::new(move || {
            let (state, device) = (state.clone(), device.clone());
            Box::pin(async move {
                state
                    .upstream
                    .connect(&device)
                    .await
                    .map_err(|e| e.detail().to_string())
            })
        }),
    };
    req.extensions_mut().insert(auth.client);
    req.extensions_mut().insert(answering);
    match st.mcp.clone().oneshot(req).await {
        Ok(resp) => resp.map(Body::new),
        Err(never) => match never {},
    }
}

/// What `/mcp` answers a method it does not serve (a stateless server has no GET stream and
/// no session to DELETE).
pub async fn not_served() -> impl IntoResponse {
    ApiError::method_not_allowed()
}
