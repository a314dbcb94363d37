use thiserror::Error;

#[derive(Debug, Error)]
pub enum KernelError {
    #[error("{0}")]
    Manifest(String),
    #[error("{0}")]
    Graph(String),
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
    #[error("capsule `{name}` could not be loaded: {reason}")]
    Load { name: String, reason: String },
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
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
    #[error("audit chain of principal `{principal}`: {reason}")]
    Audit { principal: String, reason: String },
    #[error("capability: {0}")]
    Capability(String),
    #[error("runtime key: {0}")]
    Key(String),
    #[error("another astrid daemon already runs on {0}")]
    AlreadyRunning(String),
    #[error("{0}")]
    Settings(String),
}

impl KernelError {
    pub(crate) fn io(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        KernelError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    }
}
