use std::io;

/// Why a filesystem request from a capsule was refused or failed.
///
/// Every message names the guest path as the capsule wrote it, never the host path a root
/// resolved to, so a capsule learns nothing about the host layout it was not granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsGateError {
    #[error("denied: {0}")]
    Denied(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("not a directory: {0}")]
    NotADirectory(String),
    #[error("is a directory: {0}")]
    IsADirectory(String),
    #[error("too large: {0}")]
    TooLarge(String),
    #[error("i/o error: {0}")]
    Io(String),
}

/// Translate an I/O error from cap-std into a gate error that names `guest`.
pub(crate) fn map_io(err: io::Error, guest: &str) -> FsGateError {
    use io::ErrorKind as K;
    match err.kind() {
        K::NotFound => FsGateError::NotFound(guest.to_owned()),
        K::AlreadyExists => FsGateError::AlreadyExists(guest.to_owned()),
        // cap-std reports an escape (`..` through a symlink, an absolute symlink) as a
        // synthetic PermissionDenied with no OS errno; a real EACCES carries one.
        K::PermissionDenied if err.raw_os_error().is_none() => {
            FsGateError::Denied(format!("{guest}: escapes the granted root"))
        }
        K::PermissionDenied => {
            FsGateError::Denied(format!("{guest}: permission denied by the host"))
        }
        K::NotADirectory => FsGateError::NotADirectory(guest.to_owned()),
        K::IsADirectory => FsGateError::IsADirectory(guest.to_owned()),
        K::DirectoryNotEmpty => {
            FsGateError::InvalidArgument(format!("{guest}: directory is not empty"))
        }
        K::InvalidInput | K::InvalidFilename => {
            FsGateError::InvalidArgument(format!("{guest}: {err}"))
        }
        K::CrossesDevices => {
            FsGateError::InvalidArgument(format!("{guest}: cannot move across filesystems"))
        }
        K::ReadOnlyFilesystem => {
            FsGateError::Denied(format!("{guest}: the host filesystem is read-only"))
        }
        _ => FsGateError::Io(format!("{guest}: {err}")),
    }
}
