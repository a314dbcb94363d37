//! The thread list of each pooled connection, kept between requests and dropped when it may
//! have changed.
//!
//! A list costs the daemon a session-capsule invocation (a Wasm instance, a kv scan, a JSON
//! encode); a busy client reads it far more often than it changes. So each pooled daemon
//! connection (one per device token) keeps the last list it fetched, and a watcher on that
//! same connection subscribes to `session.v1.changed` (the session capsule publishes it after
//! every change) and `astrid.v1.capsule.changed` (the kernel's: a capsule installed, updated or
//! removed). Either drops the copy, as does age (`MAX_AGE`: the backstop for a session
//! capsule too old to publish, and for the operator taking the session capsule away from the
//! principal, which announces nothing; for at most that long the last list is still served).
//!
//! What does not change: the copy is the answer the kernel gave *this token's* connection and
//! is only ever served to requests bearing the same token (the pool's key), after the request
//! passed the rate limit and the pool found that connection still open. A revoked or expired
//! device has its connections closed by the kernel: the pool sees it at once and reconnects,
//! the kernel refuses (401), and the watcher, whose subscription ended with the connection,
//! removes the copy. Events reach only the principal they belong to, so another principal's
//! activity never touches this copy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use astrid_client::Client;

use crate::agent::{self, Thread};
use crate::error::ApiError;

/// The longest a copy is served without a fresh read, whatever the events say (the default
/// of `GatewayConfig::list_max_age`).
pub const MAX_AGE: Duration = Duration::from_secs(1);
const WATCHED: [&str; 2] = ["session.v1.changed", "astrid.v1.capsule.changed"];

struct Entry {
    /// The connection the copy was read on; another one (a reconnect) starts afresh.
    connection: u64,
    /// Bumped by every event; a read that started before a bump is not kept.
    generation: Arc<AtomicU64>,
    copy: Option<(Arc<Vec<Thread>>, Instant)>,
}

pub struct ListCache {
    entries: Arc<Mutex<HashMap<[u8; 32], Entry>>>,
    max_age: Duration,
}

impl ListCache {
    pub fn new(max_age: Duration) -> ListCache {
        ListCache {
            entries: Default::default(),
            max_age,
        }
    }

    /// The principal's threads as `client` (the pooled connection of token `key`) sees them.
    pub async fn list(&self, key: [u8; 32], client: &Client) -> Result<Arc<Vec<Thread>>, ApiError> {
        let connection = client.connection_id();
        let known = {
            let entries = lock(&self.entries);
            entries
                .get(&key)
                .filter(|e| e.connection == connection)
                .map(|e| (e.copy.clone(), e.generation.load(Ordering::Acquire)))
        };
        let generation = match known {
            Some((Some((list, at)), _)) if at.elapsed() < self.max_age => return Ok(list),
            Some((_, generation)) => generation,
            None => self.watch(key, client).await?,
        };
        let list = Arc::new(agent::list(client).await?);
        let mut entries = lock(&self.entries);
        if let Some(e) = entries.get_mut(&key) {
            // An event that arrived while the read was in flight may describe a change the read
            // did not see: then the copy is not kept (this request still gets what it read).
            if e.connection == connection && e.generation.load(Ordering::Acquire) == generation {
                e.copy = Some((list.clone(), Instant::now()));
            }
        }
        Ok(list)
    }

    /// Forgets the copy of token `key` (after a change made through the gateway itself, so its
    /// own client reads its write even before the event arrives).
    pub fn forget(&self, key: [u8; 32]) {
        if let Some(e) = lock(&self.entries).get_mut(&key) {
            e.generation.fetch_add(1, Ordering::AcqRel);
            e.copy = None;
        }
    }

    /// Registers the entry of `key` for `client`'s connection with a watcher subscribed on
    /// that connection; returns the entry's generation.
    async fn watch(&self, key: [u8; 32], client: &Client) -> Result<u64, ApiError> {
        let mut changed = client
            .subscribe(WATCHED[0])
            .await
            .map_err(ApiError::from_client)?;
        let mut capsules = client
            .subscribe(WATCHED[1])
            .await
            .map_err(ApiError::from_client)?;
        let connection = client.connection_id();
        let generation = Arc::new(AtomicU64::new(0));
        {
            let mut entries = lock(&self.entries);
            if let Some(e) = entries.get(&key).filter(|e| e.connection == connection) {
                // A concurrent request registered it first; its watcher serves both.
                return Ok(e.generation.load(Ordering::Acquire));
            }
            entries.insert(
                key,
                Entry {
                    connection,
                    generation: generation.clone(),
                    copy: None,
                },
            );
        }
        let entries = self.entries.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    e = changed.next() => e,
                    e = capsules.next() => e,
                };
                let mut map = lock(&entries);
                let Some(e) = map.get_mut(&key).filter(|e| e.connection == connection) else {
                    // A newer connection took this token's place; its own watcher serves it.
                    return;
                };
                if event.is_none() {
                    // The connection closed (revoked, expired, daemon gone): the copy goes too.
                    map.remove(&key);
                    return;
                }
                generation.fetch_add(1, Ordering::AcqRel);
                e.copy = None;
            }
        });
        Ok(0)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
