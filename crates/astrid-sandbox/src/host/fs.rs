use std::path::PathBuf;
use std::sync::Arc;

use astrid_fsgate::{Access, FsGateError, FsRoots};

use super::HostState;
use crate::bindings::astrid::fs::fs::{DirEntry, ErrorCode, FileKind, Host, Metadata};

/// Reads larger than this are refused rather than buffered into the guest's memory.
const MAX_READ: u64 = 16 * 1024 * 1024;

impl HostState {
    /// The manifest gate for `astrid:fs`: a capsule with no roots gets no filesystem at all.
    /// Per-path confinement (`..`, symlinks, hard links, /proc) is the fsgate's job.
    fn fs_roots(&self, op: &str, path: &str) -> Result<Arc<FsRoots>, ErrorCode> {
        match &self.ctx.fs {
            Some(roots) => Ok(roots.clone()),
            None => {
                let reason = format!(
                    "capsule `{}` declares no filesystem roots; `{path}` is out of reach",
                    self.ctx.capsule()
                );
                self.denied(op, path, &reason);
                Err(ErrorCode::Denied(reason))
            }
        }
    }

    /// An operation that changes nothing: it runs, and its outcome is recorded before the
    /// guest sees any of it, so a failed append withholds the data.
    fn fs_look<T>(
        &mut self,
        op: &str,
        path: &str,
        run: impl FnOnce(&FsRoots) -> Result<T, FsGateError>,
        describe: impl FnOnce(&T) -> String,
    ) -> Result<T, ErrorCode> {
        let roots = self.fs_roots(op, path)?;
        if let Err(FsGateError::Denied(m)) = roots.resolve(path, Access::Read) {
            self.denied(op, path, &m);
            return Err(ErrorCode::Denied(m));
        }
        self.fs_token(op, path, &roots, false)?;
        match run(&roots) {
            Err(FsGateError::Denied(m)) => {
                self.denied(op, path, &m);
                Err(ErrorCode::Denied(m))
            }
            r => {
                let outcome = match &r {
                    Ok(v) => format!("ok: {}", describe(v)),
                    Err(e) => format!("failed: {e}"),
                };
                self.fs_audit_allowed(op, path, &outcome)?;
                r.map_err(map)
            }
        }
    }

    /// An operation that changes the filesystem: every path is resolved through the gate
    /// and the decision recorded before anything is touched. Checks that only the operation
    /// itself can make (hard links, symlinked parents) may still deny it; that denial is
    /// recorded as a second entry.
    fn fs_change(
        &mut self,
        op: &str,
        paths: &[&str],
        run: impl FnOnce(&FsRoots) -> Result<(), FsGateError>,
    ) -> Result<(), ErrorCode> {
        let resource = paths.join(" -> ");
        let roots = self.fs_roots(op, &resource)?;
        for p in paths {
            if let Err(FsGateError::Denied(m)) = roots.resolve(p, Access::Write) {
                self.denied(op, &resource, &m);
                return Err(ErrorCode::Denied(m));
            }
            self.fs_token(op, p, &roots, true)?;
        }
        self.fs_audit_allowed(op, &resource, "permitted by the manifest roots")?;
        match run(&roots) {
            Err(FsGateError::Denied(m)) => {
                self.denied(op, &resource, &m);
                Err(ErrorCode::Denied(m))
            }
            r => r.map_err(map),
        }
    }

    /// Both must hold: the manifest root (checked by the caller) and a capability token of
    /// the principal covering the host path.
    /// Without a token the principal's human is asked.
    fn fs_token(
        &mut self,
        op: &str,
        path: &str,
        roots: &FsRoots,
        write: bool,
    ) -> Result<(), ErrorCode> {
        let host = host_path(roots, path);
        let token = self.ctx.tokens.check_fs(write, &host);
        let kind = if write { "write" } else { "read" };
        let resource = format!("fs:{kind}:{}", host.display());
        let ask = format!(
            "capsule `{}` wants to {kind} `{}`",
            self.actor,
            host.display()
        );
        self.authorize(op, &resource, token, &ask)
            .map_err(ErrorCode::Denied)
    }

