//! What the kernel hands a capsule context to reach its principal's people and screens, and
//! the registries of connections that answer for a principal.

use std::collections::{HashMap, HashSet};
use std::sync::Weak;

use astrid_types::wire::ServerMessage;
use astrid_types::PrincipalId;
use parking_lot::Mutex;
use tokio::sync::mpsc::UnboundedSender;

use crate::kernel::Inner;

/// One principal, as a capsule context reaches it through the kernel: its approvers
/// (`astrid_sandbox::Approver`), its people for questions (`Elicitor`) and its frontends
/// (`Frontends`). Weak, so a cached context does not keep a stopped kernel alive.
pub(crate) struct ForPrincipal {
    pub inner: Weak<Inner>,
    pub principal: PrincipalId,
}

/// Connections that answer one kind of question (approvals, elicitations) for their
/// principal, by connection id.
#[derive(Default)]
pub(crate) struct Answerers(Mutex<HashMap<u64, (PrincipalId, UnboundedSender<ServerMessage>)>>);

impl Answerers {
    pub fn register(&self, connection: u64, p: PrincipalId, tx: UnboundedSender<ServerMessage>) {
        self.0.lock().insert(connection, (p, tx));
    }

    pub fn unregister(&self, connection: u64) {
        self.0.lock().remove(&connection);
    }

    /// Sends `msg` to each of `p`'s answering connections; the ones that took it.
    pub fn send(&self, p: &PrincipalId, msg: &ServerMessage) -> Asked {
        let to = self
            .0
            .lock()
            .iter()
            .filter(|(_, (who, conn))| who == p && conn.send(msg.clone()).is_ok())
            .map(|(id, _)| *id)
            .collect();
        Asked {
            to,
            passed: HashSet::new(),
        }
    }
}

/// A question waiting for an answer, as the pass rules see it.
pub(crate) trait Pending {
    fn principal(&self) -> &PrincipalId;
    fn asked(&mut self) -> &mut Asked;
    /// Everyone asked passed: end the wait with nobody's answer.
    fn nobody(self);
}

/// `from`'s `connection` will not answer question `id` of `waiting`; the last pass ends it.
/// A pass from another principal's connection counts for nothing.
pub(crate) fn pass<W: Pending>(
    waiting: &Mutex<HashMap<u64, W>>,
    from: &PrincipalId,
    connection: u64,
    id: u64,
) {
    let mut waiting = waiting.lock();
    let all = waiting
        .get_mut(&id)
        .is_some_and(|w| w.principal() == from && w.asked().pass(connection));
    if all {
        if let Some(w) = waiting.remove(&id) {
            w.nobody();
        }
    }
}

/// A closed `connection` answers nothing it was asked: its pass on every waiting question.
pub(crate) fn pass_all<W: Pending>(waiting: &Mutex<HashMap<u64, W>>, connection: u64) {
    let mut waiting = waiting.lock();
    let done: Vec<u64> = waiting
        .iter_mut()
        .filter_map(|(id, w)| w.asked().pass(connection).then_some(*id))
        .collect();
    for id in done {
        if let Some(w) = waiting.remove(&id) {
            w.nobody();
        }
    }
}

/// Which connections a question went to, and which of them said they will not answer it
/// (`ApprovalPass`, `ElicitPass`, or closing).
#[derive(Debug, Default)]
pub(crate) struct Asked {
    to: HashSet<u64>,
    passed: HashSet<u64>,
}

impl Asked {
    pub fn is_empty(&self) -> bool {
        self.to.is_empty()
    }

    /// Records `connection`'s pass; true once everyone asked has passed.
    pub fn pass(&mut self, connection: u64) -> bool {
        if self.to.contains(&connection) {
            self.passed.insert(connection);
        }
        !self.to.is_empty() && self.passed.len() == self.to.len()
    }
}
