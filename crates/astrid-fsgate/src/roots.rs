use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use astrid_protected::ProtectedSet;
use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::error::{map_io, FsGateError};

/// Host directories that expose kernel and process state through magic links and device
/// nodes; no grant, not even `/`, reaches into them.
const PROTECTED: [&str; 3] = ["/proc", "/sys", "/dev"];

/// The kind of access a request needs. A write root also grants read, because a capsule
/// that may create and replace files there gains nothing by being unable to read them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Write => "write",
        })
    }
}

struct Root {
    host: PathBuf,
    writable: bool,
    /// From `$granted`: the path is within the ceiling only as far as a capability token
    /// reaches; no human is asked about what lies only under such a root.
    token_only: bool,
    /// Opened on first use, so roots that are created after the capsule starts still work;
    /// a failed open is not cached.
    dir: OnceLock<Arc<Dir>>,
}

impl Root {
    fn open(&self) -> io::Result<Arc<Dir>> {
        if let Some(dir) = self.dir.get() {
            return Ok(Arc::clone(dir));
        }
        // The single use of ambient authority: everything below a root goes through the Dir.
        let dir = Arc::new(Dir::open_ambient_dir(&self.host, ambient_authority())?);
        Ok(Arc::clone(self.dir.get_or_init(|| dir)))
    }

    fn contains_protected(&self) -> bool {
        PROTECTED
            .iter()
            .any(|p| Path::new(p).starts_with(&self.host))
    }
}

/// The filesystem roots one capsule was granted, resolved for one principal.
pub struct FsRoots {
    home: PathBuf,
    roots: Vec<Root>,
    /// Refused whatever the roots say; see [`FsRoots::check`](crate::FsRoots::check).
    protected: ProtectedSet,
}

impl fmt::Debug for FsRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for root in &self.roots {
            let mode = match (root.writable, root.token_only) {
                (true, false) => "rw",
                (false, false) => "ro",
                (true, true) => "rw, tokens only",
                (false, true) => "ro, tokens only",
            };
            list.entry(&(&root.host, mode));
        }
        list.finish()
    }
}

/// A guest path resolved to a granted root directory and a path relative to it.
#[derive(Clone)]
pub struct Resolved {
    pub(crate) dir: Arc<Dir>,
    pub(crate) rel: PathBuf,
    pub(crate) host: PathBuf,
    pub(crate) guest: String,
}

impl Resolved {
    /// The opened root directory; all access below it is confined by cap-std.
    pub fn dir(&self) -> &Arc<Dir> {
        &self.dir
    }

    /// The path inside the root; empty when the guest path names the root itself.
    pub fn rel(&self) -> &Path {
        &self.rel
    }

    /// The path as the capsule wrote it, for error messages.
    pub fn guest(&self) -> &str {
        &self.guest
    }

    /// `rel`, or `.` for the root itself, since cap-std does not accept an empty path.
    pub(crate) fn rel_or_dot(&self) -> &Path {
        if self.rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &self.rel
        }
    }
}

impl FsRoots {
    /// Resolve the manifest's roots (`~/...` against `home`, or absolute) for one principal.
    /// No user home is known here, so `$user_home` is an error; see [`FsRoots::with_symbols`].
    pub fn new(home: &Path, read: &[String], write: &[String]) -> Result<FsRoots, FsGateError> {
        FsRoots::with_symbols(home, None, read, write)
    }

    /// As [`FsRoots::new`], with the symbolic roots a manifest may name:
    ///
    /// - `$user_home` (or `$user_home/<path>`): the home directory of the user the daemon runs
    ///   for, `user_home` (the same `HOME` whose credential locations are protected); an
    ///   unknown `user_home` makes it an error, not a silently wider or empty root.
    /// - `$granted`: every path, but only where one of the principal's capability tokens
    ///   reaches; nothing under it alone is ever put to a human (see
    ///   [`Checked::token_only`](crate::Checked::token_only)).
    pub fn with_symbols(
        home: &Path,
        user_home: Option<&Path>,
        read: &[String],
        write: &[String],
    ) -> Result<FsRoots, FsGateError> {
        let home_str = home.to_str().ok_or_else(|| {
            FsGateError::InvalidArgument("home directory is not valid UTF-8".into())
        })?;
        if !home_str.starts_with('/') {
            return Err(FsGateError::InvalidArgument(format!(
                "home directory {home_str} is not absolute"
            )));
        }
        let home = parse_root(Path::new("/"), home_str)?;
        let mut roots: Vec<Root> = Vec::new();
        let specs = read
            .iter()
            .map(|s| (s, false))
            .chain(write.iter().map(|s| (s, true)));
        for (spec, writable) in specs {
            let (host, token_only) = match spec.as_str() {
                GRANTED => (PathBuf::from("/"), true),
                _ => (parse_symbolic(&home, user_home, spec)?, false),
            };
            match roots
                .iter_mut()
                .find(|r| r.host == host && r.token_only == token_only)
            {
                Some(existing) => existing.writable |= writable,
                None => roots.push(Root {
                    host,
                    writable,
                    token_only,
                    dir: OnceLock::new(),
                }),
            }
        }
        // Longest first, so the first match in `resolve` is the most specific root; of two
        // for one directory, the plain one first.
        roots.sort_by_key(|r| (std::cmp::Reverse(r.host.components().count()), r.token_only));
        Ok(FsRoots {
            home,
            roots,
            protected: ProtectedSet::empty(),
        })
    }

