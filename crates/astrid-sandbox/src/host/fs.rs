use std::sync::Arc;

use astrid_crypto::Resource;
use astrid_fsgate::{Access, Checked, FsGateError, FsRoots, Reach};

use super::HostState;
use crate::authorize::{Ceiling, Effect};
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

    /// The filesystem gate's own checks, decided without asking anyone: a bad path is an
    /// invalid argument; Astrid's own state, multi-linked files and paths outside every root
    /// are refused. Each refusal is audited.
    fn fs_check(
        &self,
        op: &str,
        path: &str,
        roots: &FsRoots,
        access: Access,
        reach: Reach,
    ) -> Result<Checked, ErrorCode> {
        roots.check(path, access, reach).map_err(|e| {
            self.denied(op, path, &e.to_string());
            map(e)
        })
    }

    /// An operation that changes nothing: it runs, and its outcome is recorded before the
    /// guest sees any of it, so a failed append withholds the data.
    fn fs_look<T>(
        &mut self,
        op: &'static str,
        path: &str,
        reach: Reach,
        run: impl FnOnce(&FsRoots, &Checked) -> Result<T, FsGateError>,
        describe: impl FnOnce(&T) -> String,
    ) -> Result<T, ErrorCode> {
        let roots = self.fs_roots(op, path)?;
        let checked = self.fs_check(op, path, &roots, Access::Read, reach)?;
        self.fs_token(op, &checked, false)?;
        match run(&roots, &checked) {
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

    /// An operation that changes the filesystem: every path is checked through the gate
    /// and the decision recorded before anything is touched. Checks that only the operation
    /// itself can make (a symlink swapped since the check, a granted root) may still deny
    /// it; that denial is recorded as a second entry.
    fn fs_change(
        &mut self,
        op: &'static str,
        paths: &[(&str, Reach)],
        size: Option<(u64, bool)>,
        run: impl FnOnce(&FsRoots, &[Checked]) -> Result<(), FsGateError>,
    ) -> Result<(), ErrorCode> {
        let resource = paths
            .iter()
            .map(|(p, _)| *p)
            .collect::<Vec<_>>()
            .join(" -> ");
        let roots = self.fs_roots(op, &resource)?;
        let mut checked = Vec::with_capacity(paths.len());
        for (p, reach) in paths {
            checked.push(self.fs_check(op, p, &roots, Access::Write, *reach)?);
        }
        for c in &checked {
            self.fs_token(op, c, true)?;
        }
        // Metered where the write really lands (symlinks followed), after the gate has
        // accepted it: `(bytes, replaces the file)`.
        if let (Some((len, replaces)), Some(c)) = (size, checked.first()) {
            let existing = if replaces {
                roots.file_len_checked(c)
            } else {
                0
            };
            self.fs_quota(op, c.touched(), len.saturating_sub(existing))?;
        }
        self.fs_audit_allowed(op, &resource, "permitted by the manifest roots")?;
        match run(&roots, &checked) {
            Err(FsGateError::Denied(m)) => {
                self.denied(op, &resource, &m);
                Err(ErrorCode::Denied(m))
            }
            r => r.map_err(map),
        }
    }

    /// The capability layer for a path the gate accepted, about the resolved host path
    /// (what is approved is what is touched). Where the path stands decides who may open
    /// it: a plain manifest root takes a token or a person's yes; a path only a `$granted`
    /// root covers takes a token; a credential location takes a token naming it. Nobody is
    /// asked about the last two.
    fn fs_token(
        &mut self,
        op: &'static str,
        checked: &Checked,
        write: bool,
    ) -> Result<(), ErrorCode> {
        let host = checked.touched().to_path_buf();
        let kind = if write { "write" } else { "read" };
        let ceiling = if let Some(location) = checked.credential() {
            Ceiling::Credential(location.to_path_buf())
        } else if checked.token_only() {
            Ceiling::TokenOnly
        } else {
            Ceiling::Accepted
        };
        let ask = format!(
            "capsule `{}` wants to {kind} `{}`",
            self.actor,
            host.display()
        );
        let resource = if write {
            Resource::FsWrite(host)
        } else {
            Resource::FsRead(host)
        };
        self.authorize(&Effect::new(op, resource, ceiling, ask))
            .map(|_| ())
            .map_err(|d| ErrorCode::Denied(d.to_string()))
    }

    /// The principal's storage quota, before anything is written: a write that would not
    /// fit is refused whole (and recorded), never cut short. `growth`: what the write adds
    /// (a write that replaces a file counts only what it adds to it).
    fn fs_quota(&mut self, op: &str, host: &std::path::Path, growth: u64) -> Result<(), ErrorCode> {
        match self.ctx.storage.admit_fs(host, growth) {
            Ok(()) => Ok(()),
            Err(m) => {
                let why = format!("quota-exceeded: {m}");
                self.denied(op, &host.display().to_string(), &why);
                Err(ErrorCode::QuotaExceeded(m))
            }
        }
    }

    fn fs_audit_allowed(&self, op: &str, resource: &str, outcome: &str) -> Result<(), ErrorCode> {
        self.gatekeeper()
            .record_allowed(op, resource, outcome)
            .map_err(|d| ErrorCode::Denied(d.to_string()))
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
        self.fs_look(
            "fs.read",
            &path,
            Reach::Follow,
            |r, c| r.read_checked(c, MAX_READ),
            |d| format!("{} bytes", d.len()),
        )
    }

    fn write(&mut self, path: String, data: Vec<u8>) -> Result<(), ErrorCode> {
        let size = Some((data.len() as u64, true));
        self.fs_change("fs.write", &[(&path, Reach::Follow)], size, |r, c| {
            r.write_checked(&c[0], &data)
        })
    }

    fn append(&mut self, path: String, data: Vec<u8>) -> Result<(), ErrorCode> {
        let size = Some((data.len() as u64, false));
        self.fs_change("fs.append", &[(&path, Reach::Follow)], size, |r, c| {
            r.append_checked(&c[0], &data)
        })
    }

    fn list_dir(&mut self, path: String) -> Result<Vec<DirEntry>, ErrorCode> {
        let entries = self.fs_look(
            "fs.list-dir",
            &path,
            Reach::Follow,
            |r, c| r.list_dir_checked(c),
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
            Reach::Entry,
            |r, c| r.stat_checked(c),
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
        self.fs_change("fs.mkdir", &[(&path, Reach::Follow)], None, |r, c| {
            r.mkdir_checked(&c[0], recursive)
        })
    }

    fn remove(&mut self, path: String, recursive: bool) -> Result<(), ErrorCode> {
        self.fs_change("fs.remove", &[(&path, Reach::Tree)], None, |r, c| {
            r.remove_checked(&c[0], recursive)
        })
    }

    fn rename(&mut self, source: String, destination: String) -> Result<(), ErrorCode> {
        self.fs_change(
            "fs.rename",
            &[(&source, Reach::Tree), (&destination, Reach::Tree)],
            None,
            |r, c| r.rename_checked(&c[0], &c[1]),
        )
    }
}
