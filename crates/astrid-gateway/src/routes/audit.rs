//! The principal's audit chain: a page of entries, the whole chain as JSON Lines (what
//! `astrid audit export` prints), and its verification. The kernel reads the chain of the
//! connection's own principal (`ControlCommand::AuditPage`, `AuditVerify`) and refuses a
//! device any other; the gateway never opens a chain file.

use astrid_client::Client;
use astrid_types::wire::{AuditPage, AuditVerdict, ControlCommand, ControlResponse};
use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::app::{Authed, Params};
use crate::error::{ApiError, Problem};

/// Entries per page when the client does not say (the kernel caps a page at 1000).
const DEFAULT_PAGE: u32 = 100;
/// The largest page the kernel serves; also the page size while exporting.
const MAX_PAGE: u32 = 1000;
const EXPORT_PAGE: u32 = MAX_PAGE;

/// One entry of the chain, every field as docs/AUDIT-FORMAT.md describes it (with the exact
/// signed bytes, so it can be checked without Astrid's code).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Always `entry`.
    #[serde(rename = "type")]
    pub kind: String,
    pub seq: u64,
    pub time_ms: u64,
    pub principal: String,
    /// Who acted: a capsule (`tool-fs for agent`), `kernel`, or a credential.
    pub capsule: String,
    pub action: String,
    pub resource: String,
    /// `allowed`, `denied` or `recorded`.
    pub decision: String,
    pub decision_code: u8,
    pub outcome: String,
    pub prev_hash: String,
    pub hash: String,
    pub signature: String,
    /// The canonical bytes that were hashed and signed, hex.
    pub canonical: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntries {
    /// Oldest first.
    pub entries: Vec<AuditEntry>,
    /// The seq of the chain's last entry when the page was read.
    pub last_seq: u64,
    /// Pass as `after` for the next page; `null` when this page reached the end.
    pub next_after: Option<u64>,
    /// The signed head, on the page that reaches the end (`null` before).
    #[schema(value_type = Option<Object>)]
    pub head: Option<Value>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Entries with a seq above this one (default 0: from the start). Signed 64-bit in the
    /// document, as clients see it, so a value past `i64::MAX` is refused rather than read.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// At most this many entries (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

async fn page(
    client: &Client,
    principal: &str,
    after_seq: u64,
    limit: u32,
) -> Result<AuditPage, ApiError> {
    let cmd = ControlCommand::AuditPage {
        principal: principal.to_string(),
        after_seq,
        limit,
    };
    match client.control(cmd).await.map_err(ApiError::from_client)? {
        ControlResponse::Audit(p) => Ok(p),
        other => Err(ApiError::upstream(format!(
            "the daemon answered an audit page with something else: {other:?}"
        ))),
    }
}

fn parse<T: serde::de::DeserializeOwned>(line: &str) -> Result<T, ApiError> {
    serde_json::from_str(line).map_err(|e| {
        ApiError::upstream(format!(
            "the daemon sent an audit line that does not parse: {e}"
        ))
    })
}

/// A page of the principal's audit chain, oldest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("device_token" = [])),
    params(PageQuery),
    responses((status = 200, body = AuditEntries),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn entries(
    auth: Authed,
    Params(q): Params<PageQuery>,
) -> Result<Json<AuditEntries>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "`limit` must be between 1 and {MAX_PAGE}, got {limit}"
        )));
    }
    let after = u64::try_from(q.after.unwrap_or(0)).map_err(|_| {
        ApiError::bad_request(format!(
            "`after` must be a seq of 0 or more, got {}",
            q.after.unwrap_or(0)
        ))
    })?;
    let p = page(&auth.client, &auth.principal, after, limit).await?;
    let entries = p
        .entries
        .iter()
        .map(|l| parse::<AuditEntry>(l))
        .collect::<Result<Vec<_>, _>>()?;
    let head = p.head.as_deref().map(parse::<Value>).transpose()?;
    // A full page may have ended exactly at the end; the head says for sure.
    let next_after = match (&head, entries.last()) {
        (None, Some(last)) if entries.len() == limit as usize => Some(last.seq),
        _ => None,
    };
    Ok(Json(AuditEntries {
        entries,
        last_seq: p.last_seq,
        next_after,
        head,
    }))
}