    /// The same roots with `protected` refused whatever they grant: the daemon passes
    /// `$ASTRID_HOME` (less the principal's own home) and the operator's credentials.
    pub fn with_protected(mut self, protected: ProtectedSet) -> FsRoots {
        self.protected = protected;
        self
    }

    pub(crate) fn protected(&self) -> &ProtectedSet {
        &self.protected
    }

    /// The principal's home directory that `~/` paths resolve against.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Check `guest_path` lexically, pick the longest granted root for `access` that exists,
    /// and return that root with the path relative to it.
    pub fn resolve(&self, guest_path: &str, access: Access) -> Result<Resolved, FsGateError> {
        let host = parse_guest(&self.home, guest_path)?;
        if is_protected(&host) {
            return Err(FsGateError::Denied(format!(
                "{guest_path}: host system directories are never granted"
            )));
        }
        let mut matched = false;
        for root in &self.roots {
            if (access == Access::Write && !root.writable) || !host.starts_with(&root.host) {
                continue;
            }
            matched = true;
            let dir = match root.open() {
                Ok(dir) => dir,
                // A granted root that does not exist yet is skipped, not an error.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(map_io(e, guest_path)),
            };
            let rel = host
                .strip_prefix(&root.host)
                .map_err(|_| FsGateError::Io(format!("{guest_path}: root mismatch")))?
                .to_path_buf();
            let resolved = Resolved {
                dir,
                rel,
                host,
                guest: guest_path.to_owned(),
            };
            if root.contains_protected() {
                check_canonical(&resolved, &root.host)?;
            }
            return Ok(resolved);
        }
        if matched {
            Err(FsGateError::NotFound(guest_path.to_owned()))
        } else {
            Err(FsGateError::Denied(format!(
                "{guest_path}: not under any root granted for {access}"
            )))
        }
    }

    /// True when the resolved host path `touched` lies under a root granted for `access`,
    /// compared with the root as written and resolved. With `plain_only`, `$granted` roots
    /// do not count.
    pub(crate) fn covers(&self, touched: &Path, access: Access, plain_only: bool) -> bool {
        self.roots
            .iter()
            .filter(|r| access == Access::Read || r.writable)
            .filter(|r| !(plain_only && r.token_only))
            .any(|r| {
                touched.starts_with(&r.host)
                    || astrid_protected::resolve(&r.host).is_ok_and(|c| touched.starts_with(c))
            })
    }

    /// True when the manifest grants `access` to the absolute, normal host path `host` and
    /// everything below it (a lexical check: nothing is opened). Used to keep an approval
    /// request within the capsule's ceiling before anyone is asked, so `$granted` roots do
    /// not count: what lies only under them is never asked about.
    pub fn grants(&self, host: &Path, access: Access) -> bool {
        host.is_absolute()
            && !is_protected(host)
            && !host.components().any(|c| {
                matches!(
                    c,
                    std::path::Component::ParentDir | std::path::Component::CurDir
                )
            })
            && self.roots.iter().any(|r| {
                (access == Access::Read || r.writable) && !r.token_only && host.starts_with(&r.host)
            })
    }

    /// True when `resolved` names a granted root or a directory containing one; such paths
    /// must not be removed or renamed away.
    pub(crate) fn holds_root(&self, resolved: &Resolved) -> bool {
        self.roots
            .iter()
            .any(|r| r.host.starts_with(&resolved.host))
    }
}

/// The symbolic root that reaches only as far as the principal's tokens.
pub const GRANTED: &str = "$granted";
/// The symbolic root naming the home directory of the user the daemon runs for.
pub const USER_HOME: &str = "$user_home";

/// A root spec with `$user_home` expanded, then parsed as [`parse_root`] does.
fn parse_symbolic(
    home: &Path,
    user_home: Option<&Path>,
    spec: &str,
) -> Result<PathBuf, FsGateError> {
    let Some(rest) = spec.strip_prefix(USER_HOME) else {
        return parse_root(home, spec);
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Err(FsGateError::InvalidArgument(format!(
            "root {spec:?}: `{USER_HOME}` must stand alone or be followed by `/`"
        )));
    }
    let user_home = user_home.filter(|h| h.is_absolute()).ok_or_else(|| {
        FsGateError::InvalidArgument(format!(
            "root {spec:?}: the user's home directory is not known (HOME is unset or relative)"
        ))
    })?;
    let base = user_home.to_str().ok_or_else(|| {
        FsGateError::InvalidArgument(format!("root {spec:?}: the user's home is not valid UTF-8"))
    })?;
    parse_root(home, &format!("{}{rest}", base.trim_end_matches('/')))
}

