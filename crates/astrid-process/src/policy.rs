//! The sandbox policy: where bwrap is, what to hide, and the limits.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::ProcessError;

/// Credential stores under the operator's home that a subprocess must never read or plant:
/// the one list the filesystem host calls refuse too (see `astrid-protected`).
pub const CREDENTIAL_PATHS: &[&str] = astrid_protected::CREDENTIAL_LOCATIONS;

/// Host directories masked on top of the credentials: they hold the sockets of the host's
/// services (Docker, D-Bus, systemd, agents). A read-only mount does not stop `connect()` on a
/// Unix socket, and the network namespace does not cover filesystem sockets, so the only way
/// to keep those out is not to show them.
pub const SYSTEM_MASKS: &[&str] = &["/run", "/var/run"];

/// Where the sandbox comes from and what it hides. Build it with [`SandboxPolicy::detect`]
/// once at boot; the limits are public so the host can tighten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPolicy {
    /// The bubblewrap binary.
    pub bwrap: PathBuf,
    /// The operator's home, given to the subprocess as `HOME` so `~/.ssh` lands on the mask.
    pub home: PathBuf,
    /// Hidden inside the sandbox when they exist at run time: a directory becomes an empty
    /// read-only tmpfs, anything else is covered by `/dev/null`. A working directory inside,
    /// equal to, or above any of them is refused.
    pub masked: Vec<PathBuf>,
    pub max_timeout: Duration,
    pub default_timeout: Duration,
    /// Per stream.
    pub max_output: usize,
    /// Per stream.
    pub default_output: usize,
}

impl SandboxPolicy {
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
    pub const MAX_OUTPUT: usize = 4 << 20;
    pub const DEFAULT_OUTPUT: usize = 256 << 10;

    /// Finds `bwrap` on PATH and proves it can create the namespaces it needs (runs `true`
    /// once); masks the operator's credential directories, the host service sockets and
    /// `astrid_home`. The operator's home is `$HOME`, or the password database's entry.
    pub fn detect(astrid_home: &Path) -> Result<SandboxPolicy, ProcessError> {
        let home = operator_home()?;
        Self::with_home(&home, astrid_home)
    }

    /// [`SandboxPolicy::detect`] with an explicit operator home (tests, or a host that knows
    /// better than `$HOME`).
    pub fn with_home(home: &Path, astrid_home: &Path) -> Result<SandboxPolicy, ProcessError> {
        let bwrap = find_on_path("bwrap").ok_or_else(|| {
            ProcessError::Unavailable("bubblewrap (bwrap) is not installed or not on PATH".into())
        })?;
        Self::with_bwrap(bwrap, home, astrid_home)
    }

    /// As [`SandboxPolicy::with_home`], with the bubblewrap binary given.
    pub fn with_bwrap(
        bwrap: PathBuf,
        home: &Path,
        astrid_home: &Path,
    ) -> Result<SandboxPolicy, ProcessError> {
        for (what, p) in [("home", home), ("astrid home", astrid_home)] {
            if !p.is_absolute() {
                return Err(ProcessError::InvalidArgument(format!(
                    "{what} must be an absolute path: {}",
                    p.display()
                )));
            }
        }
        let mut masked: Vec<PathBuf> = astrid_protected::credential_paths(home);
        masked.extend(SYSTEM_MASKS.iter().map(PathBuf::from));
        masked.push(astrid_home.to_path_buf());
        let policy = SandboxPolicy {
            bwrap,
            home: home.to_path_buf(),
            masked,
            max_timeout: Self::MAX_TIMEOUT,
            default_timeout: Self::DEFAULT_TIMEOUT,
            max_output: Self::MAX_OUTPUT,
            default_output: Self::DEFAULT_OUTPUT,
        };
        policy.probe()?;
        Ok(policy)
    }

    /// The time limit for a command asking for `requested`.
    pub fn effective_timeout(&self, requested: Option<Duration>) -> Duration {
        requested
            .unwrap_or(self.default_timeout)
            .min(self.max_timeout)
    }

