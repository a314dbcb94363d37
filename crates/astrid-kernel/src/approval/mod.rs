//! The approval broker: a capsule's question goes to the approver connections of its own
//! principal, and the first answer from that principal wins. Nobody to ask, or no answer in
//! time, is a denial. Every question and decision is in the principal's audit chain before
//! the capsule learns the outcome.
//!
//! The request a person sees is built here: the resource from the typed effect
//! ([`scope::resource_of`]), the capsule's own words apart, every text escaped, and what
//! allow-always would mint decided up front ([`scope::always_offer`]). Who answered (a
//! person or `--yes`) is recorded with the decision; `--yes` never counts as more than
//! allow-once.

mod scope;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use astrid_audit::Decision;
use astrid_sandbox::{ApprovalAsk, Approver};
use astrid_types::text::escape_controls;
use astrid_types::wire::{AnsweredBy, ApprovalDecision, ApprovalRequest, ServerMessage};
use astrid_types::PrincipalId;
use parking_lot::Mutex;
use tokio::sync::mpsc::UnboundedSender;

use crate::answerers::{Answerers, Asked, ForPrincipal};
use crate::kernel::Inner;

struct Waiting {
    principal: PrincipalId,
    /// An answer, or `None` once every connection asked has passed.
    answer: mpsc::SyncSender<Option<(ApprovalDecision, AnsweredBy)>>,
    asked: Asked,
}

impl crate::answerers::Pending for Waiting {
    fn principal(&self) -> &PrincipalId {
        &self.principal
    }
    fn asked(&mut self) -> &mut Asked {
        &mut self.asked
    }
    fn nobody(self) {
        let _ = self.answer.try_send(None);
    }
}

#[derive(Default)]
pub(crate) struct Broker {
    approvers: Answerers,
    waiting: Mutex<HashMap<u64, Waiting>>,
    /// Allow-session answers, forgotten when the daemon stops.
    session: Mutex<HashSet<(PrincipalId, String, String)>>,
}

impl Broker {
    pub fn register(&self, connection: u64, p: PrincipalId, tx: UnboundedSender<ServerMessage>) {
        self.approvers.register(connection, p, tx);
    }

    pub fn unregister(&self, connection: u64) {
        self.approvers.unregister(connection);
        crate::answerers::pass_all(&self.waiting, connection);
    }

    /// `from`'s connection will not answer request `id`; the last pass denies it at once.
    pub fn pass(&self, from: &PrincipalId, connection: u64, id: u64) {
        crate::answerers::pass(&self.waiting, from, connection, id);
    }

    /// Hands an answer to the waiting request, if it is `from`'s; anything else is dropped so
    /// one principal can never decide for another.
    pub fn answer(&self, from: &PrincipalId, id: u64, decision: ApprovalDecision, by: AnsweredBy) {
        let mut waiting = self.waiting.lock();
        if waiting.get(&id).is_some_and(|w| &w.principal == from) {
            if let Some(w) = waiting.remove(&id) {
                let _ = w.answer.try_send(Some((decision, by)));
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
    ) -> (ApprovalDecision, Option<AnsweredBy>, &'static str) {
        let (tx, rx) = mpsc::sync_channel(1);
        let id = req.id;
        let nobody = {
            // Sent under the lock, so a pass cannot arrive before its asking is on record.
            let mut waiting = self.waiting.lock();
            let asked = self
                .approvers
                .send(p, &ServerMessage::ApprovalRequest(req.clone()));
            let nobody = asked.is_empty();
            waiting.insert(
                id,
                Waiting {
                    principal: p.clone(),
                    answer: tx,
                    asked,
                },
            );
            nobody
        };
        let outcome = if nobody {
            (ApprovalDecision::Deny, None, "no approver connected")
        } else {
            match rx.recv_timeout(timeout) {
                Ok(Some((d, by))) => (d, Some(by), "answered"),
                Ok(None) => (
                    ApprovalDecision::Deny,
                    None,
                    "every approver asked passed or left",
                ),
                Err(_) => (ApprovalDecision::Deny, None, "no answer in time"),
            }
        };
        self.waiting.lock().remove(&id);
        outcome
    }
}

impl Approver for ForPrincipal {
    fn request(&self, ask: ApprovalAsk, timeout: Duration) -> Result<ApprovalDecision, String> {
        let inner = self.inner.upgrade().ok_or("the kernel is shutting down")?;
        inner.approve(&self.principal, ask, timeout)
    }
}

/// The user's home directory, for the wideness rule (`~/**` is never allowed always).
fn user_home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute())
}

