//! A principal's profile: which installed capsules it may invoke and its quota. Kept in
//! `principals/<name>/profile.json` (outside the principal's `~`, so no capsule can edit
//! it), cached in memory, replaced whole on every change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use astrid_types::wire::QuotaSpec;
use astrid_types::{FactName, PrincipalId};
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
    /// What the principal says about itself (`display_name`, `timezone`, …). A capsule
    /// reads one only if its manifest names it and the principal allows it
    /// (`identity:<fact>` token or approval).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<FactName, String>,
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

    /// Sets (or with `None` removes) one profile fact, durably, then drops the principal's
    /// cached contexts so the next invocation sees it. The value is not audited (it is the
    /// principal's personal data, and every capsule's read of it is); that it changed is.
    pub fn set_fact(
        &self,
        p: &PrincipalId,
        fact: &FactName,
        value: Option<String>,
    ) -> Result<BTreeMap<FactName, String>, KernelError> {
        if let Some(v) = &value {
            check_fact_value(fact, v)?;
        }
        let facts = self.update_profile(p, |prof| {
            match value.clone() {
                Some(v) => {
                    if !prof.facts.contains_key(fact) && prof.facts.len() >= MAX_FACTS {
                        return Err(KernelError::Settings(format!(
                            "profile: at most {MAX_FACTS} facts; remove one first"
                        )));
                    }
                    prof.facts.insert(fact.clone(), v);
                }
                None => {
                    prof.facts.remove(fact);
                }
            }
            Ok(prof.facts.clone())
        })?;
        self.forget_principal_contexts(p);
        let what = if value.is_some() { "set" } else { "removed" };
        self.record(
            p,
            crate::audit::KERNEL,
            "profile.set",
            &format!("identity:{fact}"),
            astrid_audit::Decision::Recorded,
            what,
        )?;
        Ok(facts)
    }

    /// The principal's profile facts.
    pub fn facts(&self, p: &PrincipalId) -> Result<BTreeMap<FactName, String>, KernelError> {
        if !self.principal_exists(p) {
            return Err(KernelError::UnknownPrincipal(p.to_string()));
        }
        Ok(self.profile(p).facts.clone())
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

/// How many facts one profile holds, and how long one value may be: a profile says who
/// someone is, it is not a store.
const MAX_FACTS: usize = 64;
const MAX_FACT_BYTES: usize = 1024;

fn check_fact_value(fact: &FactName, v: &str) -> Result<(), KernelError> {
    let bad = |why: String| {
        Err(KernelError::Settings(format!(
            "profile fact `{fact}`: {why}"
        )))
    };
    if v.is_empty() {
        return bad("the value is empty (to remove the fact, unset it)".into());
    }
    if v.len() > MAX_FACT_BYTES {
        return bad(format!("the value is longer than {MAX_FACT_BYTES} bytes"));
    }
    if let Some(c) = v.chars().find(|c| c.is_control()) {
        return bad(format!("the value holds the control character {c:?}"));
    }
    Ok(())
}
