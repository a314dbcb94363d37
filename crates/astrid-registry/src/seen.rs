//! The newest index seen per registry, so an older one replayed at this Astrid (a stale
//! mirror, or an attacker holding back a security update) is refused: `registries-seen.toml`
//! under the home.

use std::path::{Path, PathBuf};

use astrid_types::ArtifactHash;
use serde::{Deserialize, Serialize};

use crate::RegistryError;

/// The file's name under the home directory.
pub const SEEN_FILE: &str = "registries-seen.toml";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Seen {
    location: String,
    serial: u64,
    /// The signed file's hash at that serial: the same serial with other content is a
    /// publisher's fork (or a key in the wrong hands), not an update.
    hash: ArtifactHash,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeenFile {
    #[serde(default, rename = "registry")]
    registries: Vec<Seen>,
}

/// Checks `serial`/`hash` of `location` against what was seen before, and records them.
pub fn check_and_record(
    path: &Path,
    location: &str,
    serial: u64,
    hash: ArtifactHash,
) -> Result<(), RegistryError> {
    let bad = |reason: String| RegistryError::Seen {
        path: PathBuf::from(path),
        reason,
    };
    let mut file: SeenFile = match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| bad(e.to_string()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => SeenFile::default(),
        Err(e) => return Err(bad(e.to_string())),
    };
    match file.registries.iter_mut().find(|s| s.location == location) {
        Some(seen) if serial < seen.serial => {
            return Err(RegistryError::Rollback {
                location: location.to_string(),
                seen: seen.serial,
                got: serial,
            })
        }
        Some(seen) if serial == seen.serial && hash != seen.hash => {
            return Err(RegistryError::Fork {
                location: location.to_string(),
                serial,
            })
        }
        Some(seen) if serial == seen.serial => return Ok(()),
        Some(seen) => {
            seen.serial = serial;
            seen.hash = hash;
        }
        None => file.registries.push(Seen {
            location: location.to_string(),
            serial,
            hash,
        }),
    }
    let text = format!(
        "# The newest signed index seen per registry; an older one is refused.\n{}",
        toml::to_string(&file).unwrap_or_default()
    );
    astrid_shuttle::write_atomic(path, text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_or_forked_indexes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SEEN_FILE);
        let h = |b: &[u8]| ArtifactHash::of(b);
        check_and_record(&path, "r", 3, h(b"3")).unwrap();
        check_and_record(&path, "r", 3, h(b"3")).unwrap();
        check_and_record(&path, "other", 1, h(b"1")).unwrap();
        assert!(matches!(
            check_and_record(&path, "r", 2, h(b"2")),
            Err(RegistryError::Rollback {
                seen: 3,
                got: 2,
                ..
            })
        ));
        assert!(matches!(
            check_and_record(&path, "r", 3, h(b"x")),
            Err(RegistryError::Fork { .. })
        ));
        check_and_record(&path, "r", 4, h(b"4")).unwrap();
        assert!(check_and_record(&path, "r", 3, h(b"3")).is_err());
    }
}
