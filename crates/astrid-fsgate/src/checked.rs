//! The check every operation passes before anything is touched, and that the host runs
//! before it asks anyone: where the path really leads (every symlink followed, even a
//! dangling one), whether that is a protected location, and whether the file has another
//! name the gate cannot see.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use astrid_protected::{resolve, resolve_entry, Extent, Protection};

use crate::error::FsGateError;
use crate::roots::{Access, FsRoots, Resolved};

/// What an operation acts on once the path is walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The file or directory a final symlink leads to (read, write, append, list, mkdir).
    Follow,
    /// The directory entry itself (stat).
    Entry,
    /// The entry and everything beneath it (remove, rename).
    Tree,
}

/// A guest path that passed the gate's own checks. `touched` is what the operation will act
/// on, resolved: what a token must cover and an approval must name.
#[derive(Clone)]
pub struct Checked {
    pub(crate) resolved: Resolved,
    touched: PathBuf,
    credential: Option<PathBuf>,
    token_only: bool,
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked")
            .field("guest", &self.resolved.guest)
            .field("touched", &self.touched)
            .field("credential", &self.credential)
            .field("token_only", &self.token_only)
            .finish()
    }
}

impl Checked {
    /// The resolved host path the operation acts on.
    pub fn touched(&self) -> &Path {
        &self.touched
    }

    /// The credential location the path leads into, if any: the caller must hold a grant
    /// that names it concretely, and must not ask anyone instead.
    pub fn credential(&self) -> Option<&Path> {
        self.credential.as_deref()
    }

    /// True when `touched` lies within the ceiling only through a `$granted` root: a
    /// capability token must cover it, and nobody may be asked instead.
    pub fn token_only(&self) -> bool {
        self.token_only
    }

    pub fn guest(&self) -> &str {
        &self.resolved.guest
    }
}

impl FsRoots {
    /// Parse and route `guest` (see [`FsRoots::resolve`]), then refuse, before any token or
    /// approval is looked at: Astrid's own state reached by any route (the path as written,
    /// where its symlinks lead, a tree holding it), and a regular file with more than one
    /// hard link (its other name may be anywhere). Credential locations are reported in
    /// [`Checked::credential`], not refused: whether a grant names them is the caller's call.
    pub fn check(&self, guest: &str, access: Access, reach: Reach) -> Result<Checked, FsGateError> {
        let resolved = self.resolve(guest, access)?;
        let unresolvable =
            |e: std::io::Error| FsGateError::InvalidArgument(format!("{guest}: {e}"));
        let followed = resolve(&resolved.host).map_err(unresolvable)?;
        let entry = resolve_entry(&resolved.host).map_err(unresolvable)?;
        let extent = if reach == Reach::Tree {
            Extent::Tree
        } else {
            Extent::Path
        };
        let mut credential = None;
        // Both names are checked whatever the operation: a path that leads into a protected
        // location by any route is refused.
        for p in [&entry, &followed] {
            match self.protected().classify(p, extent) {
                Some(Protection::AstridState { .. }) => {
                    return Err(FsGateError::Denied(format!(
                        "{guest}: inside Astrid's own state ($ASTRID_HOME), which no capsule \
                         may reach whatever its grants or approvals"
                    )));
                }
                Some(Protection::Credential { location }) => {
                    credential.get_or_insert(location);
                }
                None => {}
            }
        }
        if let Ok(meta) = std::fs::metadata(&followed) {
            use std::os::unix::fs::MetadataExt;
            if meta.is_file() && meta.nlink() > 1 {
                return Err(FsGateError::Denied(format!(
                    "{guest}: has more than one hard link"
                )));
            }
        }
        let touched = if reach == Reach::Follow {
            followed
        } else {
            entry
        };
        // The manifest ceiling holds for where the path leads, not only for how it is
        // written; otherwise a human would be asked about a path the operation then refuses.
        if !self.covers(&touched, access, false) {
            return Err(FsGateError::Denied(format!(
                "{guest}: escapes the granted roots (leads outside every root granted for {access})"
            )));
        }
        let token_only = !self.covers(&touched, access, true);
        Ok(Checked {
            resolved,
            touched,
            credential,
            token_only,
        })
    }

    /// [`FsRoots::check`] for callers that hold no grants: a credential location is refused.
    pub(crate) fn check_plain(
        &self,
        guest: &str,
        access: Access,
        reach: Reach,
    ) -> Result<Checked, FsGateError> {
        let c = self.check(guest, access, reach)?;
        if let Some(loc) = c.credential() {
            return Err(FsGateError::Denied(format!(
                "{guest}: inside the credential location {}",
                loc.display()
            )));
        }
        Ok(c)
    }
}

/// Proves that an opened handle is the file the check resolved: a symlink swapped between
/// the check and the open (by a subprocess, say) would otherwise redirect the operation to
/// a place nobody approved.
pub(crate) fn verify_handle(fd: &impl AsRawFd, c: &Checked) -> Result<(), FsGateError> {
    let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|e| {
        FsGateError::Io(format!(
            "{}: cannot confirm the opened file: {e}",
            c.guest()
        ))
    })?;
    if real != c.touched {
        return Err(FsGateError::Denied(format!(
            "{}: changed while being opened",
            c.guest()
        )));
    }
    Ok(())
}
