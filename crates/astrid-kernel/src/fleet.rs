//! A whole distro installed as one change: the lock and every package, all or nothing, also
//! across a crash.
//!
//! Everything that can fail is done first, with nothing visible changed: each package is
//! checked against the lock, its artifact stored (content-addressed: an unused one is
//! harmless) and its component compiled, and the dependency graph of the fleet that would
//! result is checked. Then one file is written atomically, `state/distro-txn.json`: the lock,
//! the complete installed list and the capsules the owner gains. That write is the commit.
//! Applying it (the lock, `installed.json`, the owner's profile) follows, and the journal is
//! removed. A daemon killed before the commit boots the old fleet; one killed after boots the
//! new one, because boot finishes a journal it finds before it reads anything else.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use astrid_audit::Decision;
use astrid_sandbox::LoadedComponent;
use astrid_types::distro::DistroLock;
use astrid_types::graph::boot_order;
use astrid_types::wire::{CapsuleInfo, LifecycleState, PackageUpload};
use astrid_types::{ArtifactHash, AstridHome, Manifest, PrincipalId};
use serde::{Deserialize, Serialize};

use crate::audit::KERNEL;
use crate::error::KernelError;
use crate::fsutil::atomic_write;
use crate::kernel::Inner;
use crate::registry::{store_artifact, verify_hash, write_list_as, Installed, InstalledList};

/// The commit record: present only between the commit and the end of applying it.
#[derive(Serialize, Deserialize)]
struct Journal {
    lock: DistroLock,
    list: InstalledList,
    owner: PrincipalId,
    /// Capsules new to `owner`'s profile.
    grant: Vec<String>,
}

fn journal_path(home: &AstridHome) -> PathBuf {
    home.state_dir().join("distro-txn.json")
}

/// A package's manifest, component hash and bytes, checked against each other.
pub(crate) fn unpack(
    upload: &PackageUpload,
) -> Result<(Manifest, ArtifactHash, &[u8]), KernelError> {
    let origin = Path::new("Capsule.toml");
    let manifest =
        Manifest::parse(&upload.manifest_toml, origin).map_err(KernelError::InvalidManifest)?;
    manifest
        .require_hashes(origin)
        .map_err(KernelError::InvalidManifest)?;
    let comp = &manifest.components[0];
    let hash = comp.hash.expect("require_hashes checked it");
    let bytes = upload
        .components
        .iter()
        .find(|c| c.file == comp.file)
        .map(|c| c.bytes.as_slice())
        .ok_or_else(|| {
            KernelError::Manifest(format!(
                "the package has no file `{}` named by [[component]]",
                comp.file
            ))
        })?;
    verify_hash(&comp.file, &hash, bytes)?;
    Ok((manifest, hash, bytes))
}

impl Inner {
    /// Stores a verified artifact under its hash and compiles it (or loads it from the
    /// compile cache). Blocking.
    pub(crate) fn store_and_compile(
        &self,
        name: &str,
        hash: &ArtifactHash,
        bytes: &[u8],
    ) -> Result<LoadedComponent, KernelError> {
        store_artifact(&self.home, hash, bytes)?;
        self.runtime
            .load(hash, bytes)
            .map_err(|e| KernelError::Load {
                name: name.to_string(),
                source: e.into(),
            })
    }

