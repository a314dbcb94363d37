//! Signed distro bundles. A `.shuttle` file carries a whole distro to a machine without
//! network: its `Distro.toml`, its `Distro.lock`, every `.capsule` package, and a publisher's
//! ed25519 signature over the lock. The lock pins each package's component and manifest by
//! BLAKE3 and the `Distro.toml` by BLAKE3, so one signature covers every byte that matters.
//!
//! The file is a deterministic tar with exactly these entries, in this order:
//!
//! | entry | holds |
//! | --- | --- |
//! | `SHUTTLE` | the format line, `astrid-shuttle 1` |
//! | `Distro.toml` | the distro |
//! | `Distro.lock` | the lock, as signed |
//! | `Distro.lock.sig` | `publisher = "<64 hex>"`, `signature = "<128 hex>"` |
//! | `capsules/<file>.capsule` | one per package |
//!
//! Reading refuses anything else (another name, a directory, a link, an entry twice, a
//! truncated file) and bounds every size, before a signature is even looked at. Checking that
//! the packages are what the lock pins is the installer's job (it loads each package); this
//! crate proves who signed the lock.

#![forbid(unsafe_code)]

mod trust;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use astrid_crypto::{KeyPair, PublicKey};
use astrid_types::distro::{DistroLock, LOCK_FILE, MANIFEST_FILE, MAX_FILE_BYTES};
use astrid_types::ArtifactHash;

pub use trust::{TrustStore, TrustedPublisher, TRUST_FILE};

/// The first entry's name and content.
pub const MARKER_FILE: &str = "SHUTTLE";
pub const MARKER: &str = "astrid-shuttle 1\n";
/// The signature entry.
pub const SIGNATURE_FILE: &str = "Distro.lock.sig";
/// Where packages live inside the bundle.
pub const CAPSULE_DIR: &str = "capsules/";
/// What the publisher signs: this, then the lock's bytes. The prefix keeps a lock signature
/// from being valid as any other kind of Astrid signature.
pub const SIGNING_CONTEXT: &[u8] = b"astrid-shuttle-v1 Distro.lock\n";

/// Most packages one bundle may hold.
pub const MAX_PACKAGES: usize = 256;
/// Largest package accepted (as for a single `.capsule`).
pub const MAX_PACKAGE_BYTES: u64 = 256 << 20;
/// Largest bundle accepted in total.
pub const MAX_BUNDLE_BYTES: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ShuttleError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a well-formed bundle: what is wrong, naming the entry.
    #[error("{path}: not a valid .shuttle bundle: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("{path}: the signature does not verify: the lock was changed after it was signed, or it was signed by another key than the one named ({publisher})")]
    BadSignature { path: PathBuf, publisher: String },
    #[error("{path}: the lock was made for another Distro.toml (lock pins {pinned}, the bundle's is {actual})")]
    ManifestMismatch {
        path: PathBuf,
        pinned: ArtifactHash,
        actual: ArtifactHash,
    },
    #[error("{path}: signed by {key}, which is not a trusted publisher (`astrid trust add NAME {key}` trusts it)")]
    Untrusted { path: PathBuf, key: String },
    #[error("trusted publishers {path}: {reason}")]
    TrustFile { path: PathBuf, reason: String },
}

impl ShuttleError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        ShuttleError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A bundle read from disk, its shape checked; the signature not yet (see [`Bundle::verify`]).
#[derive(Debug)]
pub struct Bundle {
    pub path: PathBuf,
    pub distro_toml: Vec<u8>,
    /// The lock's bytes exactly as signed.
    pub lock_text: String,
    pub lock: DistroLock,
    pub publisher: PublicKey,
    signature: [u8; 64],
    /// `(file name, bytes)` per package, in bundle order.
    pub packages: Vec<(String, Vec<u8>)>,
}

/// The signature entry's text.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureFile {
    publisher: String,
    signature: String,
}

