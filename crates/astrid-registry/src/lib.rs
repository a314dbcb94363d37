//! Install by name. A registry is a directory or a URL that any static file server can host:
//! an `index.toml` listing every version of every capsule package and distro bundle with its
//! file, size and BLAKE3 hash, signed as a whole by a publisher's ed25519 key. A client
//! refuses an index whose signature does not verify, whose signer is not a trusted publisher
//! (`astrid trust`), that is older than one it saw before or past its expiry, and any file
//! whose size or hash differs from the index. See `docs/REGISTRY.md`.
//!
//! A release channel (`channel.toml`, [`channel`]) is signed the same way and lists Astrid's
//! own releases per platform, for `astrid update`.

#![forbid(unsafe_code)]

pub mod channel;
mod index;
mod publish;
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
        let what = fetcher.describe(INDEX_FILE);
        let bytes = fetcher.get(INDEX_FILE, index::MAX_INDEX_BYTES).await?;
        let refused = |reason: String| RegistryError::Refused {
            what: what.clone(),
            reason,
        };
        let text = String::from_utf8(bytes).map_err(|_| refused("not UTF-8 text".into()))?;
        let (key, body) = signed::open(Purpose::Index, &text).map_err(refused)?;
        let signer = trust
            .trusted(&key)
            .ok_or_else(|| RegistryError::Untrusted {
                what: what.clone(),
                key: key.to_string(),
            })?
            .clone();
        let index = Index::parse(body).map_err(refused)?;
        if let Some(expires) = index.expires.filter(|e| *e < now) {
            return Err(refused(format!(
                "it expired {} s ago; the publisher must re-sign it (`astrid registry publish` \
                 does)",
                now - expires
            )));
        }
        check_and_record(
            seen_file,
            &fetcher.location().to_string(),
            index.serial,
            ArtifactHash::of(text.as_bytes()),
        )?;
        Ok(Registry {
            fetcher,
            index,
            signer,
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
