//! Installed capsules: the persisted list, the content-addressed artifact store, and the
//! in-memory entries the bus dispatches to, owned by [`Capsules`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use astrid_sandbox::LoadedComponent;
use astrid_types::wire::{CapsuleInfo, LifecycleState};
use astrid_types::{ArtifactHash, AstridHome, Manifest};
use parking_lot::{Mutex, MutexGuard, RwLock};
use serde::{Deserialize, Serialize};

use crate::error::KernelError;
use crate::fsutil::atomic_write;

/// The installed capsules by name and the lock that lets one install, update or removal
/// run at a time. The map changes only through [`Capsules::swap_in`], [`Capsules::take_out`]
/// and [`Capsules::replace_all`], which keep it and `installed.json` in step: a list that
/// cannot be written leaves the map as it was.
#[derive(Default)]
pub(crate) struct Capsules {
    map: RwLock<BTreeMap<String, Arc<Installed>>>,
    lifecycle: Mutex<()>,
}

impl Capsules {
    /// Held for a whole install, update, removal or grant change, so the dependency graph
    /// checked and the swap it guards are one step.
    pub fn one_change_at_a_time(&self) -> MutexGuard<'_, ()> {
        self.lifecycle.lock()
    }

    pub fn get(&self, name: &str) -> Option<Arc<Installed>> {
        self.map.read().get(name).cloned()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.map.read().contains_key(name)
    }

    /// Whether `inst` is the version installed now (not one replaced or removed since).
    pub fn is_current(&self, inst: &Arc<Installed>) -> bool {
        self.map
            .read()
            .get(&inst.name)
            .is_some_and(|i| Arc::ptr_eq(i, inst))
    }

    /// Every installed version, by name.
    pub fn snapshot(&self) -> Vec<Arc<Installed>> {
        self.map.read().values().cloned().collect()
    }

    /// Every installed manifest except `but`'s (the one being replaced), if given.
    pub fn manifests_except(&self, but: Option<&str>) -> Vec<Manifest> {
        self.map
            .read()
            .values()
            .filter(|i| Some(i.name.as_str()) != but)
            .map(|i| (*i.manifest).clone())
            .collect()
    }

    /// The boot list, as read from disk: nothing is written.
    pub fn replace_all(&self, map: BTreeMap<String, Arc<Installed>>) {
        *self.map.write() = map;
    }

    /// Installs `inst` under its name, replacing any version there, and writes the list.
    /// Returns the replaced version; on a failed write the map is as it was.
    pub fn swap_in(
        &self,
        home: &AstridHome,
        inst: Arc<Installed>,
    ) -> Result<Option<Arc<Installed>>, KernelError> {
        let mut map = self.map.write();
        let old = map.insert(inst.name.clone(), inst.clone());
        if let Err(e) = write_list(home, &map) {
            match &old {
                Some(o) => map.insert(inst.name.clone(), o.clone()),
                None => map.remove(&inst.name),
            };
            return Err(e);
        }
        Ok(old)
    }

    /// Installs every one of `entries` under its name at once, writing the list once.
    /// Returns the versions replaced; on a failed write the map is as it was.
    pub fn swap_all(
        &self,
        home: &AstridHome,
        entries: &[Arc<Installed>],
    ) -> Result<Vec<Arc<Installed>>, KernelError> {
        let mut map = self.map.write();
        let mut next = map.clone();
        let mut old = Vec::new();
        for inst in entries {
            old.extend(next.insert(inst.name.clone(), inst.clone()));
        }
        write_list(home, &next)?;
        *map = next;
        Ok(old)
    }

    /// The list `entries` would make installed, as written to `installed.json`.
    pub fn list_with(&self, entries: &[Arc<Installed>]) -> InstalledList {
        let mut next = self.map.read().clone();
        for inst in entries {
            next.insert(inst.name.clone(), inst.clone());
        }
        list_of(&next)
    }

    /// Uninstalls `name` and writes the list; on a failed write the map is as it was.
    pub fn take_out(
        &self,
        home: &AstridHome,
        name: &str,
    ) -> Result<Option<Arc<Installed>>, KernelError> {
        let mut map = self.map.write();
        let Some(old) = map.remove(name) else {
            return Ok(None);
        };
        if let Err(e) = write_list(home, &map) {
            map.insert(name.to_string(), old);
            return Err(e);
        }
        Ok(Some(old))
    }

    /// Read access for views that look at several entries together (the dependency tree).
    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, BTreeMap<String, Arc<Installed>>> {
        self.map.read()
    }
}

/// One installed capsule version. Replaced wholesale on update: invocations already running
/// keep their `Arc` to the old entry and finish on the old instance.
pub(crate) struct Installed {
    pub name: String,
    pub manifest: Arc<Manifest>,
    pub manifest_toml: String,
    pub hash: ArtifactHash,
    pub component: Option<LoadedComponent>,
    /// (topic pattern, handler name), from `[subscribe]` handlers and `[[tool]]`s.
    pub handlers: Vec<(String, String)>,
    pub status: Mutex<(LifecycleState, Option<String>)>,
    /// Tells this version's background loop and blocked receives to stop.
    pub stopping: Arc<AtomicBool>,
}

