use astrid_fsgate::{FsGateError, FsRoots};

use super::HostState;
use crate::bindings::astrid::fs::fs::{DirEntry, ErrorCode, FileKind, Host, Metadata};

/// Reads larger than this are refused rather than buffered into the guest's memory.
const MAX_READ: u64 = 16 * 1024 * 1024;

impl HostState {
    /// The manifest gate for `astrid:fs`: a capsule with no roots gets no filesystem at all.
    /// Per-path confinement (`..`, symlinks, hard links, /proc) is the fsgate's job.
    fn fs_roots(&self, op: &str, path: &str) -> Result<&FsRoots, ErrorCode> {
        match &self.ctx.fs {
            Some(roots) => Ok(roots),
            None => {
                let reason = format!(
                    "capsule `{}` declares no filesystem roots; `{path}` is out of reach",
                    self.ctx.capsule()
                );
                self.denied(op, &reason);
                Err(ErrorCode::Denied(reason))
            }
        }
    }

    fn fs_result<T>(&self, op: &str, r: Result<T, FsGateError>) -> Result<T, ErrorCode> {
        r.map_err(|e| {
            if let FsGateError::Denied(m) = &e {
                self.denied(op, m);
            }
            map(e)
        })
    }
}

fn map(e: FsGateError) -> ErrorCode {
    match e {
        FsGateError::Denied(m) => ErrorCode::Denied(m),
        FsGateError::NotFound(m) => ErrorCode::NotFound(m),
        FsGateError::AlreadyExists(m) => ErrorCode::AlreadyExists(m),
        FsGateError::InvalidArgument(m) => ErrorCode::InvalidArgument(m),
        FsGateError::NotADirectory(m) => ErrorCode::NotADirectory(m),
        FsGateError::IsADirectory(m) => ErrorCode::IsADirectory(m),
        FsGateError::TooLarge(m) => ErrorCode::QuotaExceeded(m),
        FsGateError::Io(m) => ErrorCode::Io(m),
    }
}

fn kind(k: astrid_fsgate::FileKind) -> FileKind {
    match k {
        astrid_fsgate::FileKind::File => FileKind::File,
        astrid_fsgate::FileKind::Directory => FileKind::Directory,
        astrid_fsgate::FileKind::Symlink => FileKind::Symlink,
        astrid_fsgate::FileKind::Other => FileKind::Other,
    }
}

impl Host for HostState {
    fn read(&mut self, path: String) -> Result<Vec<u8>, ErrorCode> {
        let r = self.fs_roots("fs.read", &path)?.read(&path, MAX_READ);
        self.fs_result("fs.read", r)
    }

    fn write(&mut self, path: String, data: Vec<u8>) -> Result<(), ErrorCode> {
        let r = self.fs_roots("fs.write", &path)?.write(&path, &data);
        self.fs_result("fs.write", r)
    }

    fn append(&mut self, path: String, data: Vec<u8>) -> Result<(), ErrorCode> {
        let r = self.fs_roots("fs.append", &path)?.append(&path, &data);
        self.fs_result("fs.append", r)
    }

    fn list_dir(&mut self, path: String) -> Result<Vec<DirEntry>, ErrorCode> {
        let r = self.fs_roots("fs.list-dir", &path)?.list_dir(&path);
        let entries = self.fs_result("fs.list-dir", r)?;
        Ok(entries
            .into_iter()
            .map(|e| DirEntry {
                name: e.name,
                kind: kind(e.kind),
            })
            .collect())
    }

    fn stat(&mut self, path: String) -> Result<Metadata, ErrorCode> {
        let r = self.fs_roots("fs.stat", &path)?.stat(&path);
        let m = self.fs_result("fs.stat", r)?;
        Ok(Metadata {
            kind: kind(m.kind),
            size: m.size,
            modified_ms: m.modified_ms,
            readonly: m.readonly,
        })
    }

    fn mkdir(&mut self, path: String, recursive: bool) -> Result<(), ErrorCode> {
        let r = self.fs_roots("fs.mkdir", &path)?.mkdir(&path, recursive);
        self.fs_result("fs.mkdir", r)
    }

    fn remove(&mut self, path: String, recursive: bool) -> Result<(), ErrorCode> {
        let r = self.fs_roots("fs.remove", &path)?.remove(&path, recursive);
        self.fs_result("fs.remove", r)
    }

    fn rename(&mut self, source: String, destination: String) -> Result<(), ErrorCode> {
        let r = self
            .fs_roots("fs.rename", &source)?
            .rename(&source, &destination);
        self.fs_result("fs.rename", r)
    }
}
