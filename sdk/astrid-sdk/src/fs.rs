//! Files under the roots the manifest grants (`fs_read`, `fs_write`). Paths are absolute or
//! start with `~/` (the principal's home); the kernel refuses `..` and escapes.

use serde::{Deserialize, Serialize};

use crate::bindings::astrid::fs::fs;
use crate::error::FsError;

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// Anything else (socket, device, ...).
    Other,
}

impl From<fs::FileKind> for FileKind {
    fn from(k: fs::FileKind) -> Self {
        match k {
            fs::FileKind::File => Self::File,
            fs::FileKind::Directory => Self::Directory,
            fs::FileKind::Symlink => Self::Symlink,
            fs::FileKind::Other => Self::Other,
        }
    }
}

/// What [`metadata`] reports about a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// File, directory, ...
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, milliseconds since the Unix epoch.
    pub modified_ms: u64,
    /// True when the capsule may not write it.
    pub readonly: bool,
}

impl Metadata {
    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.kind == FileKind::File
    }

    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Directory
    }
}

/// One entry of [`read_dir`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    /// The file name (no directory part).
    pub name: String,
    /// What it is.
    pub kind: FileKind,
}

/// The whole file.
pub fn read(path: &str) -> Result<Vec<u8>, FsError> {
    fs::read(path).map_err(Into::into)
}

/// The whole file as UTF-8 text; invalid UTF-8 is an `io` error, as in `std::fs`.
pub fn read_to_string(path: &str) -> Result<String, FsError> {
    String::from_utf8(read(path)?).map_err(|_| FsError::Io(format!("{path} is not valid UTF-8")))
}

/// Creates or truncates the file and writes `data`.
pub fn write(path: &str, data: impl AsRef<[u8]>) -> Result<(), FsError> {
    fs::write(path, data.as_ref()).map_err(Into::into)
}

/// Appends `data`, creating the file when missing.
pub fn append(path: &str, data: impl AsRef<[u8]>) -> Result<(), FsError> {
    fs::append(path, data.as_ref()).map_err(Into::into)
}

/// The entries of a directory.
pub fn read_dir(path: &str) -> Result<Vec<DirEntry>, FsError> {
    let entries = fs::list_dir(path)?;
    Ok(entries
        .into_iter()
        .map(|e| DirEntry {
            name: e.name,
            kind: e.kind.into(),
        })
        .collect())
}

/// What the path names, its size and times.
pub fn metadata(path: &str) -> Result<Metadata, FsError> {
    let m = fs::stat(path)?;
    Ok(Metadata {
        kind: m.kind.into(),
        size: m.size,
        modified_ms: m.modified_ms,
        readonly: m.readonly,
    })
}

/// True when something exists at `path`; other errors (such as denied) are returned.
pub fn exists(path: &str) -> Result<bool, FsError> {
    match fs::stat(path) {
        Ok(_) => Ok(true),
        Err(fs::ErrorCode::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Creates one directory; its parent must exist.
pub fn create_dir(path: &str) -> Result<(), FsError> {
    fs::mkdir(path, false).map_err(Into::into)
}

/// Creates a directory and any missing parents.
pub fn create_dir_all(path: &str) -> Result<(), FsError> {
    fs::mkdir(path, true).map_err(Into::into)
}

/// Removes a file.
pub fn remove_file(path: &str) -> Result<(), FsError> {
    fs::remove(path, false).map_err(Into::into)
}

/// Removes an empty directory.
pub fn remove_dir(path: &str) -> Result<(), FsError> {
    fs::remove(path, false).map_err(Into::into)
}

/// Removes a directory and everything in it.
pub fn remove_dir_all(path: &str) -> Result<(), FsError> {
    fs::remove(path, true).map_err(Into::into)
}

/// Moves `from` to `to`, replacing a file at `to`.
pub fn rename(from: &str, to: &str) -> Result<(), FsError> {
    fs::rename(from, to).map_err(Into::into)
}