/// The whole chain as JSON Lines: every entry, then the signed head, exactly as `astrid audit
/// export` prints them (docs/AUDIT-FORMAT.md), for an external verifier.
#[utoipa::path(get, path = "/v1/audit/export", tag = "audit", security(("device_token" = [])),
    responses((status = 200, description = "one JSON object per line: entries, then the head", content_type = "application/x-ndjson", body = String),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn export(auth: Authed) -> Result<Response, ApiError> {
    // The first page is fetched before answering, so a refusal is a status, not a cut body.
    let first = page(&auth.client, &auth.principal, 0, EXPORT_PAGE).await?;
    let Authed {
        principal, client, ..
    } = auth;
    let stream =
        futures_util::stream::unfold(Some((first, client, principal)), |state| async move {
            let (p, client, principal) = state?;
            let mut text = String::new();
            for line in p.entries.iter().chain(p.head.iter()) {
                text.push_str(line);
                text.push('\n');
            }
            let last = p
                .entries
                .last()
                .and_then(|l| parse::<AuditEntry>(l).ok())
                .map(|e| e.seq);
            let next = match (&p.head, last) {
                (None, Some(after)) => match page(&client, &principal, after, EXPORT_PAGE).await {
                    Ok(p) => Some((p, client, principal)),
                    // Cut the body: a reader must not take a partial export as whole.
                    Err(e) => {
                        return Some((Err(std::io::Error::other(e.to_string())), None));
                    }
                },
                _ => None,
            };
            Some((Ok::<_, std::io::Error>(text), next))
        });
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(resp)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// `SEQ:HASH` from an earlier verification: also check the chain still holds it.
    #[param(pattern = "^[0-9]{1,19}:[0-9a-fA-F]{64}$")]
    pub witness: Option<String>,
}

/// The verdict of a full verification of the chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    pub principal: String,
    /// Every entry decoded, linked and signed by the runtime key, and the head agrees.
    pub intact: bool,
    /// What is wrong, naming the first bad entry, when not intact.
    pub problem: Option<String>,
    pub entries: u64,
    pub last_seq: u64,
    /// The seq the signed head vouches for (it may lag after a crash).
    pub head_seq: u64,
    pub torn_tail_bytes: u64,
    /// `SEQ:HASH` of the last entry: keep it elsewhere and pass it back as `witness` later.
    pub witness: Option<String>,
    /// The id of the runtime key that signs the chain.
    pub key_id: String,
}

impl From<AuditVerdict> for Verification {
    fn from(v: AuditVerdict) -> Self {
        Verification {
            principal: v.principal,
            intact: v.intact,
            problem: v.problem,
            entries: v.entries,
            last_seq: v.last_seq,
            head_seq: v.head_seq,
            torn_tail_bytes: v.torn_tail_bytes,
            witness: v.witness,
            key_id: v.key_id,
        }
    }
}

/// Verifies the principal's chain (framing, links, signatures, the signed head; with
/// `witness`, that the chain still holds that entry). A broken chain is a verdict
/// (`intact: false`), not an error.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", security(("device_token" = [])),
    params(VerifyQuery),
    responses((status = 200, body = Verification),
        (status = 400, description = "the witness is not `SEQ:HASH`", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn verify(
    auth: Authed,
    Params(q): Params<VerifyQuery>,
) -> Result<Json<Verification>, ApiError> {
    let cmd = ControlCommand::AuditVerify {
        principal: auth.principal.clone(),
        witness: q.witness.clone(),
    };
    match auth.client.control(cmd).await {
        Ok(ControlResponse::AuditVerified(v)) => Ok(Json(v.into())),
        Ok(other) => Err(ApiError::upstream(format!(
            "the daemon answered a verification with something else: {other:?}"
        ))),
        // The only failure of a well-formed request that is the client's: its witness.
        Err(astrid_client::ClientError::Control(m)) if m.starts_with("witness") => {
            Err(ApiError::bad_request(m))
        }
        Err(e) => Err(ApiError::from_client(e)),
    }
}
