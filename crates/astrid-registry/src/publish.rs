//! Publishing into a directory registry: copy the artifact under a path derived from its
//! name and version, add it to the index, raise the serial, sign, and replace the index in
//! one rename. A published version is immutable: the same name and version with other bytes
//! is refused.

use std::path::{Path, PathBuf};
use std::time::Duration;

use astrid_crypto::KeyPair;
use astrid_types::ArtifactHash;
use semver::Version;

use crate::{signed, Entry, Index, Kind, PackageName, Purpose, RegistryError, INDEX_FILE};

/// What [`publish`] did.
#[derive(Debug)]
pub struct Published {
    pub entry: Entry,
    pub serial: u64,
    /// The same bytes were published before under this name and version.
    pub unchanged: bool,
}

/// Publishes `artifact` (its bytes) as `kind` `name` `version` into the registry directory
/// `dir`, signed with `key`. `capsule` is the capsule's manifest name (capsules only).
/// `valid_for` sets the index's expiry from `now` (Unix seconds).
#[allow(clippy::too_many_arguments)]
pub fn publish(
    dir: &Path,
    kind: Kind,
    name: &PackageName,
    version: &Version,
    capsule: Option<&str>,
    artifact: &[u8],
    key: &KeyPair,
    valid_for: Option<Duration>,
    now: u64,
) -> Result<Published, RegistryError> {
    let bad = |reason: String| RegistryError::Publish {
        dir: PathBuf::from(dir),
        reason,
    };
    let index_path = dir.join(INDEX_FILE);
    let mut index = match std::fs::read_to_string(&index_path) {
        Ok(text) => {
            let (signer, body) = signed::open(Purpose::Index, &text)
                .map_err(|e| bad(format!("the existing {INDEX_FILE}: {e}")))?;
            if signer != *key.public_key() {
                return Err(bad(format!(
                    "the existing index is signed by {signer}; publish with that key (clients \
                     trust it)"
                )));
            }
            Index::parse(body).map_err(|e| bad(format!("the existing {INDEX_FILE}: {e}")))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Index::empty(),
        Err(e) => return Err(bad(format!("{}: {e}", index_path.display()))),
    };
    let hash = ArtifactHash::of(artifact);
    let file = format!(
        "{}s/{}/{}/{}-{version}.{}",
        kind.noun(),
        name.org(),
        name.name(),
        name.name(),
        kind.extension()
    );
    let entry = Entry {
        name: name.clone(),
        version: version.clone(),
        capsule: capsule.map(str::to_string),
        file: file.clone(),
        size: artifact.len() as u64,
        hash,
    };
    let existing = index
        .entries(kind)
        .iter()
        .find(|e| e.name == *name && e.version == *version);
    let unchanged = match existing {
        Some(e) if e.hash == hash && e.capsule == entry.capsule => true,
        Some(e) => {
            return Err(bad(format!(
                "{name} {version} is published already with hash {}; a published version \
                 never changes (raise the version)",
                e.hash
            )))
        }
        None => false,
    };
    if !unchanged {
        astrid_shuttle::write_atomic(&dir.join(&file), artifact)?;
        index.entries_mut(kind).push(entry.clone());
        index
            .entries_mut(kind)
            .sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    }
    // Re-signing (also of an unchanged index) renews its expiry.
    index.serial += 1;
    index.expires = valid_for.map(|d| now.saturating_add(d.as_secs()));
    let text = signed::sign(Purpose::Index, &index.render(), key);
    astrid_shuttle::write_atomic(&index_path, text.as_bytes())?;
    Ok(Published {
        entry,
        serial: index.serial,
        unchanged,
    })
}