    /// Pins `lock` and installs `uploads` for `owner` in one change. Every capsule the lock
    /// names must end up installed as pinned: uploaded, or installed already with the pinned
    /// artifact. An upload identical to what runs is left running. Blocking: it compiles the
    /// components.
    pub fn install_distro(
        self: &Arc<Self>,
        lock: DistroLock,
        uploads: Vec<PackageUpload>,
        owner: &PrincipalId,
    ) -> Result<Vec<CapsuleInfo>, KernelError> {
        lock.validate()
            .map_err(|why| KernelError::Manifest(format!("the lock is not valid: {why}")))?;
        let mut checked = Vec::new();
        for upload in &uploads {
            let (manifest, hash, bytes) = unpack(upload)?;
            let name = manifest.package.name.to_string();
            let pinned = lock.pin(&name).ok_or_else(|| {
                KernelError::Manifest(format!("the lock does not pin the uploaded `{name}`"))
            })?;
            let manifest_hash = ArtifactHash::of(upload.manifest_toml.as_bytes());
            let mismatch = if pinned.hash != hash {
                Some(("component", pinned.hash, hash))
            } else if pinned.manifest != manifest_hash {
                Some(("Capsule.toml", pinned.manifest, manifest_hash))
            } else {
                None
            };
            if let Some((what, pinned, actual)) = mismatch {
                // The CLI checks this before sending; a client that does not is on the record.
                let refusal = KernelError::Pinned {
                    name: name.clone(),
                    what,
                    pinned,
                    actual,
                };
                return Err(self.refused(owner, "distro.install", &name, refusal));
            }
            if checked
                .iter()
                .any(|(m, ..): &(Manifest, _, _, _)| m.package.name == manifest.package.name)
            {
                return Err(KernelError::Manifest(format!("`{name}` is uploaded twice")));
            }
            checked.push((manifest, hash, bytes, upload.manifest_toml.clone()));
        }

        let _guard = self.capsules.one_change_at_a_time();
        for pin in &lock.capsules {
            let name = pin.name.as_ref();
            if checked.iter().any(|(m, ..)| m.package.name == pin.name) {
                continue;
            }
            let as_pinned = self.installed(name).is_some_and(|i| {
                i.hash == pin.hash
                    && ArtifactHash::of(i.manifest_toml.as_bytes()) == pin.manifest
                    && i.state() != LifecycleState::Failed
            });
            if !as_pinned {
                return Err(KernelError::Manifest(format!(
                    "the lock pins `{name}`, which is neither uploaded nor installed as pinned"
                )));
            }
        }

        // Everything that can fail, before anything is visible.
        let mut fresh = Vec::new();
        for (manifest, hash, bytes, manifest_toml) in checked {
            let name = manifest.package.name.to_string();
            // Installed and running exactly as uploaded: nothing to change, nothing restarted.
            let same = self.installed(&name).is_some_and(|i| {
                i.hash == hash
                    && i.manifest_toml == manifest_toml
                    && i.state() != LifecycleState::Failed
            });
            if same {
                continue;
            }
            let component = self.store_and_compile(&name, &hash, bytes)?;
            fresh.push(Arc::new(Installed::new(
                manifest,
                manifest_toml,
                hash,
                Ok(component),
            )));
        }
        let names: Vec<&str> = fresh.iter().map(|i| i.name.as_str()).collect();
        let mut all: Vec<Manifest> = self
            .capsules
            .snapshot()
            .iter()
            .filter(|i| !names.contains(&i.name.as_str()))
            .map(|i| (*i.manifest).clone())
            .collect();
        all.extend(fresh.iter().map(|i| (*i.manifest).clone()));
        boot_order(&all).map_err(KernelError::Graph)?;
        for inst in &fresh {
            crate::lifecycle::refuse_shared_tool_topics(&inst.manifest, &all)?;
        }
        // Every capsule of the distro is the owner's afterwards, also one that was installed
        // as pinned already (for another principal).
        let grant: Vec<String> = lock
            .capsules
            .iter()
            .map(|c| c.name.to_string())
            .filter(|n| !self.holds(owner, n))
            .collect();

        // On the record before anything can run, as for a single install.
        let digest = lock.digest();
        self.record(
            owner,
            KERNEL,
            "distro.install",
            &format!("distro:{}@{}", lock.name, lock.version),
            Decision::Recorded,
            &format!(
                "lock {digest}: {} capsules, {} installed or updated",
                lock.capsules.len(),
                fresh.len()
            ),
        )?;
        let mut affected_by = Vec::new();
        for inst in &fresh {
            let old = self.installed(&inst.name);
            let (action, outcome, affected) = match &old {
                Some(o) => (
                    "capsule.update",
                    format!(
                        "version {} (hash {}) replaces version {} (hash {}), pinned by lock {digest}",
                        inst.manifest.package.version, inst.hash, o.manifest.package.version, o.hash
                    ),
                    {
                        // Everyone holding it, and the owner, who holds it after this.
                        let mut a = self.holders(&inst.name);
                        if !a.contains(owner) {
                            a.push(owner.clone());
                        }
                        a
                    },
                ),
                None => (
                    "capsule.install",
                    format!(
                        "version {} (hash {}), pinned by lock {digest}",
                        inst.manifest.package.version, inst.hash
                    ),
                    vec![owner.clone()],
                ),
            };
            self.record_lifecycle(action, &inst.name, &outcome, &affected)?;
            affected_by.push((inst.clone(), old.is_some(), affected));
        }

        // The commit.
        let journal = Journal {
            lock,
            list: self.capsules.list_with(&fresh),
            owner: owner.clone(),
            grant,
        };
        let path = journal_path(&self.home);
        let bytes = serde_json::to_vec(&journal).map_err(|e| KernelError::io(&path, e))?;
        atomic_write(&path, &bytes, 0o600).map_err(|e| KernelError::io(&path, e))?;
        // A crash exactly here is the case boot must finish; the tests put one here
        // (crates/astrid-cli/tests/distro_crash.rs). Abort is what a kill does: no unwinding,
        // nothing flushed.
        if std::env::var_os("ASTRID_FAILPOINT").is_some_and(|v| v == "distro-commit") {
            std::process::abort();
        }

        // Applying it. A failure from here on is finished by the next boot.
        let committed = |e: KernelError| {
            KernelError::Manifest(format!(
                "the distro install is committed, and the next start of the daemon finishes \
                 it; applying it now failed: {e}"
            ))
        };
        self.pins
            .replace(&self.home, journal.lock.clone())
            .map_err(committed)?;
        let replaced = self
            .capsules
            .swap_all(&self.home, &fresh)
            .map_err(committed)?;
        self.update_profile(owner, |prof| {
            prof.capsules.extend(journal.grant.iter().cloned());
            Ok(())
        })
        .map_err(committed)?;
        std::fs::remove_file(&path).map_err(|e| committed(KernelError::io(&path, e)))?;

        for o in replaced {
            // Running invocations keep their Arc to the old version and finish on it.
            o.stopping.store(true, Ordering::Relaxed);
            o.set_state(LifecycleState::Stopping, None);
            self.stop_contexts(&o.name, None);
        }
        for (inst, updated, affected) in &affected_by {
            self.start_background(inst);
            self.announce_change(
                &inst.name,
                if *updated { "update" } else { "install" },
                affected,
            );
        }
        tracing::info!(lock = %digest, capsules = fresh.len(), "distro installed");
        Ok(fresh.iter().map(|i| i.info()).collect())
    }

    /// Finishes a distro install that was committed but not applied when the daemon
    /// stopped. Runs at boot, before the lock and the installed list are read.
    pub(crate) fn finish_pending_distro(&self) -> Result<(), KernelError> {
        let path = journal_path(&self.home);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(KernelError::io(&path, e)),
        };
        // Written atomically, so a journal that does not parse was damaged at rest: the
        // daemon does not guess which fleet was meant.
        let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| {
            KernelError::io(
                &path,
                format!("a committed distro install that cannot be read: {e}; move it away to boot the fleet as it was before"),
            )
        })?;
        tracing::warn!(
            "finishing the distro install of {} {} committed before the daemon stopped",
            journal.lock.name,
            journal.lock.version
        );
        self.pins.replace(&self.home, journal.lock)?;
        write_list_as(&self.home, &journal.list)?;
        if self.principal_exists(&journal.owner) {
            self.update_profile(&journal.owner, |prof| {
                prof.capsules.extend(journal.grant.iter().cloned());
                Ok(())
            })?;
        }
        std::fs::remove_file(&path).map_err(|e| KernelError::io(&path, e))
    }
}
