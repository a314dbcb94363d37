//! Per-principal durable storage: one SQLite file per principal holding every capsule's KV
//! namespace and the kernel's bookkeeping for that principal.

mod config;
mod devices;
mod egress;
mod kv;
mod meta;
mod replica;
mod schema;
mod secrets;
mod tokens;

pub use devices::DeviceRow;
pub use secrets::{SecretKey, SecretMeta};

use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::Connection;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// The file's schema is newer than this build, or could not be set up.
    #[error("store schema: {0}")]
    Schema(String),
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A stored secret could not be decrypted, or fresh randomness was unavailable.
    #[error("secret: {0}")]
    Secret(String),
    /// No fresh randomness for a nonce.
    #[error("secret: no OS randomness for a nonce: {0}")]
    Random(#[source] rand::rand_core::OsError),
    /// The secret key file is missing its parent, unreadable, the wrong size or readable by
    /// others. Never repaired automatically: replacing the key would orphan every secret.
    #[error("secret key file {}: {reason}", path.display())]
    KeyFile { path: PathBuf, reason: String },
}

/// Size limits applied to every KV namespace in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLimits {
    pub max_value_bytes: usize,
    pub max_key_bytes: usize,
    pub max_keys_per_namespace: u64,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_value_bytes: 1024 * 1024,
            max_key_bytes: 1024,
            max_keys_per_namespace: 100_000,
        }
    }
}

/// One principal's store. Cheap to share across threads (`Arc<PrincipalStore>`); calls are
/// serialized on one connection, and each mutation is its own transaction.
pub struct PrincipalStore {
    conn: Mutex<Connection>,
    limits: StoreLimits,
    path: PathBuf,
    /// Bytes of keys and values in `kv`, once counted; kept current by this handle's writes
    /// (taken with `conn` held, so it cannot drift from what this connection wrote).
    kv_bytes: Mutex<Option<u64>>,
}

/// How long a writer waits for another connection (another process, or a second handle on
/// the same file) to release its lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl PrincipalStore {
    /// Open (creating when absent) the store at `path` with default limits.
    pub fn open(path: &Path) -> Result<PrincipalStore, StoreError> {
        Self::open_with_limits(path, StoreLimits::default())
    }

    /// Open (creating when absent) the store at `path`; its parent directory must exist.
    pub fn open_with_limits(
        path: &Path,
        limits: StoreLimits,
    ) -> Result<PrincipalStore, StoreError> {
        create_private(path)?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Schema(format!(
                "could not enable WAL journaling (got {mode})"
            )));
        }
        // FULL: a write the store acknowledged survives power loss, not only a crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.set_prepared_statement_cache_capacity(32);
        schema::migrate(&mut conn)?;
        Ok(PrincipalStore {
            conn: Mutex::new(conn),
            limits,
            path: path.to_path_buf(),
            kv_bytes: Mutex::new(None),
        })
    }

    pub fn limits(&self) -> &StoreLimits {
        &self.limits
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Rejects an empty string, one longer than `max` bytes, or one containing NUL (NUL
/// separates fields in the secrets' associated data, so it must not occur inside one).
pub(crate) fn check_text(what: &str, s: &str, max: usize) -> Result<(), StoreError> {
    if s.is_empty() {
        return Err(StoreError::InvalidArgument(format!(
            "{what} must not be empty"
        )));
    }
    if s.len() > max {
        return Err(StoreError::InvalidArgument(format!(
            "{what} of {} bytes exceeds the {max}-byte limit",
            s.len()
        )));
    }
    if s.contains('\0') {
        return Err(StoreError::InvalidArgument(format!(
            "{what} must not contain NUL"
        )));
    }
    Ok(())
}

/// Capsule names, config keys and secret names share this bound (capsule names are at
/// most 64 bytes by manifest validation).
pub(crate) const MAX_NAME_BYTES: usize = 64;

/// Create the database file owner-only before SQLite does, so it never exists with the
/// umask's wider permissions; SQLite gives its -wal and -shm files the same mode.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path).map(drop)
}
