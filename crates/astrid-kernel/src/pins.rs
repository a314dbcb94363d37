//! The distro lock the daemon enforces: `$ASTRID_HOME/Distro.lock`, pinning capsules by the
//! BLAKE3 hash of their component. An install, update or boot of a pinned name with any
//! other artifact is refused. A lock that cannot be read refuses every capsule until a valid
//! one is pinned: the daemon does not guess what the operator meant to allow.

use std::path::Path;
use std::sync::RwLock;

use astrid_types::distro::{DistroLock, LockedCapsule, LOCK_FILE};
use astrid_types::{ArtifactHash, AstridHome};
use serde::Deserialize;

use crate::error::KernelError;
use crate::fsutil::atomic_write;

enum State {
    /// No lock: nothing is pinned.
    Open,
    Locked(DistroLock),
    /// A lock from before manifests were pinned: components only.
    Legacy(DistroLock),
    /// The file exists but is not a lock; why.
    Unreadable(String),
}

pub(crate) struct Pins {
    state: RwLock<State>,
}

/// A lock written by `astrid init` before the daemon enforced locks: the same pins, with the
/// distro's directory instead of its name. Read so an existing home keeps booting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyLock {
    distro: String,
    #[serde(rename = "capsule")]
    capsules: Vec<LegacyPin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyPin {
    name: astrid_types::CapsuleName,
    version: semver::Version,
    hash: ArtifactHash,
}

fn lock_path(home: &AstridHome) -> std::path::PathBuf {
    home.root().join(LOCK_FILE)
}

impl Pins {
    /// Reads the home's lock. A missing file pins nothing; anything else that is not a lock
    /// is kept as the reason every capsule is refused.
    pub fn load(home: &AstridHome) -> Self {
        let path = lock_path(home);
        let state = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::Open,
            _ => match read(&path) {
                Ok((lock, false)) => State::Locked(lock),
                Ok((lock, true)) => State::Legacy(lock),
                Err(why) => {
                    tracing::error!("{why}: every capsule is refused until a lock is pinned");
                    State::Unreadable(why)
                }
            },
        };
        Pins {
            state: RwLock::new(state),
        }
    }

    /// Why `name` with this component and this `Capsule.toml` text may not be loaded, if it
    /// may not.
    pub fn refuses(&self, name: &str, hash: &ArtifactHash, manifest: &str) -> Option<KernelError> {
        let (lock, legacy) = match &*self.state.read().unwrap_or_else(|p| p.into_inner()) {
            State::Open => return None,
            State::Unreadable(why) => return Some(KernelError::LockUnreadable(why.clone())),
            State::Locked(lock) => (lock.pin(name).cloned(), false),
            State::Legacy(lock) => (lock.pin(name).cloned(), true),
        };
        let pin = lock?;
        if pin.hash != *hash {
            return Some(KernelError::Pinned {
                name: name.to_string(),
                what: "component",
                pinned: pin.hash,
                actual: *hash,
            });
        }
        let manifest = ArtifactHash::of(manifest.as_bytes());
        if !legacy && pin.manifest != manifest {
            return Some(KernelError::Pinned {
                name: name.to_string(),
                what: "Capsule.toml",
                pinned: pin.manifest,
                actual: manifest,
            });
        }
        None
    }

    /// The lock in force, or why there is none that can be read.
    pub fn current(&self) -> Result<Option<DistroLock>, String> {
        match &*self.state.read().unwrap_or_else(|p| p.into_inner()) {
            State::Open => Ok(None),
            State::Locked(lock) | State::Legacy(lock) => Ok(Some(lock.clone())),
            State::Unreadable(why) => Err(why.clone()),
        }
    }

    /// Pins `lock`: durable on disk before it is in force.
    pub fn replace(&self, home: &AstridHome, lock: DistroLock) -> Result<(), KernelError> {
        lock.validate()
            .map_err(|why| KernelError::Manifest(format!("the lock is not valid: {why}")))?;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let path = lock_path(home);
        atomic_write(&path, lock.to_toml().as_bytes(), 0o644)
            .map_err(|e| KernelError::io(&path, e))?;
        *state = State::Locked(lock);
        Ok(())
    }
}

