use std::io::{Read, Write};

use cap_std::fs::{File, FileType, MetadataExt, OpenOptions};

use crate::checked::{verify_handle, Checked, Reach};
use crate::error::{map_io, FsGateError};
use crate::roots::{Access, FsRoots, Resolved};

/// What kind of object a directory entry or path is. Symlinks are reported as such, not
/// followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Directory,
    Symlink,
    Other,
}

impl From<FileType> for FileKind {
    fn from(t: FileType) -> Self {
        if t.is_symlink() {
            FileKind::Symlink
        } else if t.is_dir() {
            FileKind::Directory
        } else if t.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        }
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntryInfo {
    /// The entry's name; bytes that are not UTF-8 are replaced, since guest paths are strings.
    pub name: String,
    pub kind: FileKind,
}

/// What `stat` reports about a path (the path itself, not a symlink's target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub kind: FileKind,
    pub size: u64,
    pub modified_ms: u64,
    /// True when the file's permissions forbid writing or no write root covers the path.
    pub readonly: bool,
}

impl FsRoots {
    /// Read a whole regular file, refusing files larger than `max_bytes`.
    pub fn read(&self, path: &str, max_bytes: u64) -> Result<Vec<u8>, FsGateError> {
        self.read_checked(
            &self.check_plain(path, Access::Read, Reach::Follow)?,
            max_bytes,
        )
    }

    /// [`FsRoots::read`] of a path already through [`FsRoots::check`] (with `Access::Read`,
    /// `Reach::Follow`).
    pub fn read_checked(&self, c: &Checked, max_bytes: u64) -> Result<Vec<u8>, FsGateError> {
        let path = c.guest();
        let file = open_regular(c, OpenOptions::new().read(true), false)?;
        let len = file.metadata().map_err(|e| map_io(e, path))?.len();
        let too_large = || FsGateError::TooLarge(format!("{path}: larger than {max_bytes} bytes"));
        if len > max_bytes {
            return Err(too_large());
        }
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        // Read one byte past the limit so a file that grew after the size check is caught.
        (&file)
            .take(max_bytes.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| map_io(e, path))?;
        if buf.len() as u64 > max_bytes {
            return Err(too_large());
        }
        Ok(buf)
    }

    /// Create or truncate a regular file and write `data` to it.
    pub fn write(&self, path: &str, data: &[u8]) -> Result<(), FsGateError> {
        self.write_checked(&self.check_plain(path, Access::Write, Reach::Follow)?, data)
    }

    /// [`FsRoots::write`] of a checked path (`Access::Write`, `Reach::Follow`).
    pub fn write_checked(&self, c: &Checked, data: &[u8]) -> Result<(), FsGateError> {
        let path = c.guest();
        // No O_TRUNC at open: truncating before the hard-link check would already have
        // destroyed a file outside the root.
        let mut file = open_regular(c, OpenOptions::new().write(true).create(true), true)?;
        file.set_len(0).map_err(|e| map_io(e, path))?;
        file.write_all(data).map_err(|e| map_io(e, path))
    }

    /// Append `data` to a regular file, creating it when absent.
    pub fn append(&self, path: &str, data: &[u8]) -> Result<(), FsGateError> {
        self.append_checked(&self.check_plain(path, Access::Write, Reach::Follow)?, data)
    }

    /// [`FsRoots::append`] of a checked path (`Access::Write`, `Reach::Follow`).
    pub fn append_checked(&self, c: &Checked, data: &[u8]) -> Result<(), FsGateError> {
        let mut file = open_regular(c, OpenOptions::new().append(true).create(true), true)?;
        file.write_all(data).map_err(|e| map_io(e, c.guest()))
    }

    /// List a directory, sorted by name.
    pub fn list_dir(&self, path: &str) -> Result<Vec<DirEntryInfo>, FsGateError> {
        self.list_dir_checked(&self.check_plain(path, Access::Read, Reach::Follow)?)
    }

    /// [`FsRoots::list_dir`] of a checked path (`Access::Read`, `Reach::Follow`).
    pub fn list_dir_checked(&self, c: &Checked) -> Result<Vec<DirEntryInfo>, FsGateError> {
        let (r, path) = (&c.resolved, c.guest());
        let dir = r
            .dir
            .open_dir(r.rel_or_dot())
            .map_err(|e| map_io(e, path))?;
        verify_handle(&dir, c)?;
        let entries = dir.entries().map_err(|e| map_io(e, path))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| map_io(e, path))?;
            let kind = entry.file_type().map_err(|e| map_io(e, path))?.into();
            let name = entry.file_name().to_string_lossy().into_owned();
            out.push(DirEntryInfo { name, kind });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Describe a path without following a final symlink.
    pub fn stat(&self, path: &str) -> Result<Metadata, FsGateError> {
        self.stat_checked(&self.check_plain(path, Access::Read, Reach::Entry)?)
    }

    /// [`FsRoots::stat`] of a checked path (`Access::Read`, `Reach::Entry`).
    pub fn stat_checked(&self, c: &Checked) -> Result<Metadata, FsGateError> {
        let (r, path) = (&c.resolved, c.guest());
        let meta = r
            .dir
            .symlink_metadata(r.rel_or_dot())
            .map_err(|e| map_io(e, path))?;
        let writable = self.resolve(path, Access::Write).is_ok();
        let secs = u64::try_from(meta.mtime()).unwrap_or(0);
        let nanos = u64::try_from(meta.mtime_nsec()).unwrap_or(0);
        Ok(Metadata {
            kind: meta.file_type().into(),
            size: meta.len(),
            modified_ms: secs.saturating_mul(1000).saturating_add(nanos / 1_000_000),
            readonly: meta.permissions().readonly() || !writable,
        })
    }

