//! The sandbox policy: where bwrap is, what to hide, and the limits.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::cgroup::{Cgroups, Enforcement};
use crate::{Limits, ProcessError};

/// Credential stores under the operator's home that a subprocess must never read or plant:
/// the one list the filesystem host calls refuse too (see `astrid-protected`).
pub const CREDENTIAL_PATHS: &[&str] = astrid_protected::CREDENTIAL_LOCATIONS;

/// Host directories masked on top of the credentials: they hold the sockets of the host's
/// services (Docker, D-Bus, systemd, agents). A read-only mount does not stop `connect()` on a
/// Unix socket, and the network namespace does not cover filesystem sockets, so the only way
/// to keep those out is not to show them.
pub const SYSTEM_MASKS: &[&str] = &["/run", "/var/run"];

/// Where the sandbox comes from, what it hides and what it may consume. Build it with
/// [`SandboxPolicy::detect`] once at boot; the limits are public so the host can tighten them.
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
    /// Resource limits of every run.
    pub limits: Limits,
    /// `prlimit` (util-linux): sets the rlimits and execs bwrap.
    pub prlimit: PathBuf,
    /// Where per-run cgroups can be made on this machine (found once, at detection).
    pub cgroups: Cgroups,
    /// The in-sandbox network forwarder (`astrid-netfwd`), for a service granted hosts
    /// ([`crate::SandboxNet`]). Found beside the running executable; `None` when it is not
    /// there, and then such a service is refused (every other one runs as before).
    pub netfwd: Option<PathBuf>,
    /// Where the launchers' FIFOs live: the Astrid home's `run/`, masked in every sandbox.
    pub(crate) runtime_dir: PathBuf,
    /// The next run's launcher, prepared while the current one runs (shared by clones).
    pub(crate) launchers: crate::warm::Launchers,
}

impl SandboxPolicy {
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
    pub const MAX_OUTPUT: usize = 4 << 20;
    pub const DEFAULT_OUTPUT: usize = 256 << 10;

    /// Finds `bwrap` and `prlimit` on PATH and the cgroups this machine lets us create, and
    /// proves a sandbox can be made under `limits` (runs `true` once); masks the operator's
    /// credential directories, the host service sockets and `astrid_home`. The operator's home
    /// is `$HOME`, or the password database's entry. The first run's launcher starts being
    /// prepared before this returns.
    pub fn detect(astrid_home: &Path, limits: Limits) -> Result<SandboxPolicy, ProcessError> {
        let home = operator_home()?;
        let mut policy = Self::with_home_unprobed(&home, astrid_home)?;
        policy.limits = limits;
        policy.probe()?;
        // The first run should not pay for entering its cgroup either.
        policy.prepare_launcher();
        Ok(policy)
    }

    /// [`SandboxPolicy::detect`] with an explicit operator home (tests, or a host that knows
    /// better than `$HOME`).
    /// The limits are the defaults.
    pub fn with_home(home: &Path, astrid_home: &Path) -> Result<SandboxPolicy, ProcessError> {
        let policy = Self::with_home_unprobed(home, astrid_home)?;
        policy.probe()?;
        Ok(policy)
    }

    fn with_home_unprobed(home: &Path, astrid_home: &Path) -> Result<SandboxPolicy, ProcessError> {
        let bwrap = find_on_path("bwrap").ok_or_else(|| {
            ProcessError::Unavailable("bubblewrap (bwrap) is not installed or not on PATH".into())
        })?;
        Self::build(bwrap, home, astrid_home)
    }

    /// As [`SandboxPolicy::with_home`], with the bubblewrap binary given.
    pub fn with_bwrap(
        bwrap: PathBuf,
        home: &Path,
        astrid_home: &Path,
    ) -> Result<SandboxPolicy, ProcessError> {
        let policy = Self::build(bwrap, home, astrid_home)?;
        policy.probe()?;
        Ok(policy)
    }

    fn build(
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
        // Without prlimit no rlimit can be set (no `unsafe` here for a pre_exec setrlimit), and
        // a sandbox without limits is not offered.
        let prlimit = find_on_path("prlimit").ok_or_else(|| {
            ProcessError::Unavailable(
                "prlimit (util-linux) is not installed or not on PATH: subprocess limits \
                 cannot be set"
                    .into(),
            )
        })?;
        Ok(SandboxPolicy {
            bwrap,
            home: home.to_path_buf(),
            masked,
            max_timeout: Self::MAX_TIMEOUT,
            default_timeout: Self::DEFAULT_TIMEOUT,
            max_output: Self::MAX_OUTPUT,
            default_output: Self::DEFAULT_OUTPUT,
            limits: Limits::default(),
            prlimit,
            cgroups: Cgroups::detect(),
            netfwd: netfwd_beside_exe(),
            runtime_dir: astrid_home.join("run"),
            launchers: crate::warm::Launchers::default(),
        })
    }

    /// The Astrid home's `run/`: masked in every sandbox, so what a caller keeps there for
    /// a sandbox (a service's network sockets) is out of every other sandbox's reach.
    pub fn runtime_dir(&self) -> &Path {
        &self.runtime_dir
    }

