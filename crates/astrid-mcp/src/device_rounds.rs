//! Input rounds over the gateway's stateless `/mcp`. Protocol 2026-07-28 asks for a person's
//! answer inside the call (see `rounds`), so a stateless server can ask too, as long as the
//! call that waits for the answer and the request that brings it meet again. They meet here:
//! one set of rounds per device token, answering on a daemon connection of its own that
//! acts for that token (the gateway supplies a way to open one, [`AnsweringDevice`]). A
//! `requestState` is honoured only by the rounds of the device it was issued to, so another
//! device, even of the same principal, cannot answer for it.
//!
//! A device's rounds are dropped once nothing has used them for [`IDLE`] and no call waits,
//! or once their connection is gone (the daemon restarted, the device was revoked); the next
//! call opens new ones. Closing the connection passes whatever it was still asked.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use astrid_client::Client;
use tokio::sync::OnceCell;

use crate::rounds::Rounds;

/// Rounds nobody used for this long, with no call waiting, are dropped.
pub const IDLE: Duration = Duration::from_secs(10 * 60);
/// Most devices answering through rounds at once; past it a new device's calls are not
/// asked (they are denied unless a token covers them, as without elicitation).
pub const MAX_DEVICES: usize = 256;

/// Opens another daemon connection acting for the same device token.
pub type Connect =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Client, String>> + Send>> + Send + Sync>;

/// What the gateway puts in each `/mcp` request's extensions beside the request's
/// connection: which device token it acts for, and how to open another connection as it.
#[derive(Clone)]
pub struct AnsweringDevice {
    /// A hash of the token (never the token): the device's rounds are found by it.
    pub key: [u8; 32],
    pub connect: Connect,
}

struct Entry {
    rounds: Arc<OnceCell<Option<Arc<Rounds>>>>,
    used: Instant,
}

/// Every device's rounds.
#[derive(Default)]
pub(crate) struct DeviceRounds {
    by_device: Mutex<HashMap<[u8; 32], Entry>>,
}

impl DeviceRounds {
    /// The device's rounds, started on its first call that can be asked. `None` when they
    /// cannot be started: the call then goes on without anyone to ask here.
    pub(crate) async fn get(
        &self,
        device: &AnsweringDevice,
        expire: Duration,
    ) -> Option<Arc<Rounds>> {
        let cell = {
            let mut map = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
            sweep(&mut map, Instant::now());
            if !map.contains_key(&device.key) && map.len() >= MAX_DEVICES {
                tracing::warn!(
                    "{MAX_DEVICES} devices already answer through MCP input rounds; this one's \
                     calls are not asked"
                );
                return None;
            }
            let entry = map.entry(device.key).or_insert_with(|| Entry {
                rounds: Arc::new(OnceCell::new()),
                used: Instant::now(),
            });
            entry.used = Instant::now();
            entry.rounds.clone()
        };
        cell.get_or_init(|| start(device, expire)).await.clone()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_device.lock().unwrap().len()
    }
}

/// Opens a connection acting for `device` and answers its principal's approvals there.
/// `None` when that fails: the call goes on without anyone to ask here.
async fn start(device: &AnsweringDevice, expire: Duration) -> Option<Arc<Rounds>> {
    let conn = match (device.connect)().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("cannot open a connection to answer approvals on: {e}");
            return None;
        }
    };
    Rounds::start(conn, expire)
        .await
        .map_err(|e| tracing::warn!("cannot answer approvals through MCP elicitation: {e}"))
        .ok()
}

