//! The principal as the kernel holds it in memory: one [`Principal`] per tenant, owning
//! everything the kernel keeps for it (store, audit chain, capability tokens, profile,
//! storage meter, concurrency slots, capsule contexts and their stop flags), and the
//! [`Principals`] registry that hands them out.
//!
//! Each piece is loaded on first use and on its own, so one broken piece (a corrupt
//! `store.sqlite`) fails what needs it and not the rest (the audit chain that records the
//! failure). Nothing here decides anything: the loaders and policies live in the modules of
//! their subsystem (`caps`, `audit`, `profile`, `quota`, `kernel`), which reach a principal's
//! state only through its `Principal`. Deleting a principal drops its entry whole, so no
//! per-principal map can keep a stale piece behind.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use astrid_audit::AuditLog;
use astrid_store::PrincipalStore;
use astrid_types::PrincipalId;
use parking_lot::{Mutex, RwLock};

use crate::caps::TokenSet;
use crate::kernel::ContextEntry;
use crate::profile::Profile;
use crate::quota::{Slots, StorageMeter};
use crate::registry::Installed;

/// A capsule version and the stop flag its instances for one principal watch.
pub(crate) type StopFlag = (Arc<Installed>, Arc<AtomicBool>);

/// One tenant's in-memory state. Fields are `None` until first used.
pub(crate) struct Principal {
    pub store: Mutex<Option<Arc<PrincipalStore>>>,
    pub audit: Mutex<Option<Arc<AuditLog>>>,
    pub tokens: Mutex<Option<TokenSet>>,
    /// As last written to `profile.json`.
    pub profile: RwLock<Option<Arc<Profile>>>,
    /// KV plus `~` against the storage quota.
    pub meter: Mutex<Option<Arc<StorageMeter>>>,
    /// Running and waiting invocations (the concurrency quota).
    pub slots: Mutex<Slots>,
    /// The context of each capsule this principal has invoked, by capsule name.
    pub contexts: Mutex<HashMap<String, Arc<ContextEntry>>>,
    /// The stop flag of each capsule version running for this principal: what its
    /// background loop and blocked receives watch. Set when the version is replaced or
    /// removed, or when the principal loses the grant; settings changes rebuild the context
    /// but keep the flag.
    pub stops: Mutex<HashMap<String, StopFlag>>,
}

impl Principal {
    fn new() -> Principal {
        Principal {
            store: Mutex::new(None),
            audit: Mutex::new(None),
            tokens: Mutex::new(None),
            profile: RwLock::new(None),
            meter: Mutex::new(None),
            slots: Mutex::new(Slots::default()),
            contexts: Mutex::new(HashMap::new()),
            stops: Mutex::new(HashMap::new()),
        }
    }
}

/// Every principal the kernel has touched since it started. Whether a principal *exists*
/// is its directory under `principals/` (see `Inner::principal_exists`); an entry here is
/// only the memory of one, and the loaders refuse a principal without a directory.
#[derive(Default)]
pub(crate) struct Principals {
    map: RwLock<HashMap<PrincipalId, Arc<Principal>>>,
}

impl Principals {
    /// The entry for `p`, made empty on first use. Callers go through `Inner::tenant`, which
    /// makes one only for a principal that exists, so probing names cannot grow the map.
    fn get(&self, p: &PrincipalId) -> Arc<Principal> {
        if let Some(pr) = self.map.read().get(p) {
            return pr.clone();
        }
        self.map
            .write()
            .entry(p.clone())
            .or_insert_with(|| Arc::new(Principal::new()))
            .clone()
    }

    /// The entry for `p` if the kernel has one; never makes one.
    pub fn loaded(&self, p: &PrincipalId) -> Option<Arc<Principal>> {
        self.map.read().get(p).cloned()
    }

    /// Every entry, for the few operations that span principals (a capsule update stops its
    /// contexts everywhere).
    pub fn all(&self) -> Vec<Arc<Principal>> {
        self.map.read().values().cloned().collect()
    }

    /// The entry for `p`, made on first use when `exists` says the principal is real.
    pub fn get_existing(
        &self,
        p: &PrincipalId,
        exists: impl FnOnce() -> bool,
    ) -> Option<Arc<Principal>> {
        match self.loaded(p) {
            Some(pr) => Some(pr),
            None if exists() => Some(self.get(p)),
            None => None,
        }
    }

    /// Drops `p`'s entry whole (the principal was deleted). Work still running for it keeps
    /// its own reference and ends on its own.
    pub fn forget(&self, p: &PrincipalId) -> Option<Arc<Principal>> {
        self.map.write().remove(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_name_leaves_no_entry_behind() {
        let all = Principals::default();
        let ghost = PrincipalId::new("ghost").unwrap();
        assert!(all.get_existing(&ghost, || false).is_none());
        assert!(all.loaded(&ghost).is_none());
        assert!(all.all().is_empty());

        let real = PrincipalId::new("alice").unwrap();
        let first = all.get_existing(&real, || true).unwrap();
        // Once loaded, the same entry comes back without asking the disk again.
        let again = all
            .get_existing(&real, || panic!("the disk is not asked twice"))
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(all.all().len(), 1);
    }
}
