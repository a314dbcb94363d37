use std::time::Duration;

use astrid_types::wire::ApprovalDecision;

use super::HostState;
use crate::bindings::astrid::approval::approval::{Decision, ErrorCode, Host};

/// A human answers within minutes or not at all; the invocation deadline usually caps sooner.
const MAX_WAIT: Duration = Duration::from_secs(600);
/// Enough to name a resource or explain a request; the prompt is shown to a person.
const MAX_FIELD: usize = 4096;

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
        let asked = Duration::from_millis(u64::from(timeout_ms)).min(MAX_WAIT);
        let (timeout, capped) = self.wait_budget(asked);
        let started = std::time::Instant::now();
        let decision = self
            .ctx
            .approver
            .request(&self.actor, &action, &resource, &reason, timeout)
            .map_err(ErrorCode::Failed)?;
        // A deny that took the whole (deadline-capped) budget is the deadline running out.
        if capped && decision == ApprovalDecision::Deny && started.elapsed() >= timeout {
            self.deadline_hit = true;
        }
        Ok(match decision {
            ApprovalDecision::AllowOnce => Decision::AllowOnce,
            ApprovalDecision::AllowSession => Decision::AllowSession,
            ApprovalDecision::AllowAlways => Decision::AllowAlways,
            ApprovalDecision::Deny => Decision::Deny,
        })
    }
}