/// One MCP session over HTTP (a client on a protocol before 2026-07-28, which the gateway
/// binds to the device that opened it): a connection of its own acting for that device,
/// opened when first needed, on which the session's calls are asked (the forms go to the
/// client as server-to-client requests within the call, `Rounds::ask_within`) and its
/// principal's capsule changes are watched (`notifications/tools/list_changed` on the
/// session's stream). Everything stops when the session ends: its handler, the only holder,
/// is dropped.
#[derive(Default)]
pub(crate) struct Session {
    conn: tokio::sync::Mutex<Option<Client>>,
    rounds: tokio::sync::Mutex<Option<Arc<Rounds>>>,
    watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Session {
    /// The session's connection; opened again if it is gone (the daemon restarted).
    async fn connection(&self, device: &AnsweringDevice) -> Option<Client> {
        let mut conn = self.conn.lock().await;
        if let Some(c) = conn.as_ref().filter(|c| c.is_connected()) {
            return Some(c.clone());
        }
        *conn = (device.connect)()
            .await
            .map_err(|e| tracing::warn!("cannot open a connection for an MCP session: {e}"))
            .ok();
        conn.clone()
    }

    /// The session's rounds; started again if their connection is gone.
    pub(crate) async fn rounds(&self, device: &AnsweringDevice) -> Option<Arc<Rounds>> {
        let mut rounds = self.rounds.lock().await;
        if let Some(r) = rounds.as_ref() {
            if r.is_connected() {
                return Some(r.clone());
            }
            r.stop();
        }
        let conn = self.connection(device).await?;
        *rounds = Rounds::start(conn, crate::elicit::FORM_WAIT)
            .await
            .map_err(|e| tracing::warn!("cannot answer approvals through MCP elicitation: {e}"))
            .ok();
        rounds.clone()
    }

    /// Tells the client each time its principal's capsules change, until the session ends;
    /// once per session.
    pub(crate) async fn watch(
        &self,
        device: &AnsweringDevice,
        peer: rmcp::Peer<rmcp::service::RoleServer>,
    ) {
        if self.lock_watcher().is_some() {
            return;
        }
        let Some(conn) = self.connection(device).await else {
            return;
        };
        let mut changes = match conn.subscribe(crate::server::CAPSULE_CHANGED).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot watch capsule changes for an MCP session: {e}");
                return;
            }
        };
        let task = tokio::spawn(async move {
            while changes.next().await.is_some() {
                if peer.notify_tool_list_changed().await.is_err() {
                    break;
                }
            }
        });
        if let Some(old) = self.lock_watcher().replace(task) {
            old.abort();
        }
    }

    fn lock_watcher(&self) -> std::sync::MutexGuard<'_, Option<tokio::task::JoinHandle<()>>> {
        self.watcher.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(w) = self.lock_watcher().take() {
            w.abort();
        }
        if let Some(r) = self.rounds.get_mut().take() {
            r.stop();
        }
    }
}

/// Drops rounds that failed to start (the next call tries again), lost their connection, or
/// sat idle past [`IDLE`] with no call waiting.
fn sweep(map: &mut HashMap<[u8; 32], Entry>, now: Instant) {
    map.retain(|_, e| {
        let keep = match e.rounds.get() {
            // Being started by a call right now.
            None => true,
            Some(None) => false,
            Some(Some(r)) => {
                r.is_connected() && (now.duration_since(e.used) < IDLE || !r.is_idle())
            }
        };
        if !keep {
            if let Some(Some(r)) = e.rounds.get() {
                r.stop();
            }
        }
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusing(key: u8) -> AnsweringDevice {
        AnsweringDevice {
            key: [key; 32],
            connect: Arc::new(|| Box::pin(async { Err("the daemon is not running".into()) })),
        }
    }

    #[tokio::test]
    async fn a_device_whose_connection_fails_is_not_asked_and_tried_again_later() {
        let devices = DeviceRounds::default();
        assert!(devices
            .get(&refusing(1), Duration::from_secs(1))
            .await
            .is_none());
        // The failure is kept only until the next call, which sweeps it and tries again.
        assert_eq!(devices.len(), 1);
        assert!(devices
            .get(&refusing(2), Duration::from_secs(1))
            .await
            .is_none());
        assert_eq!(devices.len(), 1, "device 1's failure was swept");
    }
}
