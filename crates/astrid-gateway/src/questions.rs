//! Capsules' questions (`astrid:elicit`) over HTTP. A stream that carries approvals also
//! registers to answer its principal's questions: each arrives as a `question` event
//! ([`ask_json`]) and `POST /v1/questions/{id}` answers it. As for approvals, the kernel
//! applies an answer only to a waiting question of this connection's principal that the
//! answer fits, so a guessed id from another principal, or an answer of the wrong kind,
//! changes nothing.
//!
//! A question may ask for a credential the capsule declared: the person's answer goes to the
//! principal's secret store and never to the capsule. Such an answer crosses the same
//! connection as the device token itself (loopback, or TLS), and is never echoed back or
//! logged here.

use astrid_types::elicit::{
    ElicitAnswer, ElicitKind, ElicitRequest, MAX_CHOICES, MAX_SECRET_BYTES,
};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::app::{Authed, Body, PathParam};
use crate::error::{ApiError, Problem};

// The documented bounds below are these constants; the schema attributes need literals.
const _: () = assert!(MAX_CHOICES == 10 && MAX_SECRET_BYTES == 4096);

/// An answer to a capsule's question.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QuestionReply {
    /// Free text, or the credential a `secret` question asks for (one line).
    Text {
        #[schema(max_length = 4096)]
        text: String,
    },
    /// The index of the chosen option of a `choice` question.
    Choice {
        #[schema(minimum = 0, maximum = 9)]
        index: u32,
    },
    /// The person chose not to answer; the capsule hears a refusal.
    Decline,
}

impl QuestionReply {
    fn kind(&self) -> QuestionReplyKind {
        match self {
            QuestionReply::Text { .. } => QuestionReplyKind::Text,
            QuestionReply::Choice { .. } => QuestionReplyKind::Choice,
            QuestionReply::Decline => QuestionReplyKind::Decline,
        }
    }
}

impl From<QuestionReply> for ElicitAnswer {
    fn from(r: QuestionReply) -> Self {
        match r {
            QuestionReply::Text { text } => ElicitAnswer::Text(text),
            QuestionReply::Choice { index } => ElicitAnswer::Choice(index),
            QuestionReply::Decline => ElicitAnswer::Declined,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuestionReplyKind {
    Text,
    Choice,
    Decline,
}

/// What was delivered: the kind of answer, never its text (it may be a credential).
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionDelivered {
    pub id: u64,
    pub kind: QuestionReplyKind,
}

/// A capsule's question as the `question` event carries it. The prompt is the capsule's own
/// words, under the capsule's name the kernel stamped; every text is escaped again here.
pub fn ask_json(req: &ElicitRequest) -> Value {
    let req = req.escaped();
    let (kind, options, secret) = match &req.kind {
        ElicitKind::Text => ("text", None, None),
        ElicitKind::Choice { options } => ("choice", Some(options.clone()), None),
        ElicitKind::Secret { name, origin } => (
            "secret",
            None,
            Some(json!({"name": name, "origin": origin})),
        ),
    };
    json!({
        "id": req.id,
        "capsule": req.capsule,
        "prompt": req.prompt,
        "kind": kind,
        "options": options,
        "secret": secret,
        "timeout_ms": req.timeout_ms,
    })
}

/// Answers a capsule's question to the token's principal.
#[utoipa::path(post, path = "/v1/questions/{id}", tag = "approvals", security(("device_token" = [])),
    params(("id" = i64, Path, minimum = 0, description = "the id of the `question` event")),
    request_body = QuestionReply,
    responses((status = 202, description = "delivered to the kernel, which applies it only to a waiting question of this principal that it fits", body = QuestionDelivered),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn answer(
    auth: Authed,
    PathParam(id): PathParam<u64>,
    Body(reply): Body<QuestionReply>,
) -> Result<(StatusCode, Json<QuestionDelivered>), ApiError> {
    if id > i64::MAX as u64 {
        return Err(ApiError::bad_request(format!(
            "question ids are below 2^63, not {id}"
        )));
    }
    // What no question takes is refused here, where the sender can be told; the rest is for
    // the kernel, which alone knows the question.
    if let QuestionReply::Text { text } = &reply {
        if text.len() > MAX_SECRET_BYTES {
            return Err(ApiError::invalid_body(format!(
                "`text` is {} bytes; no question takes more than {MAX_SECRET_BYTES}",
                text.len()
            )));
        }
        if text.chars().any(char::is_control) {
            return Err(ApiError::invalid_body(
                "`text` holds a control character; an answer is one line of text",
            ));
        }
    }
    if let QuestionReply::Choice { index } = &reply {
        if *index as usize >= MAX_CHOICES {
            return Err(ApiError::invalid_body(format!(
                "`index` is {index}; no question offers more than {MAX_CHOICES} options"
            )));
        }
    }
    let kind = reply.kind();
    auth.client
        .answer_elicitation(id, reply.into())
        .await
        .map_err(ApiError::from_client)?;
    // Flushed, so the answer has reached the daemon when the client hears 202.
    auth.client.flush().await.map_err(ApiError::from_client)?;
    Ok((StatusCode::ACCEPTED, Json(QuestionDelivered { id, kind })))
}
