//! Boot, install, update and remove: the capsule lifecycle on a running kernel.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use astrid_audit::Decision;
use astrid_types::graph::{boot_order, dependents_of, GraphError};
use astrid_types::wire::{CapsuleInfo, LifecycleState, PackageUpload, TreeNode};
use astrid_types::{ArtifactHash, Manifest, PrincipalId};

use astrid_sandbox::Chain;

use crate::audit::KERNEL;
use crate::bus::Envelope;
use crate::dispatch::CAPSULE_CHANGED_TOPIC;
use crate::error::KernelError;
use crate::kernel::Inner;
use crate::registry::{read_artifact, read_list, Installed};

impl Inner {
    /// Loads every installed capsule. A capsule that fails (corrupted artifact, invalid
    /// component, broken dependency) is kept as `failed` with the reason; the rest boot.
    pub fn boot(self: &Arc<Self>) -> Result<(), KernelError> {
        self.finish_pending_distro()?;
        let list = read_list(&self.home)?;
        // A home from before per-principal grants: everything installed was `default`'s.
        let default = PrincipalId::default_local();
        if !self.has_profile_file(&default) {
            self.update_profile(&default, |prof| {
                prof.capsules
                    .extend(list.capsules.iter().map(|r| r.name.clone()));
                Ok(())
            })?;
        }
        let mut entries: Vec<Installed> = Vec::new();
        for rec in list.capsules {
            let origin = format!("installed capsule `{}`", rec.name);
            let manifest = match Manifest::parse(&rec.manifest, Path::new(&origin)) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!("skipping {origin}: {e}");
                    continue;
                }
            };
            let hash: ArtifactHash = match rec.hash.parse() {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!("skipping {origin}: bad hash: {e}");
                    continue;
                }
            };
            // The lock is checked before the artifact is even read: a pinned name with
            // another artifact never reaches the runtime.
            let pinned = match self.pins.refuses(&rec.name, &hash, &rec.manifest) {
                Some(refusal) => {
                    self.record_refusal("capsule.boot", &rec.name, &refusal);
                    Err(refusal)
                }
                None => Ok(()),
            };
            let component = pinned
                .and_then(|()| read_artifact(&self.home, &hash))
                .and_then(|bytes| {
                    self.runtime
                        .load(&hash, &bytes)
                        .map_err(|e| KernelError::Load {
                            name: rec.name.clone(),
                            source: e.into(),
                        })
                })
                .map_err(|e| e.to_string());
            if let Err(e) = &component {
                tracing::error!("capsule `{}` failed to load: {e}", rec.name);
            }
            entries.push(Installed::new(manifest, rec.manifest, hash, component));
        }

        let order = order_excluding_broken(&mut entries);
        let mut map = BTreeMap::new();
        let mut boot_seq = Vec::new();
        for (i, inst) in entries.into_iter().enumerate() {
            let inst = Arc::new(inst);
            if order.contains(&i) {
                boot_seq.push((order.iter().position(|&o| o == i), inst.clone()));
            }
            map.insert(inst.name.clone(), inst);
        }
        self.capsules.replace_all(map);
        boot_seq.sort_by_key(|(pos, _)| *pos);
        for (_, inst) in boot_seq {
            self.start_background(&inst);
        }
        Ok(())
    }

    /// Installs a new capsule for `owner` (`replace = false`) or hot-swaps an installed one for
    /// everyone who holds it. Installing bytes already installed under that name grants the
    /// capsule to `owner`: one artifact, a separate instance (store, `~`, audit) per
    /// principal. Blocking: it may compile the component.
    pub fn install(
        self: &Arc<Self>,
        upload: PackageUpload,
        replace: bool,
        owner: &PrincipalId,
    ) -> Result<CapsuleInfo, KernelError> {
        let (manifest, hash, bytes) = crate::fleet::unpack(&upload)?;

        let _guard = self.capsules.one_change_at_a_time();
        let name = manifest.package.name.to_string();
        let action = if replace {
            "capsule.update"
        } else {
            "capsule.install"
        };
        if let Some(refusal) = self.pins.refuses(&name, &hash, &upload.manifest_toml) {
            return Err(self.refused(owner, action, &name, refusal));
        }
        let old = self.installed(&name);
        match (&old, replace) {
            (Some(o), false) if o.hash == hash && !self.holds(owner, &name) => {
                let outcome = format!(
                    "version {} (hash {hash}), sharing the installed artifact",
                    manifest.package.version
                );
                self.grant_capsule_locked(owner, o, "capsule.install", &outcome)?;
                return Ok(o.info());
            }
            (Some(_), false) => return Err(KernelError::AlreadyInstalled(name)),
            (None, true) => return Err(KernelError::NotInstalled(name)),
            (Some(_), true) if !self.holds(owner, &name) => {
                return Err(KernelError::NotInstalled(name))
            }
            _ => {}
        }
        let mut all = self.capsules.manifests_except(Some(&name));
        all.push(manifest.clone());
        boot_order(&all).map_err(KernelError::Graph)?;
        if let Err(e) = refuse_shared_tool_topics(&manifest, &all) {
            // A capsule reaching for another's tool calls is an attack signal: on the record.
            return Err(self.refused(owner, action, &name, e));
        }

        let component = self.store_and_compile(&name, &hash, bytes)?;
        let outcome = match &old {
            Some(o) => format!(
                "version {} (hash {hash}) replaces version {} (hash {})",
                manifest.package.version, o.manifest.package.version, o.hash
            ),
            None => format!("version {} (hash {hash})", manifest.package.version),
        };
        // Everyone who holds the capsule is affected by an update; a new install, its owner.
        let affected = if replace {
            self.holders(&name)
        } else {
            vec![owner.clone()]
        };
        // Durable before the capsule can run; an unwritable chain refuses the install.
        self.record_lifecycle(action, &name, &outcome, &affected)?;
        if !replace {
            self.update_profile(owner, |prof| {
                prof.capsules.insert(name.clone());
                Ok(())
            })?;
        }
        let inst = Arc::new(Installed::new(
            manifest,
            upload.manifest_toml,
            hash,
            Ok(component),
        ));
        if let Err(e) = self.capsules.swap_in(&self.home, inst.clone()) {
            if !replace {
                let _ = self.update_profile(owner, |prof| {
                    prof.capsules.remove(&name);
                    Ok(())
                });
            }
            let _ = self.record_lifecycle(action, &name, &format!("failed: {e}"), &affected);
            return Err(e);
        }
        if let Some(o) = old {
            // Running invocations keep their Arc to the old version and finish on it.
            o.stopping.store(true, Ordering::Relaxed);
            o.set_state(LifecycleState::Stopping, None);
        }
        self.stop_contexts(&name, None);
        self.start_background(&inst);
        tracing::info!(capsule = %name, hash = %inst.hash, replace, "capsule installed");
        self.announce_change(&name, if replace { "update" } else { "install" }, &affected);
        Ok(inst.info())
    }

    /// Takes the capsule away from `owner`; the last holder's removal (or the removal of a
    /// capsule nobody holds) uninstalls it.
    pub fn remove(self: &Arc<Self>, name: &str, owner: &PrincipalId) -> Result<(), KernelError> {
        let _guard = self.capsules.one_change_at_a_time();
        let Some(inst) = self.installed(name) else {
            return Err(KernelError::NotInstalled(name.to_string()));
        };
        let holders = self.holders(name);
        if holders.iter().any(|h| h != owner) {
            if !holders.contains(owner) {
                return Err(KernelError::NotInstalled(name.to_string()));
            }
            let outcome = format!(
                "version {} (hash {}): removed for `{owner}`; still installed for {}",
                inst.manifest.package.version,
                inst.hash,
                holders.len() - 1
            );
            return self.ungrant_capsule_locked(owner, name, "capsule.remove", &outcome);
        }
        let manifests = self.capsules.manifests_except(None);
        let dependents = dependents_of(&manifests, name);
        if !dependents.is_empty() {
            return Err(KernelError::InUse {
                name: name.to_string(),
                dependents,
            });
        }
        let outcome = format!(
            "version {} (hash {})",
            inst.manifest.package.version, inst.hash
        );
        let affected = if holders.is_empty() {
            vec![owner.clone()]
        } else {
            holders.clone()
        };
        self.record_lifecycle("capsule.remove", name, &outcome, &affected)?;
        if let Err(e) = self.capsules.take_out(&self.home, name) {
            let _ =
                self.record_lifecycle("capsule.remove", name, &format!("failed: {e}"), &affected);
            return Err(e);
        }
        // A grant left behind would hand a later capsule of the same name to this principal.
        for h in &holders {
            if let Err(e) = self.update_profile(h, |prof| {
                prof.capsules.remove(name);
                Ok(())
            }) {
                tracing::error!(principal = %h, capsule = %name, "dropping the grant: {e}");
            }
        }
        inst.stopping.store(true, Ordering::Relaxed);
        inst.set_state(LifecycleState::Stopping, None);
        self.stop_contexts(name, None);
        tracing::info!(capsule = %name, "capsule removed");
        self.announce_change(name, "remove", &affected);
        Ok(())
    }

    /// Records an install or update refused for `owner` and returns the refusal (or, when
    /// the chain cannot be written, that error: nothing unrecorded is reported as decided).
    pub(crate) fn refused(
        &self,
        owner: &PrincipalId,
        action: &str,
        name: &str,
        refusal: KernelError,
    ) -> KernelError {
        let resource = format!("capsule:{name}");
        let outcome = refusal.to_string();
        match self.record(owner, KERNEL, action, &resource, Decision::Denied, &outcome) {
            Ok(()) => refusal,
            Err(e) => e,
        }
    }

    /// A capsule the lock refuses at boot: on the record of everyone who holds it (the
    /// operator's `default` when nobody does). Boot goes on without it either way, so a chain
    /// that cannot be written is logged rather than fatal.
    fn record_refusal(&self, action: &str, name: &str, refusal: &KernelError) {
        let mut holders = self.holders(name);
        if holders.is_empty() {
            holders.push(PrincipalId::default_local());
        }
        for p in &holders {
            let resource = format!("capsule:{name}");
            let outcome = refusal.to_string();
            if let Err(e) = self.record(p, KERNEL, action, &resource, Decision::Denied, &outcome) {
                tracing::error!("recording the refusal of `{name}` for `{p}`: {e}");
            }
        }
        tracing::error!("capsule `{name}` refused: {refusal}");
    }

    /// A lifecycle change lands in the chain of every principal it affects.
    pub(crate) fn record_lifecycle(
        &self,
        action: &str,
        name: &str,
        outcome: &str,
        affected: &[PrincipalId],
    ) -> Result<(), KernelError> {
        for p in affected {
            self.record(
                p,
                KERNEL,
                action,
                &format!("capsule:{name}"),
                Decision::Recorded,
                outcome,
            )?;
        }
        Ok(())
    }

    /// Tells the subscribers (clients and inboxes, not handlers) of each principal the change
    /// affects that its capsules changed (an MCP server sends
    /// `notifications/tools/list_changed` on it). Only those principals: another tenant's
    /// installs are none of their business.
    pub(crate) fn announce_change(&self, name: &str, change: &str, affected: &[PrincipalId]) {
        let payload = serde_json::json!({ "capsule": name, "change": change }).to_string();
        let payload = Arc::new(payload.into_bytes());
        for principal in affected.iter().cloned() {
            self.subs.deliver_passive(&Envelope {
                topic: CAPSULE_CHANGED_TOPIC.to_string(),
                payload: payload.clone(),
                source: KERNEL.to_string(),
                principal,
                depth: 0,
                chain: Chain::from_principal(KERNEL),
                reply: None,
            });
        }
    }

    pub fn list(&self) -> Vec<CapsuleInfo> {
        self.capsules.snapshot().iter().map(|i| i.info()).collect()
    }

    /// The capsules `p` holds: what a connection acting for `p` lists.
    pub fn list_for(&self, p: &PrincipalId) -> Vec<CapsuleInfo> {
        let held = self.profile(p);
        self.capsules
            .snapshot()
            .iter()
            .filter(|i| held.capsules.contains(&i.name))
            .map(|i| i.info())
            .collect()
    }

    pub fn tree_for(&self, p: &PrincipalId) -> Vec<TreeNode> {
        let held = self.profile(p);
        self.tree()
            .into_iter()
            .filter(|n| held.capsules.contains(&n.name))
            .collect()
    }

    pub fn tree(&self) -> Vec<TreeNode> {
        let caps = self.capsules.read();
        caps.values()
            .map(|i| {
                let m = &i.manifest;
                let imports = m
                    .imports
                    .iter()
                    .map(|(iface, req)| {
                        let provider = if iface.starts_with("astrid:") {
                            "kernel".to_string()
                        } else {
                            caps.values()
                                .find(|p| {
                                    p.name != i.name
                                        && p.manifest
                                            .exports
                                            .get(iface)
                                            .is_some_and(|v| req.matches(v))
                                })
                                .map(|p| p.name.clone())
                                .unwrap_or_else(|| "(missing)".to_string())
                        };
                        (iface.clone(), req.to_string(), provider)
                    })
                    .collect();
                TreeNode {
                    name: i.name.clone(),
                    version: m.package.version.to_string(),
                    imports,
                    exports: m
                        .exports
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .collect(),
                }
            })
            .collect()
    }
}

