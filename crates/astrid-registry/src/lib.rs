//! Install by name. A registry is a directory or a URL that any static file server can host:
//! an `index.toml` listing every version of every capsule package and distro bundle with its
//! file, size and BLAKE3 hash, signed as a whole by a publisher's ed25519 key. A client
//! refuses an index whose signature does not verify, whose signer is not a trusted publisher
//! (`astrid trust`), that is older than one it saw before or past its expiry, and any file
//! whose size or hash differs from the index. See `docs/REGISTRY.md`.
//!
//! A release channel (`channel.toml`, [`channel`]) is signed the same way and lists Astrid's
//! own releases per platform, for `astrid update`; [`release_archive`] packs and unpacks one
//! platform's binaries.

#![forbid(unsafe_code)]

pub mod channel;
mod index;
mod publish;
pub mod release_archive;
mod seen;
mod signed;
mod source;

use std::path::{Path, PathBuf};

use astrid_shuttle::{ShuttleError, TrustStore, TrustedPublisher};
use astrid_types::ArtifactHash;

pub use index::{Entry, Index, Kind, PackageName, Wanted, INDEX_FILE, INDEX_FORMAT};
pub use publish::{publish, Published};
pub use seen::{check_and_record, SEEN_FILE};
pub use signed::{open as open_signed, sign, Purpose};
pub use source::{is_relative_file, Fetcher, Location};

/// Largest package or bundle downloaded (as for a bundle read from disk).
pub const MAX_DOWNLOAD_BYTES: u64 = astrid_shuttle::MAX_BUNDLE_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry `{location}`: {reason}")]
    Location { location: String, reason: String },
    #[error("`{name}`: {reason}")]
    Name { name: String, reason: String },
    #[error("fetching {what}: {reason}")]
    Fetch { what: String, reason: String },
    #[error("{what}: refused: {reason}")]
    Refused { what: String, reason: String },
    #[error("{what}: signed by {key}, which is not a trusted publisher (`astrid trust add NAME {key}` trusts it)")]
    Untrusted { what: String, key: String },
    #[error("registry {location}: its index has serial {got}, older than serial {seen} seen before: refused (a stale mirror, or an update held back)")]
    Rollback {
        location: String,
        seen: u64,
        got: u64,
    },
    #[error("registry {location}: another index with the same serial {serial} was seen before: refused (the publisher's key may be in other hands)")]
    Fork { location: String, serial: u64 },
    #[error("{what}: {available}")]
    NotFound { what: String, available: String },
    #[error("{what}: its hash is {actual}, but the signed index pins {expected}: refused")]
    HashMismatch {
        what: String,
        expected: ArtifactHash,
        actual: ArtifactHash,
    },
    #[error("{path}: {reason}")]
    Seen { path: PathBuf, reason: String },
    #[error("publishing to {dir}: {reason}")]
    Publish { dir: PathBuf, reason: String },
    #[error("{what}: signed by {name} ({key}), a publisher trusted for distros and registries but not for Astrid's own releases (`astrid trust add {name} {key} --releases` trusts it for those)")]
    NotForReleases {
        what: String,
        name: String,
        key: String,
    },
    #[error("release archive {what}: {reason}")]
    Archive { what: String, reason: String },
    #[error(transparent)]
    Shuttle(#[from] ShuttleError),
}

/// A registry whose index was fetched, verified, found trusted and fresh.
pub struct Registry {
    fetcher: Fetcher,
    pub index: Index,
    /// The trusted publisher who signed the index.
    pub signer: TrustedPublisher,
}

impl Registry {
    /// Fetches `location`'s index and checks it: signature, trusted signer, expiry, and not
    /// older than the newest seen before (recorded in `seen_file`). `now` is Unix seconds.
    pub async fn open(
        location: Location,
        trust: &TrustStore,
        seen_file: &Path,
        now: u64,
    ) -> Result<Registry, RegistryError> {
        let fetcher = Fetcher::new(location)?;
        let signed = SignedFile::fetch(
            &fetcher,
            INDEX_FILE,
            index::MAX_INDEX_BYTES,
            Purpose::Index,
            trust,
        )
        .await?;
        let index = Index::parse(&signed.body).map_err(|r| signed.refused(r))?;
        signed.check_fresh(
            index.expires,
            index.serial,
            now,
            seen_file,
            &fetcher.location().to_string(),
        )?;
        Ok(Registry {
            fetcher,
            index,
            signer: signed.signer,
        })
    }

    pub fn location(&self) -> &Location {
        self.fetcher.location()
    }

    /// Where `entry`'s file is, for messages.
    pub fn describe(&self, entry: &Entry) -> String {
        self.fetcher.describe(&entry.file)
    }

    /// The bytes of `entry`'s file, checked against its size and hash.
    pub async fn download(&self, entry: &Entry) -> Result<Vec<u8>, RegistryError> {
        let what = format!("{} {}", entry.name, entry.version);
        let bytes = self.fetcher.get(&entry.file, entry.size).await?;
        let actual = ArtifactHash::of(&bytes);
        if bytes.len() as u64 != entry.size || actual != entry.hash {
            return Err(RegistryError::HashMismatch {
                what: format!("{what} ({})", self.describe(entry)),
                expected: entry.hash,
                actual,
            });
        }
        Ok(bytes)
    }
}

/// A signed file (index or channel) fetched, its signature verified under its purpose and its
/// signer found among the trusted publishers; its body not yet parsed.
pub(crate) struct SignedFile {
    what: String,
    pub body: String,
    pub signer: TrustedPublisher,
    hash: ArtifactHash,
}

impl SignedFile {
    pub async fn fetch(
        fetcher: &Fetcher,
        file: &str,
        max: u64,
        purpose: Purpose,
        trust: &TrustStore,
    ) -> Result<SignedFile, RegistryError> {
        let what = fetcher.describe(file);
        let bytes = fetcher.get(file, max).await?;
        let refused = |reason: String| RegistryError::Refused {
            what: what.clone(),
            reason,
        };
        let text = String::from_utf8(bytes).map_err(|_| refused("not UTF-8 text".into()))?;
        let hash = ArtifactHash::of(text.as_bytes());
        let (key, body) = signed::open(purpose, &text).map_err(refused)?;
        let signer = trust
            .trusted(&key)
            .ok_or_else(|| RegistryError::Untrusted {
                what: what.clone(),
                key: key.to_string(),
            })?
            .clone();
        Ok(SignedFile {
            body: body.to_string(),
            what,
            signer,
            hash,
        })
    }

    pub fn refused(&self, reason: String) -> RegistryError {
        RegistryError::Refused {
            what: self.what.clone(),
            reason,
        }
    }

    /// Not past `expires`, and not older than (or a fork of) what was seen before under
    /// `seen_key`, which is then recorded.
    pub fn check_fresh(
        &self,
        expires: Option<u64>,
        serial: u64,
        now: u64,
        seen_file: &Path,
        seen_key: &str,
    ) -> Result<(), RegistryError> {
        if let Some(expires) = expires.filter(|e| *e < now) {
            return Err(self.refused(format!(
                "it expired {} s ago; the publisher must re-sign it (publishing again does)",
                now - expires
            )));
        }
        check_and_record(seen_file, seen_key, serial, self.hash)
    }
}