    /// The principal's storage quota, before anything is written: a write that would not
    /// fit is refused whole (and recorded), never cut short. `replaces`: the write truncates
    /// what is there, so only the growth counts.
    fn fs_quota(
        &mut self,
        op: &str,
        path: &str,
        len: u64,
        replaces: bool,
    ) -> Result<(), ErrorCode> {
        let Some(roots) = self.ctx.fs.clone() else {
            // No roots: `fs_change` refuses it.
            return Ok(());
        };
        let host = host_path(&roots, path);
        let existing = if replaces {
            std::fs::symlink_metadata(&host)
                .ok()
                .filter(|m| m.is_file())
                .map_or(0, |m| m.len())
        } else {
            0
        };
        match self
            .ctx
            .storage
            .admit_fs(&host, len.saturating_sub(existing))
        {
            Ok(()) => Ok(()),
            Err(m) => {
                let why = format!("quota-exceeded: {m}");
                self.denied(op, path, &why);
                Err(ErrorCode::QuotaExceeded(m))
            }
        }
    }

    fn fs_audit_allowed(&self, op: &str, resource: &str, outcome: &str) -> Result<(), ErrorCode> {
        super::gatekeeper::record_allowed(&self.ctx, &self.actor, op, resource, outcome)
            .map_err(ErrorCode::Denied)
    }
}

/// The host path a guest path names, as the fsgate reads it (`~` is the principal's home);
/// `.`, repeated and trailing separators fall away. Only called on paths the fsgate has
/// accepted lexically, so there is no `..` left to resolve.
fn host_path(roots: &FsRoots, guest: &str) -> PathBuf {
    let joined = if guest == "~" {
        roots.home().to_path_buf()
    } else if let Some(rel) = guest.strip_prefix("~/") {
        roots.home().join(rel)
    } else {
        PathBuf::from(guest)
    };
    joined.components().collect()
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
        self.fs_look(
            "fs.read",
            &path,
            |r| r.read(&path, MAX_READ),
            |d| format!("{} bytes", d.len()),
        )
    }

    fn write(&mut self, path: String, data: Vec<u8>) -> Result<(), ErrorCode> {
        self.fs_quota("fs.write", &path, data.len() as u64, true)?;
        self.fs_change("fs.write", &[&path], |r| r.write(&path, &data))
    }

    fn append(&mut self, path: String, data: Vec<u8>) -> Result<(), ErrorCode> {
        self.fs_quota("fs.append", &path, data.len() as u64, false)?;
        self.fs_change("fs.append", &[&path], |r| r.append(&path, &data))
    }

    fn list_dir(&mut self, path: String) -> Result<Vec<DirEntry>, ErrorCode> {
        let entries = self.fs_look(
            "fs.list-dir",
            &path,
            |r| r.list_dir(&path),
            |e| format!("{} entries", e.len()),
        )?;
        Ok(entries
            .into_iter()
            .map(|e| DirEntry {
                name: e.name,
                kind: kind(e.kind),
            })
            .collect())
    }

    fn stat(&mut self, path: String) -> Result<Metadata, ErrorCode> {
        let m = self.fs_look(
            "fs.stat",
            &path,
            |r| r.stat(&path),
            |m| format!("{:?}, {} bytes", m.kind, m.size),
        )?;
        Ok(Metadata {
            kind: kind(m.kind),
            size: m.size,
            modified_ms: m.modified_ms,
            readonly: m.readonly,
        })
    }

    fn mkdir(&mut self, path: String, recursive: bool) -> Result<(), ErrorCode> {
        self.fs_change("fs.mkdir", &[&path], |r| r.mkdir(&path, recursive))
    }

    fn remove(&mut self, path: String, recursive: bool) -> Result<(), ErrorCode> {
        self.fs_change("fs.remove", &[&path], |r| r.remove(&path, recursive))
    }

    fn rename(&mut self, source: String, destination: String) -> Result<(), ErrorCode> {
        self.fs_change("fs.rename", &[&source, &destination], |r| {
            r.rename(&source, &destination)
        })
    }
}
