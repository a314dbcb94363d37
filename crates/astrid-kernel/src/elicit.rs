//! The elicitation broker (`astrid:elicit`): a capsule's question goes to the connections
//! of its own principal that registered to answer (`astrid chat`), and the first answer
//! that fits the question wins. Nobody to ask or no answer in time is the capsule's to
//! handle, never an answer. The question (the capsule's own words) and how it ended are in
//! the principal's audit chain before the capsule learns the answer; the answer never is.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use astrid_audit::Decision;
use astrid_sandbox::{ElicitAsk, Elicited, Elicitor};
use astrid_types::elicit::{ElicitAnswer, ElicitKind, ElicitRequest};
use astrid_types::text::escape_controls;
use astrid_types::wire::ServerMessage;
use astrid_types::PrincipalId;
use parking_lot::Mutex;
use tokio::sync::mpsc::UnboundedSender;

use crate::answerers::{Answerers, Asked, ForPrincipal};
use crate::kernel::Inner;

struct Waiting {
    principal: PrincipalId,
    kind: ElicitKind,
    /// An answer, or `None` once everyone asked has passed.
    answer: mpsc::SyncSender<Option<ElicitAnswer>>,
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
pub(crate) struct Elicitations {
    elicitors: Answerers,
    /// The subset that also takes secrets.
    secret_takers: Answerers,
    waiting: Mutex<HashMap<u64, Waiting>>,
}

impl Elicitations {
    pub fn register(
        &self,
        connection: u64,
        p: PrincipalId,
        tx: UnboundedSender<ServerMessage>,
        secrets: bool,
    ) {
        if secrets {
            self.secret_takers
                .register(connection, p.clone(), tx.clone());
        }
        self.elicitors.register(connection, p, tx);
    }

    pub fn unregister(&self, connection: u64) {
        self.elicitors.unregister(connection);
        self.secret_takers.unregister(connection);
        crate::answerers::pass_all(&self.waiting, connection);
    }

    /// `from`'s connection will not answer question `id`; the last pass ends the wait.
    pub fn pass(&self, from: &PrincipalId, connection: u64, id: u64) {
        crate::answerers::pass(&self.waiting, from, connection, id);
    }

    pub fn answer(&self, from: &PrincipalId, id: u64, answer: ElicitAnswer) {
        let mut waiting = self.waiting.lock();
        let fits = waiting
            .get(&id)
            .is_some_and(|w| &w.principal == from && w.kind.accepts(&answer).is_ok());
        if !fits {
            tracing::warn!(id, principal = %from, "ignored an elicitation answer");
            return;
        }
        if let Some(w) = waiting.remove(&id) {
            let _ = w.answer.try_send(Some(answer));
        }
    }