/// The lock at `path`, and whether it is a legacy one (manifests not pinned).
fn read(path: &Path) -> Result<(DistroLock, bool), String> {
    let new = DistroLock::load(path);
    let err = match new {
        Ok(lock) => return Ok((lock, false)),
        Err(e) => e.to_string(),
    };
    let legacy = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| toml::from_str::<LegacyLock>(&t).ok());
    match legacy {
        Some(old) => {
            let unknown = ArtifactHash::of(old.distro.as_bytes());
            let mut capsules: Vec<LockedCapsule> = old
                .capsules
                .into_iter()
                .map(|p| LockedCapsule {
                    name: p.name,
                    version: p.version,
                    hash: p.hash,
                    // Never compared: the state is `Legacy`.
                    manifest: unknown,
                })
                .collect();
            capsules.sort_by(|a, b| a.name.cmp(&b.name));
            let lock = DistroLock {
                name: old.distro.clone(),
                version: semver::Version::new(0, 0, 0),
                // Unknown for a legacy lock: it was never signed or compared.
                manifest: ArtifactHash::of(old.distro.as_bytes()),
                capsules,
            };
            lock.validate()
                .map_err(|why| format!("{}: {why}", path.display()))?;
            Ok((lock, true))
        }
        None => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "[package]\nname = \"agent\"\n";

    fn home() -> (tempfile::TempDir, AstridHome) {
        let dir = tempfile::tempdir().unwrap();
        let home = AstridHome::new(dir.path());
        (dir, home)
    }

    fn lock(hash: &[u8]) -> DistroLock {
        DistroLock {
            name: "test".into(),
            version: semver::Version::new(1, 0, 0),
            manifest: ArtifactHash::of(b"Distro.toml"),
            capsules: vec![LockedCapsule {
                name: "agent".parse().unwrap(),
                version: semver::Version::new(0, 1, 0),
                hash: ArtifactHash::of(hash),
                manifest: ArtifactHash::of(MANIFEST.as_bytes()),
            }],
        }
    }

    #[test]
    fn no_lock_pins_nothing_and_a_lock_pins_by_hash() {
        let (_d, home) = home();
        let pins = Pins::load(&home);
        assert!(pins
            .refuses("agent", &ArtifactHash::of(b"x"), MANIFEST)
            .is_none());
        pins.replace(&home, lock(b"a")).unwrap();
        assert!(pins
            .refuses("agent", &ArtifactHash::of(b"a"), MANIFEST)
            .is_none());
        assert!(pins
            .refuses("echo", &ArtifactHash::of(b"x"), MANIFEST)
            .is_none());
        let e = pins
            .refuses("agent", &ArtifactHash::of(b"b"), MANIFEST)
            .unwrap()
            .to_string();
        assert!(
            e.contains(&ArtifactHash::of(b"a").to_string())
                && e.contains(&ArtifactHash::of(b"b").to_string()),
            "{e}"
        );
        // The manifest is pinned too: the same component with other capabilities is refused.
        let e = pins
            .refuses(
                "agent",
                &ArtifactHash::of(b"a"),
                "[package]\nname = \"agent\"\n# net",
            )
            .unwrap()
            .to_string();
        assert!(e.contains("Capsule.toml"), "{e}");
        // What was pinned is what the next boot reads.
        let again = Pins::load(&home);
        assert_eq!(again.current().unwrap(), Some(lock(b"a")));
    }

    #[test]
    fn an_unreadable_lock_refuses_everything_until_replaced() {
        let (_d, home) = home();
        std::fs::create_dir_all(home.root()).unwrap();
        std::fs::write(lock_path(&home), "name = 3\n").unwrap();
        let pins = Pins::load(&home);
        let e = pins
            .refuses("echo", &ArtifactHash::of(b"x"), MANIFEST)
            .unwrap();
        assert!(e.to_string().contains(LOCK_FILE), "{e}");
        assert!(pins.current().is_err());
        pins.replace(&home, lock(b"a")).unwrap();
        assert!(pins
            .refuses("echo", &ArtifactHash::of(b"x"), MANIFEST)
            .is_none());
    }

    #[test]
    fn a_lock_from_before_enforcement_still_pins() {
        let (_d, home) = home();
        std::fs::create_dir_all(home.root()).unwrap();
        let hash = ArtifactHash::of(b"s");
        std::fs::write(
            lock_path(&home),
            format!(
                "# Written by `astrid init`\ndistro = \"/opt/d\"\n\n[[capsule]]\nname = \
                 \"session\"\nversion = \"0.1.0\"\nhash = \"{hash}\"\n"
            ),
        )
        .unwrap();
        let pins = Pins::load(&home);
        assert!(pins.refuses("session", &hash, "any manifest").is_none());
        assert!(pins
            .refuses("session", &ArtifactHash::of(b"t"), MANIFEST)
            .is_some());
    }

    #[test]
    fn an_invalid_lock_is_not_pinned() {
        let (_d, home) = home();
        let pins = Pins::load(&home);
        let mut bad = lock(b"a");
        bad.capsules.push(bad.capsules[0].clone());
        assert!(pins.replace(&home, bad).is_err());
        assert!(!lock_path(&home).exists());
        assert_eq!(pins.current().unwrap(), None);
    }
}