    /// The per-stream output cap for a command asking for `requested`.
    pub fn effective_output(&self, requested: Option<usize>) -> usize {
        requested
            .unwrap_or(self.default_output)
            .min(self.max_output)
    }

    /// Runs `true` with the same namespaces and base mounts as every real run, so a machine
    /// where bwrap cannot unshare (no user namespaces, seccomp'd container) fails at boot with
    /// bwrap's own reason rather than on the first tool call.
    fn probe(&self) -> Result<(), ProcessError> {
        let mut argv: Vec<OsString> = crate::args::base_argv();
        argv.extend(["--chdir", "/", "--clearenv", "--setenv", "PATH"].map(OsString::from));
        argv.push(crate::args::SANDBOX_PATH.into());
        argv.extend(["--", "true"].map(OsString::from));
        let out = std::process::Command::new(&self.bwrap)
            .args(&argv)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| {
                ProcessError::Unavailable(format!("cannot start {}: {e}", self.bwrap.display()))
            })?;
        if out.status.success() {
            return Ok(());
        }
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(ProcessError::Unavailable(format!(
            "bubblewrap cannot create its sandbox here ({}): {why}",
            out.status
        )))
    }
}

fn operator_home() -> Result<PathBuf, ProcessError> {
    if let Some(h) = std::env::var_os("HOME").map(PathBuf::from) {
        if h.is_absolute() {
            return Ok(h);
        }
    }
    // Without a home the credential masks cannot be placed, so refuse rather than run unmasked.
    match nix::unistd::User::from_uid(nix::unistd::getuid()) {
        Ok(Some(user)) if user.dir.is_absolute() => Ok(user.dir),
        _ => Err(ProcessError::Unavailable(
            "cannot determine the operator's home directory to mask its credentials".into(),
        )),
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SandboxPolicy {
        SandboxPolicy {
            bwrap: "/usr/bin/bwrap".into(),
            home: "/home/op".into(),
            masked: vec![],
            max_timeout: SandboxPolicy::MAX_TIMEOUT,
            default_timeout: SandboxPolicy::DEFAULT_TIMEOUT,
            max_output: SandboxPolicy::MAX_OUTPUT,
            default_output: SandboxPolicy::DEFAULT_OUTPUT,
        }
    }

    #[test]
    fn limits_default_on_none_and_cap_at_the_maximum() {
        let p = policy();
        assert_eq!(p.effective_timeout(None), Duration::from_secs(60));
        assert_eq!(p.effective_timeout(Some(Duration::ZERO)), Duration::ZERO);
        assert_eq!(
            p.effective_timeout(Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert_eq!(
            p.effective_timeout(Some(Duration::from_secs(7200))),
            Duration::from_secs(600)
        );
        assert_eq!(p.effective_output(None), 256 * 1024);
        assert_eq!(p.effective_output(Some(0)), 0);
        assert_eq!(p.effective_output(Some(10)), 10);
        assert_eq!(p.effective_output(Some(usize::MAX)), 4 * 1024 * 1024);
    }

    #[test]
    fn relative_homes_are_refused() {
        let err =
            SandboxPolicy::with_bwrap("/usr/bin/bwrap".into(), Path::new("rel"), Path::new("/a"));
        assert!(matches!(err, Err(ProcessError::InvalidArgument(_))));
        let err =
            SandboxPolicy::with_bwrap("/usr/bin/bwrap".into(), Path::new("/h"), Path::new("a"));
        assert!(matches!(err, Err(ProcessError::InvalidArgument(_))));
    }

    #[test]
    fn a_missing_bwrap_binary_is_unavailable() {
        let err = SandboxPolicy::with_bwrap(
            "/nonexistent/bwrap".into(),
            Path::new("/home/op"),
            Path::new("/home/op/.astrid"),
        );
        assert!(matches!(err, Err(ProcessError::Unavailable(_))), "{err:?}");
    }
}
