//! The principals' connected clients, as `astrid:uplink` sees them, and the notices capsules
//! send them. A connection is attached once its handshake has named its principal and
//! credential, and detached when it closes; a notice goes on the bus to the principal's
//! client subscriptions only (see `Subscriptions::deliver_to_clients`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use astrid_sandbox::{Chain, Origin};
use astrid_types::uplink::{FrontendInfo, Notice, NoticeLevel, NOTICE_TOPIC};
use astrid_types::{CapsuleName, PrincipalId};
use parking_lot::{Mutex, RwLock};

use crate::answerers::ForPrincipal;
use crate::bus::Envelope;

/// How many notices one capsule may send one principal's frontends per [`WINDOW`]: a
/// capsule that loops on `notify` must not bury the person's screen (nor its audit chain).
pub(crate) const NOTICES_PER_WINDOW: u32 = 30;
const WINDOW: Duration = Duration::from_secs(60);

struct Connected {
    principal: PrincipalId,
    client: String,
    credential: String,
}

struct Window {
    started: Instant,
    sent: u32,
}

#[derive(Default)]
pub(crate) struct Frontends {
    connected: RwLock<HashMap<u64, Connected>>,
    windows: Mutex<HashMap<(PrincipalId, CapsuleName), Window>>,
}

impl Frontends {
    pub fn attach(
        &self,
        connection: u64,
        principal: PrincipalId,
        client: &str,
        credential: String,
    ) {
        self.connected.write().insert(
            connection,
            Connected {
                principal,
                client: client.to_string(),
                credential,
            },
        );
    }

    pub fn detach(&self, connection: u64) {
        self.connected.write().remove(&connection);
    }

    /// `(connection, client, credential)` of each of `principal`'s connections, oldest first.
    fn of(&self, principal: &PrincipalId) -> Vec<(u64, String, String)> {
        let mut list: Vec<_> = self
            .connected
            .read()
            .iter()
            .filter(|(_, c)| c.principal == *principal)
            .map(|(id, c)| (*id, c.client.clone(), c.credential.clone()))
            .collect();
        list.sort_by_key(|(id, _, _)| *id);
        list
    }

    /// Counts one notice against `capsule`'s allowance for `principal`.
    fn admit(
        &self,
        principal: &PrincipalId,
        capsule: &CapsuleName,
        now: Instant,
    ) -> Result<(), String> {
        let mut windows = self.windows.lock();
        let w = windows
            .entry((principal.clone(), capsule.clone()))
            .or_insert(Window {
                started: now,
                sent: 0,
            });
        if now.duration_since(w.started) >= WINDOW {
            *w = Window {
                started: now,
                sent: 0,
            };
        }
        if w.sent >= NOTICES_PER_WINDOW {
            let left = WINDOW.saturating_sub(now.duration_since(w.started));
            return Err(format!(
                "capsule `{capsule}` sent {NOTICES_PER_WINDOW} notices this minute, the most \
                 the kernel delivers; the next one is taken in {} s",
                left.as_secs().max(1)
            ));
        }
        w.sent += 1;
        Ok(())
    }
}

impl astrid_sandbox::Frontends for ForPrincipal {
    fn list(&self) -> Vec<FrontendInfo> {
        let Some(inner) = self.inner.upgrade() else {
            return Vec::new();
        };
        inner
            .frontends
            .of(&self.principal)
            .into_iter()
            .map(|(connection, client, credential)| FrontendInfo {
                shows_notices: inner.subs.client_listens(connection, NOTICE_TOPIC),
                client,
                credential,
            })
            .collect()
    }

    fn admit(&self, from: &Origin) -> Result<(), String> {
        let Some(inner) = self.inner.upgrade() else {
            return Err("the kernel is shutting down".into());
        };
        inner
            .frontends
            .admit(&from.principal, &from.capsule, Instant::now())
    }

    fn notify(&self, from: &Origin, level: NoticeLevel, text: &str) -> usize {
        let Some(inner) = self.inner.upgrade() else {
            return 0;
        };
        let notice = Notice {
            capsule: from.capsule.clone(),
            level,
            text: text.to_string(),
        };
        let payload = serde_json::to_vec(&notice).expect("a notice serializes");
        let source = from.source();
        inner.subs.deliver_to_clients(&Envelope {
            topic: NOTICE_TOPIC.to_string(),
            payload: Arc::new(payload),
            chain: Chain::from_principal(source.clone()),
            source,
            // The context's principal, never the capsule's word: one tenant's capsule
            // reaches only that tenant's screens.
            principal: self.principal.clone(),
            depth: 0,
            reply: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowance_is_per_capsule_and_principal_and_refills_after_a_minute() {
        let f = Frontends::default();
        let (alice, bob) = (
            PrincipalId::new("alice").unwrap(),
            PrincipalId::new("bob").unwrap(),
        );
        let (chatty, quiet) = (
            CapsuleName::new("chatty").unwrap(),
            CapsuleName::new("quiet").unwrap(),
        );
        let t0 = Instant::now();
        for _ in 0..NOTICES_PER_WINDOW {
            f.admit(&alice, &chatty, t0).unwrap();
        }
        let why = f
            .admit(&alice, &chatty, t0 + Duration::from_secs(10))
            .unwrap_err();
        assert!(
            why.contains("sent 30 notices this minute") && why.contains("in 50 s"),
            "{why}"
        );
        // Another capsule, another principal: their own allowance.
        f.admit(&alice, &quiet, t0).unwrap();
        f.admit(&bob, &chatty, t0).unwrap();
        f.admit(&alice, &chatty, t0 + WINDOW).unwrap();
    }

    #[test]
    fn a_principal_sees_only_its_own_connections() {
        let f = Frontends::default();
        let (alice, bob) = (
            PrincipalId::new("alice").unwrap(),
            PrincipalId::new("bob").unwrap(),
        );
        f.attach(7, alice.clone(), "astrid-cli", "operator".into());
        f.attach(3, alice.clone(), "astrid-gateway", "device:d1".into());
        f.attach(5, bob.clone(), "astrid-cli", "operator".into());
        let ids: Vec<u64> = f.of(&alice).into_iter().map(|(id, _, _)| id).collect();
        assert_eq!(ids, [3, 7]);
        f.detach(3);
        assert_eq!(f.of(&alice).len(), 1);
        assert_eq!(f.of(&bob)[0].1, "astrid-cli");
    }
}
