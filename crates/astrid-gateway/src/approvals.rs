//! Approvals over HTTP, kept in one place because their wire types are about to change
//! (typed approval requests). A stream registered as an approver forwards each request as
//! an `approval` event ([`ask_json`]); `POST /v1/approvals/{id}` answers it. The kernel
//! applies an answer only when the request is this connection's principal's and still
//! waiting, so a guessed id from another principal changes nothing.

use astrid_types::wire::{AlwaysOffer, ApprovalDecision, ApprovalRequest};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::app::{Authed, Body, PathParam};
use crate::error::{ApiError, Problem};

/// The four answers a person can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    AllowOnce,
    AllowSession,
    AllowAlways,
    Deny,
}

impl From<Decision> for ApprovalDecision {
    fn from(d: Decision) -> Self {
        match d {
            Decision::AllowOnce => ApprovalDecision::AllowOnce,
            Decision::AllowSession => ApprovalDecision::AllowSession,
            Decision::AllowAlways => ApprovalDecision::AllowAlways,
            Decision::Deny => ApprovalDecision::Deny,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Answer {
    pub decision: Decision,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Delivered {
    pub id: u64,
    pub decision: Decision,
}

/// An approval request as the `approval` event carries it.
/// The resource line is the kernel's rendering; the capsule's own words, if any, travel apart
/// (`capsule_says`) so a page can show them as the capsule's. Every text is escaped again here,
/// whoever sent it.
pub fn ask_json(req: &ApprovalRequest) -> Value {
    let req = req.escaped();
    let always = match &req.always {
        AlwaysOffer::Token { pattern, capsule } => {
            json!({"offered": true, "pattern": pattern, "capsule": capsule})
        }
        AlwaysOffer::NotOffered { why } => json!({"offered": false, "why": why}),
        AlwaysOffer::Consent { target, capsule } => {
            json!({"offered": true, "consent": target, "capsule": capsule})
        }
    };
    json!({
        "id": req.id,
        "capsule": req.capsule,
        "action": req.action,
        "resource": req.resource.pattern(),
        "describe": req.resource.describe(),
        "detail": req.detail,
        "capsule_says": req.capsule_says.as_ref().map(|w| json!({"action": w.action, "reason": w.reason})),
        "allow_always": always,
        "choices": ["allow_once", "allow_session", "allow_always", "deny"],
    })
}

/// Answers an approval request of the token's principal.
#[utoipa::path(post, path = "/v1/approvals/{id}", tag = "approvals", security(("device_token" = [])),
    params(("id" = i64, Path, minimum = 0, description = "the id of the `approval` event")),
    request_body = Answer,
    responses((status = 202, description = "delivered to the kernel, which applies it only to a waiting request of this principal", body = Delivered),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn answer(
    auth: Authed,
    PathParam(id): PathParam<u64>,
    Body(a): Body<Answer>,
) -> Result<(StatusCode, Json<Delivered>), ApiError> {
    // The kernel numbers approvals from 1 upwards; the document says what JSON can carry
    // exactly, and nothing above it is an approval.
    if id > i64::MAX as u64 {
        return Err(ApiError::bad_request(format!(
            "approval ids are below 2^63, not {id}"
        )));
    }
    auth.client
        .answer_approval(id, a.decision.into())
        .await
        .map_err(ApiError::from_client)?;
    // Flushed, so the answer has reached the daemon when the client hears 202.
    auth.client.flush().await.map_err(ApiError::from_client)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Delivered {
            id,
            decision: a.decision,
        }),
    ))
}