impl Inner {
    pub(crate) fn approve(
        &self,
        p: &PrincipalId,
        ask: ApprovalAsk,
        timeout: Duration,
    ) -> Result<ApprovalDecision, String> {
        let capsule = ask.actor.to_string();
        let resource = scope::resource_of(&ask.asked);
        let (always, mintable) = scope::always_offer(&ask, user_home().as_deref());
        // Audit entries keep the escaped text too: `astrid audit show` prints them.
        let shown = escape_controls(&resource.pattern());
        let audit = |decision, outcome: &str| {
            self.record(p, &capsule, &ask.action, &shown, decision, outcome)
                .map_err(|e| e.to_string())
        };
        // A run-time local-egress answer is remembered apart from a capability answer for the
        // same target: allowing "connect to nas.lan:80" is not knowing it is on your LAN.
        let remembered = match scope::local_egress_target(&ask) {
            Some(_) => format!("{} {}", ask.action, resource.pattern()),
            None => resource.pattern(),
        };
        let key = (p.clone(), capsule.clone(), remembered);
        if self.approvals.session.lock().contains(&key) {
            audit(Decision::Approved, "allow-session (remembered)")?;
            return Ok(ApprovalDecision::AllowSession);
        }
        let id = self.next_id();
        let words = match &ask.capsule_says {
            Some(w) => format!(
                ": capsule says {:?} because {:?}",
                escape_controls(&w.action),
                escape_controls(&w.reason)
            ),
            None => format!(": {}", escape_controls(&ask.detail)),
        };
        audit(
            Decision::Recorded,
            &format!("approval {id} requested{words}"),
        )?;
        let req = ApprovalRequest {
            id,
            principal: p.to_string(),
            capsule: capsule.clone(),
            action: ask.action.clone(),
            resource,
            detail: ask.detail.clone(),
            capsule_says: ask.capsule_says.clone(),
            always,
        }
        .escaped();
        let (mut decision, by, why) = self.approvals.ask(req, p, timeout);
        let mut note = String::new();
        if by == Some(AnsweredBy::AutoNo) && decision != ApprovalDecision::Deny {
            decision = ApprovalDecision::Deny;
            note.push_str(", an automatic no allows nothing");
        }
        if by == Some(AnsweredBy::AutoYes)
            && matches!(
                decision,
                ApprovalDecision::AllowSession | ApprovalDecision::AllowAlways
            )
        {
            // An automatic approver answers each prompt once; it never grants for later.
            decision = ApprovalDecision::AllowOnce;
            note.push_str(", an automatic answer counts once");
        }
        if by == Some(AnsweredBy::McpClient) && decision == ApprovalDecision::AllowAlways {
            // A form rendered by a host we do not control never mints a lasting token;
            // `astrid mcp serve` does not offer it, and this holds if something else did.
            decision = ApprovalDecision::AllowSession;
            note.push_str(", an MCP client's answer lasts the session at most");
        }
        match decision {
            ApprovalDecision::AllowAlways => match (scope::local_egress_target(&ask), mintable) {
                (Some(target), _) => {
                    self.egress_allow(p, ask.actor.capsule.as_ref(), &target, true)
                        .map_err(|e| format!("remembering the consent: {e}"))?;
                    note.push_str(&format!(
                        ", local-egress consent for {} remembered",
                        ask.actor.capsule
                    ));
                }
                (None, mintable) => match mintable {
                    Some(pattern) => {
                        let token = self
                            .grant_pattern(p, pattern, Some(ask.actor.capsule.clone()), None)
                            .map_err(|e| format!("minting the approved token: {e}"))?;
                        note.push_str(&format!(
                            ", token {} bound to {}",
                            token.id, ask.actor.capsule
                        ));
                    }
                    None => {
                        decision = ApprovalDecision::AllowOnce;
                        note.push_str(", allow-always not offered: allowed once");
                    }
                },
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
        let who = match by {
            Some(AnsweredBy::Person) => " by a person",
            Some(AnsweredBy::AutoYes) => " by auto-yes (astrid -p --yes), not a person",
            Some(AnsweredBy::AutoNo) => " by auto-no (astrid -p without --yes), not a person",
            Some(AnsweredBy::McpClient) => " through the MCP client's elicitation form",
            None => "",
        };
        audit(
            verdict,
            &format!("approval {id}: {} ({why}{who}{note})", decision.as_str()),
        )?;
        Ok(decision)
    }
}