/// A tool call goes to the first handler that answers, so a second capsule answering the same
/// tool topic could read every call meant for the first and answer in its name. Refused at
/// install, naming both.
pub(crate) fn refuse_shared_tool_topics(
    new: &Manifest,
    all: &[Manifest],
) -> Result<(), KernelError> {
    let name = &new.package.name;
    for mine in new.tool_handler_patterns() {
        for other in all.iter().filter(|m| m.package.name != *name) {
            if let Some(theirs) = other
                .tool_handler_patterns()
                .into_iter()
                .find(|t| astrid_types::topic::patterns_overlap(&mine, t))
            {
                return Err(KernelError::Manifest(format!(
                    "`{name}` would answer tool calls on `{mine}`, which `{}` already answers \
                     (`{theirs}`); a tool call must have exactly one capsule behind it",
                    other.package.name
                )));
            }
        }
    }
    Ok(())
}

/// Boot order over the capsules that loaded, marking as failed (and excluding) any capsule
/// the dependency graph cannot place: part of a cycle, or missing a provider.
fn order_excluding_broken(entries: &mut [Installed]) -> Vec<usize> {
    let mut excluded = vec![false; entries.len()];
    for (i, e) in entries.iter().enumerate() {
        excluded[i] = e.component.is_none();
    }
    loop {
        let idx: Vec<usize> = (0..entries.len()).filter(|i| !excluded[*i]).collect();
        let manifests: Vec<Manifest> = idx
            .iter()
            .map(|&i| (*entries[i].manifest).clone())
            .collect();
        match boot_order(&manifests) {
            Ok(order) => return order.into_iter().map(|o| idx[o]).collect(),
            Err(err) => {
                let culprits: Vec<String> = match &err {
                    GraphError::Cycle { path } => path.clone(),
                    GraphError::MissingProvider { capsule, .. } => vec![capsule.clone()],
                    GraphError::DuplicateName { name } => vec![name.clone()],
                };
                let mut changed = false;
                for &i in &idx {
                    if culprits.contains(&entries[i].name) {
                        excluded[i] = true;
                        entries[i].set_state(LifecycleState::Failed, Some(err.to_string()));
                        changed = true;
                    }
                }
                if !changed {
                    tracing::error!("dependency graph: {err}");
                    return Vec::new();
                }
            }
        }
    }
}
