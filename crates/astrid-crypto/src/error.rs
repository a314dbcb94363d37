//! The one error type of this crate.

use std::path::PathBuf;

/// Why a canonical byte string could not be decoded. Decoding is strict on purpose: a value
/// has exactly one encoding, so anything else (short, long, odd lengths) is refused rather
/// than repaired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("wrong domain separation tag")]
    DomainTag,
    #[error("input ends inside field {field}")]
    Truncated { field: &'static str },
    #[error("field {field} has length {got}, expected {expected}")]
    Length {
        field: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("field {field} is not a valid option marker")]
    OptionMarker { field: &'static str },
    #[error("field {field} is not valid UTF-8")]
    Utf8 { field: &'static str },
    #[error("{0} trailing bytes after the last field")]
    Trailing(usize),
    #[error("field {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("unsupported version {0}")]
    Version(u8),
    #[error("bad text form: {0}")]
    Text(String),
    /// The text form's body is not valid unpadded URL-safe base64.
    #[error("bad text form: {0}")]
    Base64(#[source] base64::DecodeError),
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error(
        "key file {path} has mode {mode:o}; it must not be readable by group or others (chmod 600)"
    )]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("invalid public key: {0}")]
    PublicKey(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("invalid resource pattern `{pattern}`: {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("cannot decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("cannot mint token: {0}")]
    Mint(String),
    /// The token to mint would overstep its parent.
    #[error("cannot mint token: {0}")]
    Widening(#[source] crate::mint::Widening),
    #[error("revocation list: {0}")]
    Revocation(String),
    #[error("operating system randomness unavailable: {0}")]
    Random(#[source] rand::rand_core::OsError),
}

impl CryptoError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CryptoError::Io {
            path: path.into(),
            source,
        }
    }
}
