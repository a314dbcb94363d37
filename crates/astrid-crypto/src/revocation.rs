//! The global revocation list. In memory for O(1) checks on every use; a
//! [`RevocationStore`] (the kernel backs it with SQLite) makes it survive restarts.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::error::CryptoError;
use crate::token::TokenId;

pub type StoreError = Box<dyn std::error::Error + Send + Sync>;

/// Where revocations are persisted.
pub trait RevocationStore: Send + Sync {
    /// Every revoked id. An error makes the list deny everything.
    fn load_all(&self) -> Result<Vec<TokenId>, StoreError>;
    /// Records one revocation durably.
    fn persist(&self, id: &TokenId) -> Result<(), StoreError>;
}

#[derive(Default)]
struct State {
    revoked: HashSet<TokenId>,
    /// Set when the list cannot be trusted to be complete: then every id counts as revoked.
    poisoned: Option<String>,
}

/// A cheap-to-clone handle; all clones share one set, so the kernel can keep one for
/// `revoke` and hand another to each [`Gate`](crate::Gate).
#[derive(Clone, Default)]
pub struct RevocationList {
    state: Arc<RwLock<State>>,
    store: Option<Arc<dyn RevocationStore>>,
}

/// What the gate learns from one revocation lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Revocation {
    Poisoned(String),
    Revoked(TokenId),
}

impl RevocationList {
    /// An empty list kept only in memory.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Loads every revoked id from `store`. If that fails the list is poisoned (denies
    /// everything) instead of starting empty: an unreadable list must not unrevoke.
    pub fn with_store(store: Arc<dyn RevocationStore>) -> Self {
        let state = match store.load_all() {
            Ok(ids) => State {
                revoked: ids.into_iter().collect(),
                poisoned: None,
            },
            Err(e) => State {
                revoked: HashSet::new(),
                poisoned: Some(format!("cannot load revocations: {e}")),
            },
        };
        RevocationList {
            state: Arc::new(RwLock::new(state)),
            store: Some(store),
        }
    }

    /// A list that treats every token as revoked, for when the revocation source is
    /// unreadable.
    pub fn poisoned(reason: impl Into<String>) -> Self {
        let list = Self::default();
        list.poison(reason);
        list
    }

    /// Switches a live list (and every clone of it) to deny-all.
    pub fn poison(&self, reason: impl Into<String>) {
        self.state.write().poisoned = Some(reason.into());
    }

    pub fn poison_reason(&self) -> Option<String> {
        self.state.read().poisoned.clone()
    }

    /// Revokes `id`. It takes effect in memory before persisting, so even when the store
    /// fails the token is already refused in this process; the error tells the caller the
    /// revocation may not survive a restart.
    pub fn revoke(&self, id: TokenId) -> Result<(), CryptoError> {
        self.state.write().revoked.insert(id);
        if let Some(store) = &self.store {
            store.persist(&id).map_err(|e| {
                CryptoError::Revocation(format!(
                    "revoked {id} in memory, but persisting failed: {e}"
                ))
            })?;
        }
        Ok(())
    }

    /// True when `id` is revoked, or when the list is poisoned.
    pub fn is_revoked(&self, id: &TokenId) -> bool {
        let state = self.state.read();
        state.poisoned.is_some() || state.revoked.contains(id)
    }

    pub fn len(&self) -> usize {
        self.state.read().revoked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// First problem among `ids` under one lock acquisition.
    pub(crate) fn first_revoked<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a TokenId>,
    ) -> Option<Revocation> {
        let state = self.state.read();
        if let Some(reason) = &state.poisoned {
            return Some(Revocation::Poisoned(reason.clone()));
        }
        ids.into_iter()
            .find(|id| state.revoked.contains(*id))
            .map(|id| Revocation::Revoked(*id))
    }
}

impl std::fmt::Debug for RevocationList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.read();
        f.debug_struct("RevocationList")
            .field("revoked", &state.revoked.len())
            .field("poisoned", &state.poisoned)
            .field("persistent", &self.store.is_some())
            .finish()
    }
}
