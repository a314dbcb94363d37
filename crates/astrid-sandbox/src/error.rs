use thiserror::Error;

/// Failures of the runtime itself: compiling, caching or linking a component.
#[derive(Debug, Error)]
pub enum SandboxError {
    #[error("engine configuration failed: {0}")]
    Engine(#[source] wasmtime::Error),
    #[error("component {hash} is not a valid Astrid capsule: {reason}")]
    InvalidComponent { hash: String, reason: String },
    #[error("component cache at {path}: {source}")]
    Cache {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The typed error a guest returned from one of its exports.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GuestError {
    #[error("{0}")]
    Failed(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("no handler named `{0}`")]
    UnknownHandler(String),
}

/// Why one invocation did not produce a result. Every variant leaves the runtime and every other
/// capsule untouched: the store that failed is dropped with the error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvokeError {
    #[error("capsule `{capsule}` returned an error: {error}")]
    Guest { capsule: String, error: GuestError },
    #[error("capsule `{capsule}` ran past its {limit_ms} ms deadline and was stopped")]
    Deadline { capsule: String, limit_ms: u64 },
    #[error(
        "capsule `{capsule}` exceeded its memory limit of {limit_bytes} bytes and was stopped"
    )]
    MemoryLimit { capsule: String, limit_bytes: u64 },
    #[error("capsule `{capsule}` trapped: {reason}")]
    Trap { capsule: String, reason: String },
    #[error("capsule `{capsule}` could not be instantiated: {reason}")]
    Instantiate { capsule: String, reason: String },
    #[error("capsule `{capsule}` was stopped")]
    Stopped { capsule: String },
}

impl InvokeError {
    /// True when the guest itself crashed (as opposed to returning an error value).
    pub fn is_crash(&self) -> bool {
        !matches!(self, InvokeError::Guest { .. })
    }
}