    /// What the process count and memory limits rest on with this policy.
    pub fn enforcement(&self) -> Enforcement {
        self.cgroups.enforcement()
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

    /// Runs `true` with the same namespaces, base mounts, cgroups and rlimits as every real
    /// run, so a machine where bwrap cannot unshare (no user namespaces, seccomp'd container)
    /// or a limit cannot be set fails at boot with the reason rather than on the first call.
    pub(crate) fn probe(&self) -> Result<(), ProcessError> {
        let mut argv: Vec<OsString> = crate::args::base_argv(&self.limits);
        argv.extend(["--chdir", "/", "--clearenv", "--setenv", "PATH"].map(OsString::from));
        argv.push(crate::args::SANDBOX_PATH.into());
        argv.extend(["--", "true"].map(OsString::from));
        let cgroup = crate::cgroup::RunCgroup::create(&self.cgroups, &self.limits)?;
        let (program, argv) = self.launcher(cgroup.as_ref(), argv);
        let out = std::process::Command::new(&program)
            .args(&argv)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| {
                ProcessError::Unavailable(format!("cannot start {}: {e}", program.display()))
            })?;
        drop(cgroup);
        if out.status.success() {
            return Ok(());
        }
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(ProcessError::Unavailable(format!(
            "the subprocess sandbox cannot be created here ({}): {why}",
            out.status
        )))
    }

    /// What a launcher prepared ahead must have been prepared for to serve a run of this policy.
    pub(crate) fn launch_key(&self) -> crate::warm::LaunchKey {
        crate::warm::LaunchKey {
            limits: self.limits,
            cgroups: self.cgroups.clone(),
            prlimit: self.prlimit.clone(),
            bwrap: self.bwrap.clone(),
        }
    }

    /// How this policy's runs (its clones' included) were started so far: by a launcher
    /// prepared ahead, or cold.
    pub fn launch_counts(&self) -> crate::warm::LaunchCounts {
        self.launchers.counts()
    }

    /// This policy with launchers started on each run's own path, never ahead (to measure
    /// what preparing them saves, or where a waiting launcher per policy is unwanted).
    pub fn without_prepared_launchers(&self) -> SandboxPolicy {
        SandboxPolicy {
            launchers: crate::warm::Launchers::off(),
            ..self.clone()
        }
    }

    pub(crate) fn count_launch(&self, prepared: bool) {
        self.launchers.count(prepared)
    }

    /// The launcher prepared for this policy's runs, if one is ready (see `warm.rs`).
    pub(crate) fn take_launcher(&self) -> Option<crate::warm::Warm> {
        self.launchers.take(&self.launch_key())
    }

    /// Starts preparing the launcher of this policy's next run, if none is ready.
    pub(crate) fn prepare_launcher(&self) {
        self.launchers
            .prepare(&self.launch_key(), &self.runtime_dir)
    }

    /// The program to spawn and its arguments for bwrap arguments `bwrap_argv`: through the
    /// cgroup trampoline when there is a run cgroup, then `prlimit`, then bwrap.
    pub(crate) fn launcher(
        &self,
        cgroup: Option<&crate::cgroup::RunCgroup>,
        bwrap_argv: Vec<OsString>,
    ) -> (PathBuf, Vec<OsString>) {
        let then = std::iter::once(self.bwrap.clone().into()).chain(bwrap_argv);
        launch_chain(cgroup, &self.prlimit, &self.limits, &self.cgroups, then)
    }
}

/// The program and arguments that enter `cgroup` (through the `/bin/sh` trampoline), set the
/// rlimits (`prlimit`) and exec `then`.
pub(crate) fn launch_chain(
    cgroup: Option<&crate::cgroup::RunCgroup>,
    prlimit: &Path,
    limits: &Limits,
    cgroups: &Cgroups,
    then: impl IntoIterator<Item = OsString>,
) -> (PathBuf, Vec<OsString>) {
    let mut argv = Vec::new();
    let program = match cgroup {
        Some(cg) => {
            argv.extend(cg.trampoline_args());
            argv.push(prlimit.into());
            PathBuf::from("/bin/sh")
        }
        None => prlimit.to_path_buf(),
    };
    argv.extend(crate::limits::prlimit_args(
        limits,
        cgroups.memory_by_cgroup(),
    ));
    argv.push("--".into());
    argv.extend(then);
    (program, argv)
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

/// `astrid-netfwd` in the running executable's directory (where `cargo build` and an
/// install put every binary of the workspace side by side).
fn netfwd_beside_exe() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.join(crate::net::NETFWD);
    std::fs::metadata(&candidate)
        .ok()
        .filter(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .map(|_| candidate)
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
            limits: Limits::default(),
            prlimit: "/usr/bin/prlimit".into(),
            cgroups: Cgroups::default(),
            netfwd: None,
            runtime_dir: "/nonexistent/run".into(),
            launchers: Default::default(),
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
