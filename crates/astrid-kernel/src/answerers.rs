//! What the kernel hands a capsule context to reach its principal's people and screens, and
//! the registries of connections that answer for a principal.

use std::collections::HashMap;
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

    /// Sends `msg` to each of `p`'s answering connections; how many took it.
    pub fn send(&self, p: &PrincipalId, msg: &ServerMessage) -> usize {
        self.0
            .lock()
            .values()
            .filter(|(who, conn)| who == p && conn.send(msg.clone()).is_ok())
            .count()
    }
}