impl Installed {
    pub fn new(
        manifest: Manifest,
        manifest_toml: String,
        hash: ArtifactHash,
        component: Result<LoadedComponent, String>,
    ) -> Self {
        let handlers = manifest.handlers();
        let (component, status) = match component {
            Ok(c) => (Some(c), (LifecycleState::Ready, None)),
            Err(e) => (None, (LifecycleState::Failed, Some(e))),
        };
        Installed {
            name: manifest.package.name.to_string(),
            manifest: Arc::new(manifest),
            manifest_toml,
            hash,
            component,
            handlers,
            status: Mutex::new(status),
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn set_state(&self, state: LifecycleState, error: Option<String>) {
        *self.status.lock() = (state, error);
    }

    pub fn state(&self) -> LifecycleState {
        self.status.lock().0
    }

    pub fn info(&self) -> CapsuleInfo {
        let m = &self.manifest;
        let (state, error) = self.status.lock().clone();
        let caps = &m.capabilities;
        let mut capabilities = Vec::new();
        capabilities.extend(caps.fs_read.iter().map(|r| format!("fs_read: {r}")));
        capabilities.extend(caps.fs_write.iter().map(|r| format!("fs_write: {r}")));
        if caps.kv {
            capabilities.push("kv".into());
        }
        capabilities.extend(caps.net.iter().map(|r| format!("net: {r}")));
        capabilities.extend(caps.process.iter().map(|r| format!("process: {r}")));
        CapsuleInfo {
            name: self.name.clone(),
            version: m.package.version.to_string(),
            hash: self.hash.to_string(),
            state,
            error,
            description: m.package.description.clone(),
            tools: m.tools.iter().map(|t| t.name.clone()).collect(),
            publish: m.publish.keys().cloned().collect(),
            subscribe: self
                .handlers
                .iter()
                .map(|(p, h)| format!("{p} -> {h}"))
                .collect(),
            capabilities,
            imports: m.imports.iter().map(|(k, v)| format!("{k} {v}")).collect(),
            exports: m.exports.iter().map(|(k, v)| format!("{k} {v}")).collect(),
            commands: m
                .commands
                .iter()
                .map(|c| (c.name.clone(), c.description.clone()))
                .collect(),
            host_abi: self
                .component
                .as_ref()
                .map(|c| c.host_imports.clone())
                .unwrap_or_default(),
        }
    }
}

/// What survives a restart: which capsule names are installed, at which artifact and manifest.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct InstalledList {
    pub capsules: Vec<InstalledRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InstalledRecord {
    pub name: String,
    pub hash: String,
    pub manifest: String,
}

fn list_path(home: &AstridHome) -> PathBuf {
    home.state_dir().join("installed.json")
}

pub(crate) fn read_list(home: &AstridHome) -> Result<InstalledList, KernelError> {
    let path = list_path(home);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| KernelError::io(&path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(InstalledList::default()),
        Err(e) => Err(KernelError::io(&path, e)),
    }
}

fn list_of(entries: &BTreeMap<String, Arc<Installed>>) -> InstalledList {
    InstalledList {
        capsules: entries
            .values()
            .map(|i| InstalledRecord {
                name: i.name.clone(),
                hash: i.hash.to_string(),
                manifest: i.manifest_toml.clone(),
            })
            .collect(),
    }
}

fn write_list(
    home: &AstridHome,
    entries: &BTreeMap<String, Arc<Installed>>,
) -> Result<(), KernelError> {
    write_list_as(home, &list_of(entries))
}

/// Writes `list` as `installed.json`, atomically.
pub(crate) fn write_list_as(home: &AstridHome, list: &InstalledList) -> Result<(), KernelError> {
    let path = list_path(home);
    let bytes = serde_json::to_vec_pretty(list).map_err(|e| KernelError::io(&path, e))?;
    atomic_write(&path, &bytes, 0o600).map_err(|e| KernelError::io(&path, e))
}

fn hex(hash: &ArtifactHash) -> String {
    hash.to_string().trim_start_matches("blake3:").to_string()
}

pub(crate) fn artifact_path(home: &AstridHome, hash: &ArtifactHash) -> PathBuf {
    home.artifacts_dir().join(hex(hash)).join("component.wasm")
}

/// Stores component bytes under their hash. Shared by every principal and every capsule name
/// that uses the same bytes.
pub(crate) fn store_artifact(
    home: &AstridHome,
    hash: &ArtifactHash,
    bytes: &[u8],
) -> Result<(), KernelError> {
    let path = artifact_path(home, hash);
    if path.exists() && read_artifact(home, hash).is_ok() {
        return Ok(());
    }
    let dir = path.parent().expect("artifact path has a parent");
    std::fs::create_dir_all(dir).map_err(|e| KernelError::io(dir, e))?;
    atomic_write(&path, bytes, 0o600).map_err(|e| KernelError::io(&path, e))
}

/// Reads an artifact and proves it is the one the manifest names before anything loads it.
pub(crate) fn read_artifact(
    home: &AstridHome,
    hash: &ArtifactHash,
) -> Result<Vec<u8>, KernelError> {
    let path = artifact_path(home, hash);
    let bytes = std::fs::read(&path).map_err(|e| KernelError::io(&path, e))?;
    verify_hash(&path.display().to_string(), hash, &bytes)?;
    Ok(bytes)
}

pub(crate) fn verify_hash(
    file: &str,
    expected: &ArtifactHash,
    bytes: &[u8],
) -> Result<(), KernelError> {
    let actual = ArtifactHash::of(bytes);
    if &actual != expected {
        return Err(KernelError::HashMismatch {
            file: file.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}