/// Writes a bundle of `dir`'s `Distro.toml`, `Distro.lock` and `*.capsule` files, signed
/// with `key`, to `out` (through a temporary file: a reader never sees half a bundle).
/// The caller checks beforehand that the packages are what the lock pins.
pub fn pack(dir: &Path, key: &KeyPair, out: &Path) -> Result<(), ShuttleError> {
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| ShuttleError::io(&dir.join(name), e))
    };
    let distro_toml = read(MANIFEST_FILE)?;
    let lock_bytes = read(LOCK_FILE)?;
    let signature = key.sign(&signed_message(&lock_bytes));
    let sig = SignatureFile {
        publisher: key.public_key().to_string(),
        signature: hex::encode(signature),
    };
    let sig_text = toml::to_string(&sig).unwrap_or_default();
    let mut packages = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| ShuttleError::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| ShuttleError::io(dir, e))?.path();
        if path.is_file() && path.extension().is_some_and(|x| x == "capsule") {
            packages.push(path);
        }
    }
    packages.sort();
    let mut builder = tar::Builder::new(Vec::new());
    let mut append = |name: &str, data: &[u8]| -> std::io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        builder.append_data(&mut header, name, data)
    };
    let io = |e| ShuttleError::io(out, e);
    append(MARKER_FILE, MARKER.as_bytes()).map_err(io)?;
    append(MANIFEST_FILE, &distro_toml).map_err(io)?;
    append(LOCK_FILE, &lock_bytes).map_err(io)?;
    append(SIGNATURE_FILE, sig_text.as_bytes()).map_err(io)?;
    for p in &packages {
        let bytes = std::fs::read(p).map_err(|e| ShuttleError::io(p, e))?;
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        append(&format!("{CAPSULE_DIR}{name}"), &bytes).map_err(io)?;
    }
    let bytes = builder.into_inner().map_err(io)?;
    write_atomic(out, &bytes)
}

fn signed_message(lock: &[u8]) -> Vec<u8> {
    let mut m = SIGNING_CONTEXT.to_vec();
    m.extend_from_slice(lock);
    m
}

/// Through a temporary file in the same directory, fsynced, then renamed: a reader sees the
/// old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ShuttleError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| ShuttleError::io(dir, e))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ShuttleError::io(path, e)
    })
}

