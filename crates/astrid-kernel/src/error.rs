use thiserror::Error;

#[derive(Debug, Error)]
pub enum KernelError {
    /// The package's manifest breaks a rule the kernel checks (a missing file, a tool topic
    /// another capsule answers).
    #[error("{0}")]
    Manifest(String),
    /// The package's manifest does not parse or lacks what an install needs.
    #[error("{0}")]
    InvalidManifest(#[source] astrid_types::ManifestError),
    #[error("{0}")]
    Graph(#[source] astrid_types::GraphError),
    #[error("artifact {file}: hash mismatch: manifest says {expected}, content is {actual}")]
    HashMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("capsule `{0}` is already installed; use `astrid capsule update`")]
    AlreadyInstalled(String),
    #[error("capsule `{0}` is not installed")]
    NotInstalled(String),
    #[error("capsule `{name}` is still needed by {}", dependents.join(", "))]
    InUse {
        name: String,
        dependents: Vec<String>,
    },
    /// A capsule (or the runtime, the airlock) could not be set up; `source` is the
    /// sandbox's, the airlock's or the filesystem gate's error.
    #[error("capsule `{name}` could not be loaded: {source}")]
    Load {
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading, writing or parsing a file of the kernel's failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("unknown principal `{0}`")]
    UnknownPrincipal(String),
    #[error("store for principal `{principal}`: {source}")]
    Store {
        principal: String,
        #[source]
        source: astrid_store::StoreError,
    },
    /// The principal's store file cannot be opened (not a database, unreadable, a newer
    /// schema): that principal is refused, everyone else is served.
    #[error("store of principal `{principal}` at {}: {source}", path.display())]
    StoreOpen {
        principal: String,
        path: std::path::PathBuf,
        #[source]
        source: astrid_store::StoreError,
    },
    #[error("audit chain of principal `{principal}`: {source}")]
    Audit {
        principal: String,
        // Boxed: an `AuditError` would double the size of every `KernelError`.
        #[source]
        source: Box<astrid_audit::AuditError>,
    },
    #[error("capability: {0}")]
    Capability(String),
    /// A resource pattern given for a grant or a device does not parse.
    #[error("capability: pattern `{pattern}`: {source}")]
    Pattern {
        pattern: String,
        #[source]
        source: astrid_crypto::CryptoError,
    },
    #[error("runtime key: {0}")]
    Key(#[source] astrid_crypto::CryptoError),
    #[error("runtime key: secret store key: {0}")]
    SecretKey(#[source] astrid_store::StoreError),
    #[error("another astrid daemon already runs on {0}")]
    AlreadyRunning(String),
    #[error("{0}")]
    Settings(String),
    #[error(
        "capsule `{name}` is pinned by Distro.lock to {what} {pinned}; this one is {actual} \
         (install a distro whose lock pins it: `astrid distro install`)"
    )]
    Pinned {
        name: String,
        /// `component` or `Capsule.toml`.
        what: &'static str,
        pinned: astrid_types::ArtifactHash,
        actual: astrid_types::ArtifactHash,
    },
    #[error("{0}: no capsule is loaded until a valid lock is pinned (`astrid distro install`)")]
    LockUnreadable(String),
}

impl KernelError {
    pub(crate) fn io(
        path: &std::path::Path,
        e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        KernelError::Io {
            path: path.display().to_string(),
            source: e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::path::Path;

    use super::KernelError;

    #[test]
    fn a_manifest_error_stays_the_source() {
        let parsed = astrid_types::Manifest::parse("not = [toml", Path::new("Capsule.toml"));
        let e = KernelError::InvalidManifest(parsed.unwrap_err());
        let source = e.source().expect("the manifest error is kept");
        assert!(source.is::<astrid_types::ManifestError>(), "{source:?}");
        assert_eq!(e.to_string(), source.to_string());
    }

    #[test]
    fn an_io_error_stays_the_source() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = KernelError::io(Path::new("/x/registry.json"), io);
        assert_eq!(e.to_string(), "/x/registry.json: denied");
        let source = e.source().expect("the io error is kept");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
    }
}