    /// The length of the regular file a checked path leads to (symlinks followed inside the
    /// root, as a write follows them), 0 when there is none: what a write that replaces it
    /// frees, for quota accounting. Through the root's directory handle, like every other
    /// operation of the gate.
    pub fn file_len_checked(&self, c: &Checked) -> u64 {
        let r = &c.resolved;
        r.dir
            .metadata(r.rel_or_dot())
            .ok()
            .filter(|m| m.is_file())
            .map_or(0, |m| m.len())
    }

    /// Create a directory; with `recursive`, also its missing parents, and an existing
    /// directory is not an error.
    pub fn mkdir(&self, path: &str, recursive: bool) -> Result<(), FsGateError> {
        self.mkdir_checked(
            &self.check_plain(path, Access::Write, Reach::Follow)?,
            recursive,
        )
    }

    /// [`FsRoots::mkdir`] of a checked path (`Access::Write`, `Reach::Follow`).
    pub fn mkdir_checked(&self, c: &Checked, recursive: bool) -> Result<(), FsGateError> {
        let (r, path) = (&c.resolved, c.guest());
        if r.rel.as_os_str().is_empty() {
            return if recursive {
                Ok(())
            } else {
                Err(FsGateError::AlreadyExists(path.to_owned()))
            };
        }
        let result = if recursive {
            r.dir.create_dir_all(&r.rel)
        } else {
            r.dir.create_dir(&r.rel)
        };
        result.map_err(|e| map_io(e, path))?;
        // create_dir_all succeeds on an existing directory but must not pass for a file.
        if recursive && !r.dir.is_dir(&r.rel) {
            return Err(FsGateError::AlreadyExists(path.to_owned()));
        }
        Ok(())
    }

    /// Remove a file, symlink or empty directory; with `recursive`, a whole tree. A granted
    /// root, or a directory holding one, cannot be removed.
    pub fn remove(&self, path: &str, recursive: bool) -> Result<(), FsGateError> {
        self.remove_checked(
            &self.check_plain(path, Access::Write, Reach::Tree)?,
            recursive,
        )
    }

    /// [`FsRoots::remove`] of a checked path (`Access::Write`, `Reach::Tree`).
    pub fn remove_checked(&self, c: &Checked, recursive: bool) -> Result<(), FsGateError> {
        let (r, path) = (&c.resolved, c.guest());
        self.refuse_root(r)?;
        let meta = r
            .dir
            .symlink_metadata(&r.rel)
            .map_err(|e| map_io(e, path))?;
        let result = if !meta.is_dir() {
            r.dir.remove_file(&r.rel)
        } else if recursive {
            r.dir.remove_dir_all(&r.rel)
        } else {
            r.dir.remove_dir(&r.rel)
        };
        result.map_err(|e| map_io(e, path))
    }

    /// Rename `from` to `to`, replacing `to` when it exists; both need write access and may
    /// lie in different roots.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), FsGateError> {
        let src = self.check_plain(from, Access::Write, Reach::Tree)?;
        let dst = self.check_plain(to, Access::Write, Reach::Tree)?;
        self.rename_checked(&src, &dst)
    }

    /// [`FsRoots::rename`] of checked paths (`Access::Write`, `Reach::Tree`).
    pub fn rename_checked(&self, from: &Checked, to: &Checked) -> Result<(), FsGateError> {
        let (src, dst) = (&from.resolved, &to.resolved);
        self.refuse_root(src)?;
        self.refuse_root(dst)?;
        src.dir
            .rename(&src.rel, &dst.dir, &dst.rel)
            .map_err(|e| map_io(e, &format!("{} -> {}", from.guest(), to.guest())))
    }

    fn refuse_root(&self, r: &Resolved) -> Result<(), FsGateError> {
        if r.rel.as_os_str().is_empty() || self.holds_root(r) {
            return Err(FsGateError::Denied(format!(
                "{}: is or contains a granted root",
                r.guest
            )));
        }
        Ok(())
    }
}

/// Open a regular file inside the root and prove, on the open handle, that it is a regular
/// file with a single link. A hard link may share its inode with a file outside the root,
/// which no path check can see.
fn open_regular(c: &Checked, opts: &OpenOptions, may_create: bool) -> Result<File, FsGateError> {
    let (r, guest) = (&c.resolved, c.guest());
    // Checked by path first only so a FIFO or device is refused before open() could block on
    // it or act on it; the handle check below is the authoritative one.
    match r.dir.metadata(r.rel_or_dot()) {
        Ok(meta) => refuse_non_regular(meta.file_type(), guest)?,
        Err(e) if may_create && e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(map_io(e, guest)),
    }
    let file = r
        .dir
        .open_with(r.rel_or_dot(), opts)
        .map_err(|e| map_io(e, guest))?;
    let meta = file.metadata().map_err(|e| map_io(e, guest))?;
    refuse_non_regular(meta.file_type(), guest)?;
    verify_handle(&file, c)?;
    if meta.nlink() > 1 {
        return Err(FsGateError::Denied(format!(
            "{guest}: has more than one hard link"
        )));
    }
    Ok(file)
}

fn refuse_non_regular(t: FileType, guest: &str) -> Result<(), FsGateError> {
    if t.is_dir() {
        Err(FsGateError::IsADirectory(guest.to_owned()))
    } else if !t.is_file() {
        Err(FsGateError::InvalidArgument(format!(
            "{guest}: not a regular file"
        )))
    } else {
        Ok(())
    }
}