fn is_protected(host: &Path) -> bool {
    PROTECTED.iter().any(|p| host.starts_with(p))
}

/// For a root that contains `/proc`, `/sys` or `/dev`, a relative symlink inside the root can
/// still lead into them, so check where the path really lands. The deepest existing ancestor
/// is checked when the path itself does not exist yet.
fn check_canonical(resolved: &Resolved, root_host: &Path) -> Result<(), FsGateError> {
    let guest = resolved.guest.as_str();
    let denied = || FsGateError::Denied(format!("{guest}: leads into a host system directory"));
    let mut probe = resolved.rel.clone();
    let mut first = true;
    while !probe.as_os_str().is_empty() {
        match resolved.dir.canonicalize(&probe) {
            Ok(canon) => {
                return if is_protected(&root_host.join(canon)) {
                    Err(denied())
                } else {
                    Ok(())
                };
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A dangling symlink would be followed on create; its target cannot be checked.
                if first
                    && resolved
                        .dir
                        .symlink_metadata(&probe)
                        .is_ok_and(|m| m.file_type().is_symlink())
                {
                    return Err(denied());
                }
            }
            Err(e) => return Err(map_io(e, guest)),
        }
        first = false;
        probe.pop();
    }
    Ok(())
}

/// Parse a root spec into an absolute host path: `~`, `~/...` or `/...`. `.` segments are
/// dropped, a trailing `/` is allowed, `..` and empty segments are errors.
fn parse_root(home: &Path, spec: &str) -> Result<PathBuf, FsGateError> {
    let invalid = |why: &str| FsGateError::InvalidArgument(format!("root {spec:?}: {why}"));
    if spec.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    let (mut out, rest) =
        split_base(home, spec).ok_or_else(|| invalid("must be absolute or start with ~/"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(out);
    }
    for seg in rest.split('/') {
        match seg {
            "" => return Err(invalid("has an empty path segment")),
            ".." => return Err(invalid("has a `..` segment")),
            "." => {}
            s => out.push(s),
        }
    }
    Ok(out)
}

/// Parse a guest path into an absolute host path, lexically: no filesystem access.
fn parse_guest(home: &Path, guest: &str) -> Result<PathBuf, FsGateError> {
    if guest.is_empty() {
        return Err(FsGateError::InvalidArgument("empty path".into()));
    }
    if guest.contains('\0') {
        return Err(FsGateError::InvalidArgument(format!(
            "{guest:?}: contains a NUL byte"
        )));
    }
    let (mut out, rest) = split_base(home, guest).ok_or_else(|| {
        FsGateError::InvalidArgument(format!("{guest}: must be absolute or start with ~/"))
    })?;
    for seg in rest.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                return Err(FsGateError::Denied(format!(
                    "{guest}: `..` components are not allowed"
                )))
            }
            s => out.push(s),
        }
    }
    Ok(out)
}

fn split_base<'a>(home: &Path, s: &'a str) -> Option<(PathBuf, &'a str)> {
    if s == "~" {
        Some((home.to_path_buf(), ""))
    } else if let Some(rest) = s.strip_prefix("~/") {
        Some((home.to_path_buf(), rest))
    } else {
        s.strip_prefix('/').map(|rest| (PathBuf::from("/"), rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_specs_parse_strictly() {
        let home = Path::new("/home/me");
        assert_eq!(parse_root(home, "~").unwrap(), PathBuf::from("/home/me"));
        assert_eq!(parse_root(home, "~/").unwrap(), PathBuf::from("/home/me"));
        assert_eq!(
            parse_root(home, "~/a/./b/").unwrap(),
            PathBuf::from("/home/me/a/b")
        );
        assert_eq!(parse_root(home, "/").unwrap(), PathBuf::from("/"));
        assert!(parse_root(home, "/a/../b").is_err());
        assert!(parse_root(home, "/a//b").is_err());
        assert!(parse_root(home, "a/b").is_err());
        assert!(parse_root(home, "~other/x").is_err());
    }

    #[test]
    fn guest_paths_parse_lexically() {
        let home = Path::new("/home/me");
        assert_eq!(
            parse_guest(home, "~/x//./y/").unwrap(),
            PathBuf::from("/home/me/x/y")
        );
        assert_eq!(
            parse_guest(home, "/srv/x").unwrap(),
            PathBuf::from("/srv/x")
        );
        assert!(matches!(
            parse_guest(home, ""),
            Err(FsGateError::InvalidArgument(_))
        ));
        assert!(matches!(
            parse_guest(home, "rel"),
            Err(FsGateError::InvalidArgument(_))
        ));
        assert!(matches!(
            parse_guest(home, "/a\0b"),
            Err(FsGateError::InvalidArgument(_))
        ));
        assert!(matches!(
            parse_guest(home, "~/a/../b"),
            Err(FsGateError::Denied(_))
        ));
    }
}
