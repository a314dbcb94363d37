//! The capability layer shared by every gated host package: a token covers the effect, or
//! the principal's human approves it now; every refusal is logged and audited.

use std::time::{Duration, Instant};

use std::path::PathBuf;

use astrid_crypto::Resource;
use astrid_types::wire::ApprovalDecision;

use super::ceiling::effect_within_manifest;
use crate::chain::Actor;
use crate::context::{ApprovalAsk, Asked, AuditDecision, CapsuleContext};

/// How long an effect waits for a human when no token covers it; the invocation's deadline
/// usually caps it sooner.
pub(crate) const APPROVAL_WAIT: Duration = Duration::from_secs(300);

/// Logs and audits a denial. The effect is refused whatever the audit append returns; a
/// failed append is logged loudly since the chain now misses a decision.
/// `actor` is who acts and for whom (see [`Actor`]).
pub(crate) fn record_denial(
    ctx: &CapsuleContext,
    actor: &Actor,
    what: &str,
    resource: &str,
    reason: &str,
) {
    tracing::warn!(
        principal = %ctx.origin.principal,
        capsule = %actor,
        "denied {what} {resource}: {reason}"
    );
    if let Err(e) = ctx
        .auditor
        .record(actor, what, resource, AuditDecision::Denied, reason)
    {
        tracing::error!(
            principal = %ctx.origin.principal,
            capsule = %actor,
            "audit append failed for a denied {what}: {e}"
        );
    }
}

/// Records an allowed effect durably; an error is the reason to refuse it after all.
pub(crate) fn record_allowed(
    ctx: &CapsuleContext,
    actor: &Actor,
    what: &str,
    resource: &str,
    outcome: &str,
) -> Result<(), String> {
    ctx.auditor
        .record(actor, what, resource, AuditDecision::Allowed, outcome)
        .map_err(|e| {
            tracing::error!(capsule = %actor, "audit append failed: {e}");
            format!("the audit trail is unavailable: {e}")
        })
}

/// Why an effect was refused, and whether the invocation's deadline is what ran out.
pub(crate) struct Refusal {
    pub reason: String,
    pub deadline_hit: bool,
}

/// The effect a host function names as `fs:read:<path>`, `fs:write:<path>`,
/// `process:exec:<program>` or `net:connect:<host>:<port>`: the typed resource the approval
/// prompt is rendered from. Host functions build these strings from the effect itself.
pub(crate) fn parse_effect(resource: &str) -> Option<Resource> {
    if let Some(path) = resource.strip_prefix("fs:read:") {
        return Some(Resource::FsRead(PathBuf::from(path)));
    }
    if let Some(path) = resource.strip_prefix("fs:write:") {
        return Some(Resource::FsWrite(PathBuf::from(path)));
    }
    if let Some(program) = resource.strip_prefix("process:exec:") {
        return Some(Resource::ProcessExec(program.to_string()));
    }
    let (host, port) = resource.strip_prefix("net:connect:")?.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some(Resource::NetConnect {
        host: host.to_string(),
        port: port.parse().ok()?,
    })
}

/// `token` is the gate's answer for `resource`; when it found no token, the human is asked
/// (no longer than the deadline allows), with the prompt rendered from the effect. `ask`
/// is the host's description of it. Refusals are already audited when this returns.
pub(crate) fn token_or_approval(
    ctx: &CapsuleContext,
    actor: &Actor,
    deadline: Option<Instant>,
    op: &str,
    resource: &str,
    token: Result<(), String>,
    ask: &str,
) -> Result<(), Refusal> {
    let missing = match token {
        Ok(()) => return Ok(()),
        Err(missing) => missing,
    };
    let Some(effect) = parse_effect(resource) else {
        // A host function naming an effect the kernel cannot render is a bug: refuse it
        // rather than show a person something other than what would happen.
        let reason = format!("{missing}, and `{resource}` cannot be put to a person");
        record_denial(ctx, actor, op, resource, &reason);
        return Err(Refusal {
            reason,
            deadline_hit: false,
        });
    };
    let (timeout, capped) = match deadline {
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            (left.min(APPROVAL_WAIT), left < APPROVAL_WAIT)
        }
        None => (APPROVAL_WAIT, false),
    };
    let started = Instant::now();
    let outside_manifest = effect_within_manifest(ctx, &effect).err();
    let decision = ctx.approver.request(
        ApprovalAsk {
            actor: actor.clone(),
            action: op.to_string(),
            asked: Asked::Effect(effect),
            detail: ask.to_string(),
            capsule_says: None,
            outside_manifest,
        },
        timeout,
    );
    let mut deadline_hit = false;
    let reason = match decision {
        Ok(ApprovalDecision::Deny) => {
            deadline_hit = capped && started.elapsed() >= timeout;
            format!("{missing}, and the approval request was denied")
        }
        Ok(_) => return Ok(()),
        Err(e) => format!("{missing}, and approval could not be asked: {e}"),
    };
    record_denial(ctx, actor, op, resource, &reason);
    Err(Refusal {
        reason,
        deadline_hit,
    })
}
