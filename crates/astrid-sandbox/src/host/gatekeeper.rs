//! The capability layer shared by every gated host package: a token covers the effect, or
//! the principal's human approves it now; every refusal is logged and audited.

use std::time::{Duration, Instant};

use astrid_types::wire::ApprovalDecision;

use crate::chain::Actor;
use crate::context::{AuditDecision, CapsuleContext};

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

/// `token` is the gate's answer for `resource`; when it found no token, the human is asked
/// (no longer than the deadline allows). Refusals are already audited when this returns.
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
    let (timeout, capped) = match deadline {
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            (left.min(APPROVAL_WAIT), left < APPROVAL_WAIT)
        }
        None => (APPROVAL_WAIT, false),
    };
    let started = Instant::now();
    let decision = ctx.approver.request(actor, op, resource, ask, timeout);
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
