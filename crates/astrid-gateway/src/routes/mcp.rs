//! `/mcp`: MCP over streamable HTTP, serving the tools of the capsules granted to the bearer
//! token's principal, the same server `astrid mcp serve` runs on stdio
//! (`astrid_mcp::CapsuleTools`), through `astrid_mcp::McpHttp`.
//!
//! The token is checked here exactly as on every other route (rate limit, then the kernel's
//! handshake through the pooled connection); the connection that acts for the token goes
//! with the request to the MCP handler. So each `tools/call` is the kernel's decision for
//! that token's principal and scope (manifest, capability tokens, approval) and is audited
//! in that principal's chain; a refusal is an MCP tool error (`isError: true`) with the
//! kernel's reason.
//!
//! A client that declared form elicitation is asked for approvals (and capsules' non-secret
//! questions) within its calls: on protocol 2026-07-28 as input rounds, before it as
//! `elicitation/create` requests on its session, which is bound to the token that opened
//! it. For that the request also carries the device and a way to open another connection
//! as it, on which the MCP server answers that device's approvals
//! (`astrid_mcp::AnsweringDevice`). GET (a session's stream) and DELETE (ending a session)
//! go to the same service.

use std::sync::Arc;

use astrid_mcp::AnsweringDevice;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;

use crate::app::{Authed, Shared};

pub async fn serve(State(st): State<Shared>, auth: Authed, req: Request) -> Response {
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
    st.mcp
        .handle(req, auth.client, answering)
        .await
        .map(Body::new)
}
