//! The package layout: `<name>-<version>/` (Capsule.toml + component) and the single-file
//! `<name>-<version>.capsule` tar holding the same two files.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use astrid_types::{ArtifactHash, Manifest};

use crate::error::BuildError;

/// The manifest's file name, in a source tree, a package directory and an archive.
pub const MANIFEST_FILE: &str = "Capsule.toml";

/// Largest manifest accepted from an archive.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Largest component accepted from an archive; far above any real capsule, but bounded so a
/// hostile archive cannot exhaust memory.
const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// A verified package: its manifest and component bytes, the hash checked.
#[derive(Debug, Clone)]
pub struct LoadedPackage {
    /// The manifest, parsed and validated.
    pub manifest: Manifest,
    /// The manifest exactly as stored in the package.
    pub manifest_text: String,
    /// The component's file name (`[[component]] file`).
    pub component_file: String,
    /// The component bytes, matching `hash`.
    pub component: Vec<u8>,
    /// The component's BLAKE3 hash, as recorded in the manifest and verified.
    pub hash: ArtifactHash,
}

/// Writes the package directory and the archive; returns `(dir, archive)`.
pub(crate) fn write_package(
    out_dir: &Path,
    stem: &str,
    manifest_text: &str,
    component_file: &str,
    component: &[u8],
) -> Result<(PathBuf, PathBuf), BuildError> {
    let dir = out_dir.join(stem);
    if dir.exists() {
        // A previous build may have used another component file name; start clean.
        std::fs::remove_dir_all(&dir).map_err(|e| BuildError::io(&dir, e))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| BuildError::io(&dir, e))?;
    let manifest_path = dir.join(MANIFEST_FILE);
    std::fs::write(&manifest_path, manifest_text).map_err(|e| BuildError::io(&manifest_path, e))?;
    let component_path = dir.join(component_file);
    std::fs::write(&component_path, component).map_err(|e| BuildError::io(&component_path, e))?;

    let archive = out_dir.join(format!("{stem}.capsule"));
    let bytes = archive_bytes(manifest_text.as_bytes(), component_file, component)
        .map_err(|e| BuildError::io(&archive, e))?;
    // Readers never see a half-written archive.
    let tmp = out_dir.join(format!(".{stem}.capsule.tmp"));
    std::fs::write(&tmp, bytes).map_err(|e| BuildError::io(&tmp, e))?;
    std::fs::rename(&tmp, &archive).map_err(|e| BuildError::io(&archive, e))?;
    Ok((dir, archive))
}

/// A deterministic tar (fixed mode, owner and time), so equal inputs give equal archives.
fn archive_bytes(
    manifest: &[u8],
    component_file: &str,
    component: &[u8],
) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in [(MANIFEST_FILE, manifest), (component_file, component)] {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        builder.append_data(&mut header, name, data)?;
    }
    builder.into_inner()
}

/// Loads a package directory (Capsule.toml with hash + component next to it).
pub(crate) fn load_dir(dir: &Path) -> Result<LoadedPackage, BuildError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let text =
        std::fs::read_to_string(&manifest_path).map_err(|e| BuildError::io(&manifest_path, e))?;
    let manifest = parse_installable(&text, &manifest_path)?;
    let file = manifest.components[0].file.clone();
    let component_path = dir.join(&file);
    let component =
        std::fs::read(&component_path).map_err(|e| BuildError::io(&component_path, e))?;
    verify(
        manifest,
        text,
        file,
        component,
        &component_path.display().to_string(),
    )
}

/// Loads a `.capsule` archive. It must hold exactly the manifest and the component it names.
pub(crate) fn load_archive(path: &Path) -> Result<LoadedPackage, BuildError> {
    let bad = |reason: String| BuildError::Archive {
        path: path.to_path_buf(),
        reason,
    };
    let unreadable = |source: std::io::Error| BuildError::ArchiveIo {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|e| BuildError::io(path, e))?;
    let mut entries: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut archive = tar::Archive::new(file);
    for entry in archive.entries().map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let name = entry_name(&entry).map_err(bad)?;
        let limit = if name == MANIFEST_FILE {
            MAX_MANIFEST_BYTES
        } else {
            MAX_COMPONENT_BYTES
        };
        if entry.header().size().map_err(unreadable)? > limit {
            return Err(bad(format!("{name} is larger than {limit} bytes")));
        }
        let mut data = Vec::new();
        entry
            .take(limit + 1)
            .read_to_end(&mut data)
            .map_err(|source| BuildError::ArchiveEntry {
                path: path.to_path_buf(),
                entry: name.clone(),
                source,
            })?;
        if entries.insert(name.clone(), data).is_some() {
            return Err(bad(format!("{name} appears twice")));
        }
    }
    let text = entries
        .remove(MANIFEST_FILE)
        .ok_or_else(|| bad(format!("no {MANIFEST_FILE}")))?;
    let text = String::from_utf8(text).map_err(|_| bad(format!("{MANIFEST_FILE} is not UTF-8")))?;
    let origin = PathBuf::from(format!("{}:{MANIFEST_FILE}", path.display()));
    let manifest = parse_installable(&text, &origin)?;
    let file = manifest.components[0].file.clone();
    let component = entries
        .remove(&file)
        .ok_or_else(|| bad(format!("no {file}, which the manifest names")))?;
    if let Some(extra) = entries.keys().next() {
        return Err(bad(format!("unexpected entry {extra}")));
    }
    verify(
        manifest,
        text,
        file.clone(),
        component,
        &format!("{}:{file}", path.display()),
    )
}

/// The plain file name of an archive entry; directories, links and paths are refused.
fn entry_name<R: Read>(entry: &tar::Entry<'_, R>) -> Result<String, String> {
    let path = entry.path().map_err(|e| e.to_string())?;
    let name = path.to_string_lossy().trim_start_matches("./").to_owned();
    if entry.header().entry_type() != tar::EntryType::Regular {
        return Err(format!("{name} is not a regular file"));
    }
    if name.is_empty() || name.contains(['/', '\\']) || name == ".." || name == "." {
        return Err(format!("entry {name:?} is not a plain file name"));
    }
    Ok(name)
}

fn parse_installable(text: &str, origin: &Path) -> Result<Manifest, BuildError> {
    let manifest = Manifest::parse(text, origin).map_err(crate::manifest_error)?;
    manifest
        .require_hashes(origin)
        .map_err(crate::manifest_error)?;
    Ok(manifest)
}

/// Checks the component against the manifest's hash. `shown` names the file in errors.
fn verify(
    manifest: Manifest,
    manifest_text: String,
    component_file: String,
    component: Vec<u8>,
    shown: &str,
) -> Result<LoadedPackage, BuildError> {
    let expected = manifest.components[0]
        .hash
        .ok_or_else(|| BuildError::Manifest {
            path: PathBuf::from(shown),
            reason: "component has no hash".into(),
        })?;
    let actual = ArtifactHash::of(&component);
    if actual != expected {
        return Err(BuildError::HashMismatch {
            file: shown.to_owned(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(LoadedPackage {
        manifest,
        manifest_text,
        component_file,
        component,
        hash: actual,
    })
}
