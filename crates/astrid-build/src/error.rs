//! Everything that can go wrong building or loading a capsule package.

use std::path::PathBuf;

/// A failure of [`crate::build_capsule`] or [`crate::load_package`]. Messages name the file
/// involved so a user can act on them.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `Capsule.toml` is malformed or fails validation.
    #[error("{path}: invalid manifest: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The directory is not a capsule source tree or package.
    #[error("{path}: {reason}")]
    NotACapsule {
        /// The path given.
        path: PathBuf,
        /// What was expected there.
        reason: String,
    },
    /// `cargo` could not be started or the build failed.
    #[error("cargo build failed for {manifest}: {reason}")]
    Cargo {
        /// The `Cargo.toml` being built.
        manifest: PathBuf,
        /// Cargo's diagnostics, or why it could not run.
        reason: String,
    },
    /// The core module could not be turned into a valid component.
    #[error("{path}: cannot build a component: {reason}")]
    Componentize {
        /// The core wasm module.
        path: PathBuf,
        /// The encoder's or validator's error.
        reason: String,
    },
    /// The component imports something the host does not provide (Astrid registers no WASI).
    #[error(
        "{path}: the component imports {imports:?}, but capsules may import only astrid:* \
         interfaces (no WASI: build for wasm32-unknown-unknown and use astrid-sdk instead of \
         std I/O)"
    )]
    ForeignImports {
        /// The component or module involved.
        path: PathBuf,
        /// The offending import names.
        imports: Vec<String>,
    },
    /// The component does not export the guest interface.
    #[error("{path}: the component does not export {expected} (exports: {found:?})")]
    MissingExport {
        /// The component involved.
        path: PathBuf,
        /// The interface that must be exported.
        expected: String,
        /// What it exports instead.
        found: Vec<String>,
    },
    /// A component's bytes do not match the hash its manifest records.
    #[error("{file}: hash mismatch: manifest says {expected}, file is {actual}")]
    HashMismatch {
        /// The component file.
        file: String,
        /// The hash in the manifest.
        expected: String,
        /// The hash of the bytes found.
        actual: String,
    },
    /// A `.capsule` archive is malformed or holds unexpected entries.
    #[error("{path}: bad capsule archive: {reason}")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A `.capsule` archive could not be read as a tar stream.
    #[error("{path}: bad capsule archive: {source}")]
    ArchiveIo {
        /// The archive.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// One entry of a `.capsule` archive could not be read.
    #[error("{path}: bad capsule archive: {entry}: {source}")]
    ArchiveEntry {
        /// The archive.
        path: PathBuf,
        /// The entry's name.
        entry: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl BuildError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
