//! What the token's principal holds: the capsules granted to it with their tools, its live
//! capability tokens, the tools its agent can call, and which model its agent uses (which the
//! principal may choose among the provider's live models). Every answer comes from the
//! kernel or a capsule on a connection that is the principal's own: `ControlCommand::List`
//! lists only the capsules granted to the connection's principal, and a device may read only
//! its own principal's tokens (the kernel refuses any other name).

use std::time::Duration;

use astrid_types::wire::{CapsuleInfo, ControlCommand, ControlResponse, LifecycleState, TokenInfo};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::agent;
use crate::app::{Authed, Body};
use crate::error::{ApiError, Problem};

/// Collecting the tool descriptions wakes every tool capsule of the principal.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(30);

/// A capsule granted to the principal.
#[derive(Debug, Serialize, ToSchema)]
pub struct Capsule {
    pub name: String,
    pub version: String,
    pub description: String,
    /// `loading`, `ready`, `running`, `failed` or `stopping`.
    pub state: String,
    /// Why it failed to load, when `state` is `failed`.
    pub error: Option<String>,
    /// Tools it offers the agent.
    pub tools: Vec<String>,
    /// Capability grants its manifest declares, e.g. `fs_read: ~/data`.
    pub capabilities: Vec<String>,
}

/// A capability token the principal holds (never a secret: its id and pattern).
#[derive(Debug, Serialize, ToSchema)]
pub struct Grant {
    pub id: String,
    /// What it allows, e.g. `fs:read:/srv/data/**`.
    pub pattern: String,
    /// Bound to this capsule only, when set.
    pub capsule: Option<String>,
    pub issued_at_ms: u64,
    pub expires_at_ms: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CapsuleList {
    pub capsules: Vec<Capsule>,
    /// The principal's live capability tokens (revoked and expired ones left out).
    pub grants: Vec<Grant>,
}

fn state_name(s: &LifecycleState) -> String {
    format!("{s:?}").to_ascii_lowercase()
}

fn capsule(c: CapsuleInfo) -> Capsule {
    Capsule {
        state: state_name(&c.state),
        name: c.name,
        version: c.version,
        description: c.description,
        error: c.error,
        tools: c.tools,
        capabilities: c.capabilities,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn grant(t: TokenInfo) -> Grant {
    Grant {
        id: t.id,
        pattern: t.pattern,
        capsule: t.capsule,
        issued_at_ms: t.issued_at_ms,
        expires_at_ms: t.expires_at_ms,
    }
}

async fn control(auth: &Authed, cmd: ControlCommand) -> Result<ControlResponse, ApiError> {
    auth.client
        .control(cmd)
        .await
        .map_err(ApiError::from_client)
}

/// The capsules granted to the token's principal, with their tools, and its capability
/// tokens.
#[utoipa::path(get, path = "/v1/capsules", tag = "principal", security(("device_token" = [])),
    responses((status = 200, body = CapsuleList),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn capsules(auth: Authed) -> Result<Json<CapsuleList>, ApiError> {
    let mut capsules = match control(&auth, ControlCommand::List).await? {
        ControlResponse::Capsules(list) => list.into_iter().map(capsule).collect::<Vec<_>>(),
        other => return Err(unexpected("the capsule list", &other)),
    };
    capsules.sort_by(|a, b| a.name.cmp(&b.name));
    let tokens = ControlCommand::CapsShow {
        principal: auth.principal.clone(),
    };
    let now = now_ms();
    let grants = match control(&auth, tokens).await? {
        ControlResponse::Tokens(list) => list
            .into_iter()
            .filter(|t| !t.revoked && t.expires_at_ms.is_none_or(|e| e > now))
            .map(grant)
            .collect(),
        other => return Err(unexpected("the capability tokens", &other)),
    };
    Ok(Json(CapsuleList { capsules, grants }))
}

fn unexpected(what: &str, got: &ControlResponse) -> ApiError {
    ApiError::upstream(format!(
        "the daemon answered the request for {what} with something else: {got:?}"
    ))
}

/// A tool the principal's agent can call, as its capsule describes it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tool {
    pub name: String,
    pub description: String,
    /// The capsule that runs it.
    pub capsule: String,
    /// JSON Schema of its arguments.
    #[schema(value_type = Object)]
    pub input_schema: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ToolList {
    pub tools: Vec<Tool>,
}

#[derive(Deserialize)]
struct Described {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    input_schema: Value,
}

/// The tools the principal's agent can call (`tool.v1.describe`, gathered from the
/// principal's own capsules, as the agent does).
#[utoipa::path(get, path = "/v1/tools", tag = "principal", security(("device_token" = [])),
    responses((status = 200, body = ToolList),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn tools(auth: Authed) -> Result<Json<ToolList>, ApiError> {
    let replies = auth
        .client
        .gather("tool.v1.describe", b"{}".to_vec(), DESCRIBE_TIMEOUT)
        .await
        .map_err(ApiError::from_client)?;
    let mut tools = Vec::new();
    for (source, bytes) in replies {
        // A capsule whose description does not parse offers nothing the agent could call.
        let Ok(list) = serde_json::from_slice::<Vec<Described>>(&bytes) else {
            continue;
        };
        let capsule = source.strip_prefix("capsule:").unwrap_or(&source);
        tools.extend(list.into_iter().map(|d| Tool {
            name: d.name,
            description: d.description,
            capsule: capsule.to_string(),
            input_schema: d.input_schema,
        }));
    }
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(ToolList { tools }))
}

/// The provider and model the principal's agent uses.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelChoice {
    pub provider: String,
    /// `null`: the provider's own default.
    pub model: Option<String>,
    /// `selected` (the principal chose it here), `config` (the operator's setting, from
    /// `astrid init`) or `default`.
    #[serde(default)]
    pub source: String,
}

/// Which model to use: one of the provider's live models (`GET /v1/models`), or `null` to
/// go back to the operator's configured model.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SelectModel {
    #[schema(min_length = 1)]
    pub model: Option<String>,
}

/// The model the principal's agent uses, and where that choice comes from.
#[utoipa::path(get, path = "/v1/model", tag = "principal", security(("device_token" = [])),
    responses((status = 200, body = ModelChoice),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn current_model(auth: Authed) -> Result<Json<ModelChoice>, ApiError> {
    Ok(Json(
        agent::ask(
            &auth.client,
            "registry.v1.current",
            json!({}),
            agent::SESSION_TIMEOUT,
        )
        .await?,
    ))
}

/// Selects the principal's model among the provider's live models (`null` forgets the
/// choice). Later turns of every uplink use it.
#[utoipa::path(put, path = "/v1/model", tag = "principal", security(("device_token" = [])),
    request_body = SelectModel,
    responses((status = 200, body = ModelChoice),
        (status = 400, description = "the provider does not offer that model (the detail lists those it does)", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn select_model(
    auth: Authed,
    Body(req): Body<SelectModel>,
) -> Result<Json<ModelChoice>, ApiError> {
    if req.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
        return Err(ApiError::bad_request(
            "`model` must name one of the provider's models, or be null",
        ));
    }
    Ok(Json(
        agent::ask(
            &auth.client,
            "registry.v1.select",
            json!({"model": req.model}),
            agent::MODELS_TIMEOUT,
        )
        .await?,
    ))
}
