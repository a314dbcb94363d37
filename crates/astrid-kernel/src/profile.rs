//! A principal's profile: which installed capsules it may invoke and its quota. Kept in
//! `principals/<name>/profile.json` (outside the principal's `~`, so no capsule can edit
//! it), cached in memory, replaced whole on every change.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use astrid_types::wire::QuotaSpec;
use astrid_types::PrincipalId;
use serde::{Deserialize, Serialize};

use crate::error::KernelError;
use crate::fsutil::atomic_write;
use crate::kernel::Inner;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Profile {
    /// Capsule names this principal may invoke (and whose handlers its events reach).
    #[serde(default)]
    pub capsules: BTreeSet<String>,
    #[serde(default)]
    pub quota: QuotaSpec,
}

impl Inner {
    fn profile_path(&self, p: &PrincipalId) -> PathBuf {
        self.home.principal_dir(p).join("profile.json")
    }

    /// The principal's profile; an unknown principal or a missing file reads as empty.
    pub fn profile(&self, p: &PrincipalId) -> Arc<Profile> {
        let Ok(pr) = self.tenant(p) else {
            return Arc::new(Profile::default());
        };
        if let Some(prof) = pr.profile.read().as_ref() {
            return prof.clone();
        }
        let loaded = Arc::new(self.read_profile(p).unwrap_or_else(|e| {
            // A damaged profile grants nothing: fail closed, and say so.
            tracing::error!(principal = %p, "{e}; treating the profile as empty");
            Profile::default()
        }));
        let kept = pr.profile.write().get_or_insert(loaded).clone();
        kept
    }

    pub fn has_profile_file(&self, p: &PrincipalId) -> bool {
        self.profile_path(p).exists()
    }

    fn read_profile(&self, p: &PrincipalId) -> Result<Profile, KernelError> {
        let path = self.profile_path(p);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| KernelError::io(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Profile::default()),
            Err(e) => Err(KernelError::io(&path, e)),
        }
    }

    /// Changes the profile durably, then in memory. Serialized by the profile lock so two
    /// changes to one principal cannot lose each other.
    pub fn update_profile<T>(
        &self,
        p: &PrincipalId,
        change: impl FnOnce(&mut Profile) -> Result<T, KernelError>,
    ) -> Result<T, KernelError> {
        let _guard = self.profile_lock.lock();
        if !self.principal_exists(p) {
            return Err(KernelError::UnknownPrincipal(p.to_string()));
        }
        let mut prof = (*self.profile(p)).clone();
        let out = change(&mut prof)?;
        self.write_profile(p, &prof)?;
        Ok(out)
    }

    pub fn write_profile(&self, p: &PrincipalId, prof: &Profile) -> Result<(), KernelError> {
        let path = self.profile_path(p);
        let bytes = serde_json::to_vec_pretty(prof).map_err(|e| KernelError::io(&path, e))?;
        atomic_write(&path, &bytes, 0o600).map_err(|e| KernelError::io(&path, e))?;
        *self.tenant(p)?.profile.write() = Some(Arc::new(prof.clone()));
        Ok(())
    }

    /// Whether `p` may invoke the capsule `name`.
    pub fn holds(&self, p: &PrincipalId, name: &str) -> bool {
        self.profile(p).capsules.contains(name)
    }

    /// Every principal granted the capsule, sorted.
    pub fn holders(&self, name: &str) -> Vec<PrincipalId> {
        let mut all: Vec<PrincipalId> = crate::caps::principals(&self.home)
            .into_iter()
            .filter(|p| self.holds(p, name))
            .collect();
        all.sort();
        all
    }
}
