//! The approval broker: a capsule's question goes to the approver connections of its own
//! principal, and the first answer from that principal wins. Nobody to ask, or no answer in
//! time, is a denial. Every question and decision is in the principal's audit chain before
//! the capsule learns the outcome.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::sync::Weak;
use std::time::Duration;

use astrid_audit::Decision;
use astrid_crypto::ResourcePattern;
use astrid_sandbox::{Actor, Approver};
use astrid_types::wire::{ApprovalDecision, ApprovalRequest, ServerMessage};
use astrid_types::PrincipalId;
use parking_lot::Mutex;
use tokio::sync::mpsc::UnboundedSender;

use crate::kernel::Inner;

struct Waiting {
    principal: PrincipalId,
    answer: mpsc::SyncSender<ApprovalDecision>,
}

#[derive(Default)]
pub(crate) struct Broker {
    /// Approver connections by connection id.
    approvers: Mutex<HashMap<u64, (PrincipalId, UnboundedSender<ServerMessage>)>>,
    waiting: Mutex<HashMap<u64, Waiting>>,
    /// Allow-session answers, forgotten when the daemon stops.
    session: Mutex<HashSet<(PrincipalId, String, String)>>,
}

impl Broker {
    pub fn register(&self, connection: u64, p: PrincipalId, tx: UnboundedSender<ServerMessage>) {
        self.approvers.lock().insert(connection, (p, tx));
    }

    pub fn unregister(&self, connection: u64) {
        self.approvers.lock().remove(&connection);
    }

    /// Hands an answer to the waiting request, if it is `from`'s; anything else is dropped so
    /// one principal can never decide for another.
    pub fn answer(&self, from: &PrincipalId, id: u64, decision: ApprovalDecision) {
        let mut waiting = self.waiting.lock();
        if waiting.get(&id).is_some_and(|w| &w.principal == from) {
            if let Some(w) = waiting.remove(&id) {
                let _ = w.answer.try_send(decision);
            }
        } else {
            tracing::warn!(id, principal = %from, "ignored an approval answer");
        }
    }

    /// Sends the question to the principal's approvers and waits for the first answer.
    fn ask(
        &self,
        req: ApprovalRequest,
        p: &PrincipalId,
        timeout: Duration,
    ) -> (ApprovalDecision, &'static str) {
        let (tx, rx) = mpsc::sync_channel(1);
        let id = req.id;
        self.waiting.lock().insert(
            id,
            Waiting {
                principal: p.clone(),
                answer: tx,
            },
        );
        let mut sent = 0;
        for (who, conn) in self.approvers.lock().values() {
            if who == p
                && conn
                    .send(ServerMessage::ApprovalRequest(req.clone()))
                    .is_ok()
            {
                sent += 1;
            }
        }
        let outcome = if sent == 0 {
            (ApprovalDecision::Deny, "no approver connected")
        } else {
            match rx.recv_timeout(timeout) {
                Ok(d) => (d, "answered"),
                Err(_) => (ApprovalDecision::Deny, "no answer in time"),
            }
        };
        self.waiting.lock().remove(&id);
        outcome
    }
}

/// What a capsule context asks through.
pub(crate) struct PrincipalApprover {
    pub inner: Weak<Inner>,
    pub principal: PrincipalId,
}

impl Approver for PrincipalApprover {
    /// The request names the actor as shown (`tool-shell for borrower`): the human sees which
    /// capsule asked, and a session approval for one never answers for another.
    fn request(
        &self,
        actor: &Actor,
        action: &str,
        resource: &str,
        reason: &str,
        timeout: Duration,
    ) -> Result<ApprovalDecision, String> {
        let inner = self.inner.upgrade().ok_or("the kernel is shutting down")?;
        inner.approve(
            &self.principal,
            &actor.to_string(),
            action,
            resource,
            reason,
            timeout,
        )
    }
}

impl Inner {
    fn approve(
        &self,
        p: &PrincipalId,
        capsule: &str,
        action: &str,
        resource: &str,
        reason: &str,
        timeout: Duration,
    ) -> Result<ApprovalDecision, String> {
        let audit = |decision, outcome: &str| {
            self.record(p, capsule, action, resource, decision, outcome)
                .map_err(|e| e.to_string())
        };
        let key = (p.clone(), capsule.to_string(), resource.to_string());
        if self.approvals.session.lock().contains(&key) {
            audit(Decision::Approved, "allow-session (remembered)")?;
            return Ok(ApprovalDecision::AllowSession);
        }
        let id = self.next_id();
        audit(
            Decision::Recorded,
            &format!("approval {id} requested: {reason}"),
        )?;
        let req = ApprovalRequest {
            id,
            principal: p.to_string(),
            capsule: capsule.to_string(),
            action: action.to_string(),
            resource: resource.to_string(),
            reason: reason.to_string(),
        };
        let (mut decision, why) = self.approvals.ask(req, p, timeout);
        let mut note = String::new();
        match decision {
            ApprovalDecision::AllowAlways => match ResourcePattern::parse(resource) {
                Ok(_) => {
                    let token = self
                        .grant(p, resource, None)
                        .map_err(|e| format!("minting the approved token: {e}"))?;
                    note = format!(", token {}", token.id);
                }
                // Nothing a token could name: the answer holds for this request only.
                Err(_) => {
                    decision = ApprovalDecision::AllowOnce;
                    note = ", not a token pattern: allowed once".into();
                }
            },
            ApprovalDecision::AllowSession => {
                self.approvals.session.lock().insert(key);
            }
            ApprovalDecision::AllowOnce | ApprovalDecision::Deny => {}
        }
        let verdict = if decision == ApprovalDecision::Deny {
            Decision::Rejected
        } else {
            Decision::Approved
        };
        audit(
            verdict,
            &format!("approval {id}: {} ({why}{note})", decision.as_str()),
        )?;
        Ok(decision)
    }
}
