//! The one error type of this crate (verification failures have their own, see
//! [`VerifyError`](crate::VerifyError)).

use std::path::PathBuf;
use std::sync::Arc;

use astrid_crypto::CryptoError;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is already open in another process or handle")]
    Locked(PathBuf),
    #[error("{path}: damaged record at byte {offset} ({reason}); run `astrid audit verify`")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{0}: the head file is missing although the log has entries")]
    HeadMissing(PathBuf),
    #[error("{path}: head file unusable: {reason}")]
    HeadInvalid { path: PathBuf, reason: String },
    #[error("{path}: the signed head records {head_seq} entries but the log ends at {last_seq}")]
    Truncated {
        path: PathBuf,
        head_seq: u64,
        last_seq: u64,
    },
    /// The chain does not check out (a link, seq, principal, signature, or the head
    /// against the log); open refuses to extend it.
    #[error("{path}: {source}; refusing to extend this chain (run `astrid audit verify`)")]
    Chain {
        path: PathBuf,
        #[source]
        source: crate::VerifyError,
    },
    /// An entry or the head names another principal than the one read for.
    #[error("{path}: belongs to principal `{found}`, not `{expected}` (a chain copied from another principal?)")]
    WrongPrincipal {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("audit field {field} is {len} bytes, over the {max} byte limit")]
    FieldTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("the audit log is closed")]
    Closed,
    /// The entry's write failed (typically `ENOSPC`, a full disk). Nothing of it is in the
    /// log, which is as it was before, so a later append may succeed once the cause is gone.
    #[error("the audit entry was not written, nothing was appended: {0}")]
    NotWritten(#[source] Arc<std::io::Error>),
    #[error("the audit log stopped accepting entries after a write failure: {0}")]
    Failed(String),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl AuditError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AuditError::Io {
            path: path.into(),
            source,
        }
    }
}