    /// Sends the question to the principal's answering connections and waits for the
    /// first fitting answer.
    fn ask(&self, req: ElicitRequest, p: &PrincipalId, timeout: Duration) -> Elicited {
        let (tx, rx) = mpsc::sync_channel(1);
        let id = req.id;
        let to = match req.kind {
            ElicitKind::Secret { .. } => &self.secret_takers,
            _ => &self.elicitors,
        };
        let nobody = {
            // Sent under the lock, so a pass cannot arrive before its asking is on record.
            let mut waiting = self.waiting.lock();
            let kind = req.kind.clone();
            let asked = to.send(p, &ServerMessage::ElicitRequest(req));
            let nobody = asked.is_empty();
            waiting.insert(
                id,
                Waiting {
                    principal: p.clone(),
                    kind,
                    answer: tx,
                    asked,
                },
            );
            nobody
        };
        let outcome = if nobody {
            Elicited::NobodyToAsk
        } else {
            match rx.recv_timeout(timeout) {
                Ok(Some(answer)) => Elicited::Answer(answer),
                // Everyone asked passed or left: nobody would answer it.
                Ok(None) => Elicited::NobodyToAsk,
                Err(_) => Elicited::TimedOut,
            }
        };
        self.waiting.lock().remove(&id);
        outcome
    }
}

impl Elicitor for ForPrincipal {
    fn ask(&self, ask: ElicitAsk, timeout: Duration) -> Result<Elicited, String> {
        let inner = self.inner.upgrade().ok_or("the kernel is shutting down")?;
        inner.elicit(&self.principal, ask, timeout)
    }
}

impl Inner {
    fn elicit(
        &self,
        p: &PrincipalId,
        ask: ElicitAsk,
        timeout: Duration,
    ) -> Result<Elicited, String> {
        let capsule = ask.actor.to_string();
        let (action, resource) = ask.kind.audit_names();
        let audit = |decision, outcome: &str| {
            self.record(p, &capsule, action, resource, decision, outcome)
                .map_err(|e| e.to_string())
        };
        let id = self.next_id();
        audit(
            Decision::Recorded,
            &format!(
                "question {id} (the capsule's words): {:?}",
                escape_controls(&ask.prompt)
            ),
        )?;
        let req = ElicitRequest {
            id,
            principal: p.to_string(),
            capsule: capsule.clone(),
            prompt: ask.prompt,
            kind: ask.kind,
            timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
        }
        .escaped();
        let secret = match &req.kind {
            ElicitKind::Secret { name, origin } => Some((name.clone(), origin.clone())),
            _ => None,
        };
        let mut outcome = self.elicitations.ask(req, p, timeout);
        // A typed secret goes to the store, bound to its declared origin; the capsule
        // learns only that it is there.
        if let (Some((name, origin)), Elicited::Answer(ElicitAnswer::Text(value))) =
            (&secret, &mut outcome)
        {
            // Moved, not copied, so the only copy is wiped when it is stored.
            let value = zeroize::Zeroizing::new(std::mem::take(value));
            self.secret_set(p, ask.actor.capsule.as_str(), name, &value, origin)
                .map_err(|e| format!("storing the secret: {e}"))?;
            outcome = Elicited::SecretStored;
        }
        // The answer is the person's words to this capsule: the chain says that they
        // answered, never what.
        let (decision, how) = match &outcome {
            Elicited::Answer(ElicitAnswer::Declined) => {
                (Decision::Rejected, "declined by a person")
            }
            Elicited::Answer(_) => (Decision::Approved, "answered by a person"),
            Elicited::SecretStored => (Decision::Approved, "a person typed the secret; stored"),
            Elicited::NobodyToAsk => (Decision::Rejected, "nobody connected answers questions"),
            Elicited::TimedOut => (Decision::Rejected, "no answer in time"),
        };
        audit(decision, &format!("question {id}: {how}"))?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_principals_fitting_answer_is_taken() {
        let e = Elicitations::default();
        let (alice, bob) = (
            PrincipalId::new("alice").unwrap(),
            PrincipalId::new("bob").unwrap(),
        );
        let (tx, rx) = mpsc::sync_channel(1);
        e.waiting.lock().insert(
            7,
            Waiting {
                principal: alice.clone(),
                kind: ElicitKind::Choice {
                    options: vec!["a".into(), "b".into()],
                },
                answer: tx,
                asked: Asked::default(),
            },
        );
        // Another principal's answer, and an option not offered, are dropped; the question
        // still waits for its own principal.
        e.answer(&bob, 7, ElicitAnswer::Choice(0));
        e.answer(&alice, 7, ElicitAnswer::Choice(2));
        assert!(rx.try_recv().is_err());
        e.answer(&alice, 7, ElicitAnswer::Choice(1));
        assert_eq!(rx.try_recv().unwrap(), Some(ElicitAnswer::Choice(1)));
        assert!(e.waiting.lock().is_empty());
        let (tx, rx) = mpsc::sync_channel(1);
        e.waiting.lock().insert(
            8,
            Waiting {
                principal: alice.clone(),
                kind: ElicitKind::Text,
                answer: tx,
                asked: Asked::default(),
            },
        );
        e.answer(&alice, 8, ElicitAnswer::Text("main".into()));
        assert_eq!(
            rx.try_recv().unwrap(),
            Some(ElicitAnswer::Text("main".into()))
        );
    }
}