impl Bundle {
    /// Reads and shape-checks the bundle at `path`.
    pub fn read(path: &Path) -> Result<Bundle, ShuttleError> {
        let bad = |reason: String| ShuttleError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| ShuttleError::io(path, e))?;
        let size = file
            .metadata()
            .map_err(|e| ShuttleError::io(path, e))?
            .len();
        if size > MAX_BUNDLE_BYTES {
            return Err(bad(format!("{size} bytes, more than {MAX_BUNDLE_BYTES}")));
        }
        let mut archive = tar::Archive::new(file);
        let mut seen: Vec<String> = Vec::new();
        let mut parts: [Option<Vec<u8>>; 4] = Default::default();
        let mut packages = Vec::new();
        let entries = archive
            .entries()
            .map_err(|e| bad(format!("unreadable: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(format!("unreadable (truncated?): {e}")))?;
            let name = entry
                .path()
                .map_err(|e| bad(format!("an entry name is not valid: {e}")))?
                .to_string_lossy()
                .into_owned();
            if entry.header().entry_type() != tar::EntryType::Regular {
                return Err(bad(format!("`{name}` is not a regular file")));
            }
            if seen.contains(&name) {
                return Err(bad(format!("`{name}` appears twice")));
            }
            let fixed = [MARKER_FILE, MANIFEST_FILE, LOCK_FILE, SIGNATURE_FILE];
            let slot = fixed.iter().position(|f| *f == name);
            // The four fixed entries come first, in order, so a reader knows what it holds
            // before it reads any package.
            if let Some(i) = slot {
                if i != seen.len() {
                    return Err(bad(format!("`{name}` is out of place")));
                }
            } else if seen.len() < fixed.len() {
                return Err(bad(format!(
                    "`{name}` comes before `{}`",
                    fixed[seen.len()]
                )));
            } else if !is_package_name(&name) {
                return Err(bad(format!(
                    "unexpected entry `{name}` (only {CAPSULE_DIR}<name>.capsule may follow)"
                )));
            }
            let limit = if slot.is_some() {
                MAX_FILE_BYTES as u64
            } else {
                MAX_PACKAGE_BYTES
            };
            let declared = entry.header().size().unwrap_or(u64::MAX);
            if declared > limit {
                return Err(bad(format!(
                    "`{name}` is {declared} bytes, more than {limit}"
                )));
            }
            let mut data = Vec::with_capacity(declared as usize);
            (&mut entry)
                .take(limit + 1)
                .read_to_end(&mut data)
                .map_err(|e| bad(format!("`{name}` is unreadable (truncated?): {e}")))?;
            if data.len() as u64 != declared {
                return Err(bad(format!(
                    "`{name}` is truncated: {} of {declared} bytes",
                    data.len()
                )));
            }
            seen.push(name.clone());
            match slot {
                Some(i) => parts[i] = Some(data),
                None => {
                    if packages.len() == MAX_PACKAGES {
                        return Err(bad(format!("more than {MAX_PACKAGES} packages")));
                    }
                    let file = name.trim_start_matches(CAPSULE_DIR).to_string();
                    packages.push((file, data));
                }
            }
        }
        let [marker, distro_toml, lock, sig] = parts;
        let missing = |what: &str| bad(format!("no `{what}` entry (truncated?)"));
        let marker = marker.ok_or_else(|| missing(MARKER_FILE))?;
        if marker != MARKER.as_bytes() {
            return Err(bad(format!(
                "`{MARKER_FILE}` does not say `{}`",
                MARKER.trim()
            )));
        }
        let distro_toml = distro_toml.ok_or_else(|| missing(MANIFEST_FILE))?;
        let lock_bytes = lock.ok_or_else(|| missing(LOCK_FILE))?;
        let sig = sig.ok_or_else(|| missing(SIGNATURE_FILE))?;
        if packages.is_empty() {
            return Err(bad("no packages".into()));
        }
        let lock_text = String::from_utf8(lock_bytes)
            .map_err(|_| bad(format!("`{LOCK_FILE}` is not UTF-8")))?;
        let lock =
            DistroLock::parse(&lock_text, Path::new(LOCK_FILE)).map_err(|e| bad(e.to_string()))?;
        let sig_text = std::str::from_utf8(&sig)
            .map_err(|_| bad(format!("`{SIGNATURE_FILE}` is not UTF-8")))?;
        let sig: SignatureFile = toml::from_str(sig_text)
            .map_err(|e| bad(format!("`{SIGNATURE_FILE}`: {}", e.message())))?;
        let publisher: PublicKey = sig
            .publisher
            .parse()
            .map_err(|e| bad(format!("`{SIGNATURE_FILE}` publisher: {e}")))?;
        let mut signature = [0u8; 64];
        hex::decode_to_slice(&sig.signature, &mut signature)
            .map_err(|e| bad(format!("`{SIGNATURE_FILE}` signature: {e}")))?;
        Ok(Bundle {
            path: path.to_path_buf(),
            distro_toml,
            lock_text,
            lock,
            publisher,
            signature,
            packages,
        })
    }

    /// Checks the publisher's signature over the lock, and that the lock is for this
    /// bundle's `Distro.toml`. Whether the publisher is trusted is [`TrustStore::check`].
    pub fn verify(&self) -> Result<(), ShuttleError> {
        self.publisher
            .verify(&signed_message(self.lock_text.as_bytes()), &self.signature)
            .map_err(|_| ShuttleError::BadSignature {
                path: self.path.clone(),
                publisher: self.publisher.to_string(),
            })?;
        let actual = ArtifactHash::of(&self.distro_toml);
        if self.lock.manifest != actual {
            return Err(ShuttleError::ManifestMismatch {
                path: self.path.clone(),
                pinned: self.lock.manifest,
                actual,
            });
        }
        Ok(())
    }

    /// Writes the distro (Distro.toml, Distro.lock, the packages) into `dir`, which should
    /// be new and private: the installer then checks it like any distro directory.
    pub fn extract(&self, dir: &Path) -> Result<(), ShuttleError> {
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).map_err(|e| ShuttleError::io(&p, e))
        };
        write(MANIFEST_FILE, &self.distro_toml)?;
        write(LOCK_FILE, self.lock_text.as_bytes())?;
        for (name, bytes) in &self.packages {
            write(name, bytes)?;
        }
        Ok(())
    }
}

/// `capsules/<name>.capsule` with a plain file name: no further `/`, no `..`, no hidden file.
fn is_package_name(name: &str) -> bool {
    let Some(file) = name.strip_prefix(CAPSULE_DIR) else {
        return false;
    };
    file.ends_with(".capsule")
        && file.len() > ".capsule".len()
        && !file.starts_with('.')
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests;
