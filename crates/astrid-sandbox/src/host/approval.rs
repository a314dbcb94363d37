use std::time::Duration;

use astrid_crypto::ResourcePattern;
use astrid_types::text::escape_capped;
use astrid_types::wire::{ApprovalDecision, CapsuleWords};

use super::ceiling::within_manifest;
use super::HostState;
use crate::bindings::astrid::approval::approval::{Decision, ErrorCode, Host};
use crate::context::{ApprovalAsk, Asked};

/// A human answers within minutes or not at all; the invocation deadline usually caps sooner.
const MAX_WAIT: Duration = Duration::from_secs(600);
/// Enough to name a resource or explain a request; the prompt is shown to a person.
const MAX_FIELD: usize = 4096;
/// How much of a refused resource the audit entry keeps.
const AUDIT_RESOURCE: usize = 512;
/// What a capsule's own question is recorded and shown as.
const OP: &str = "approval.request";

impl Host for HostState {
    fn request(
        &mut self,
        action: String,
        resource: String,
        reason: String,
        timeout_ms: u32,
    ) -> Result<Decision, ErrorCode> {
        for (name, value) in [
            ("action", &action),
            ("resource", &resource),
            ("reason", &reason),
        ] {
            if value.len() > MAX_FIELD {
                return Err(ErrorCode::InvalidArgument(format!(
                    "{name} is longer than {MAX_FIELD} bytes"
                )));
            }
        }
        if action.is_empty() || resource.is_empty() {
            return Err(ErrorCode::InvalidArgument(
                "action and resource must not be empty".into(),
            ));
        }
        // The kernel renders the prompt from a parsed pattern, never from the capsule's text,
        // and never asks about anything past the manifest: both are refused without asking.
        let shown = escape_capped(&resource, AUDIT_RESOURCE);
        let pattern = match ResourcePattern::parse(&resource) {
            Ok(p) => p,
            Err(e) => {
                let why = escape_capped(&format!("not a capability pattern: {e}"), MAX_FIELD);
                self.denied(OP, &shown, &why);
                return Err(ErrorCode::InvalidArgument(why));
            }
        };
        if let Err(why) = within_manifest(&self.ctx, &pattern) {
            let why = escape_capped(&format!("{why}; nobody was asked"), MAX_FIELD);
            self.denied(OP, &shown, &why);
            return Err(ErrorCode::Denied(why));
        }
        // The person gets what the capsule asked for (at most MAX_WAIT), not what is left of
        // its deadline, which is paused meanwhile (`HostState::pause_for`).
        let timeout = Duration::from_millis(u64::from(timeout_ms)).min(MAX_WAIT);
        let started = std::time::Instant::now();
        let ask = ApprovalAsk {
            actor: self.actor.clone(),
            action: OP.to_string(),
            asked: Asked::Pattern(pattern),
            detail: String::new(),
            capsule_says: Some(CapsuleWords { action, reason }),
            outside_manifest: None,
        };
        let decision = self.ctx.approver.request(ask, timeout);
        self.pause_for(started.elapsed());
        let decision = decision.map_err(ErrorCode::Failed)?;
        Ok(match decision {
            ApprovalDecision::AllowOnce => Decision::AllowOnce,
            ApprovalDecision::AllowSession => Decision::AllowSession,
            ApprovalDecision::AllowAlways => Decision::AllowAlways,
            ApprovalDecision::Deny => Decision::Deny,
        })
    }
}
