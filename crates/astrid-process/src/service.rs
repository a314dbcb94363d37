//! Long-lived programs under the sandbox, talked to over their standard input and output
//! (an MCP server). Unlike [`crate::run`], nothing here waits for the program: the caller gets
//! its pipes and a handle whose drop kills the sandbox.
//!
//! The mounts are narrower than a run's: a run sees the whole host root read-only, a service
//! sees only the system directories programs need to start, its own code, and the directories
//! it was granted. A server handed `/` as its "allowed directory" in its own arguments still
//! finds nothing else, so its own path checks are never what keeps the operator's files safe.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::args::os;
use crate::cgroup::RunCgroup;
use crate::{Limits, ProcessError, SandboxPolicy};

/// System directories bound read-only when they exist: what a dynamically linked program and
/// the usual interpreters (node, python) need to start. Not `/home`, `/root`, `/srv`, `/opt`,
/// `/var` or `/mnt`: the operator's data is reached only through a grant.
const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64"];

/// The few `/etc` entries programs read at start (loader cache, users for `getpwuid`, TLS
/// roots, time zone, the `alternatives` symlinks Debian's `node` goes through). The rest of
/// `/etc` (host keys, shadow files, service configuration) stays out.
const ETC_ENTRIES: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/mime.types",
];

/// What to start and what it may see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSpec {
    /// An absolute path, or a name looked up on the sandbox's PATH (the system directories).
    pub program: String,
    pub args: Vec<String>,
    /// Extra directories holding the program's own code, bound read-only (an npm package's
    /// `node_modules`). Callers derive them from where the program lives, not from the user.
    pub code_dirs: Vec<PathBuf>,
    /// Directories the program may read (bound read-only).
    pub read_dirs: Vec<PathBuf>,
    /// Directories the program may write (bound read-write). The first is its working
    /// directory; without any, the private `/tmp` is.
    pub write_dirs: Vec<PathBuf>,
    /// The whole environment besides `PATH`, `HOME` and `LANG`: nothing is inherited.
    pub env: Vec<(String, String)>,
    /// Resource limits of this sandbox (the policy's when `None`).
    pub limits: Option<Limits>,
    /// The hosts the program may reach, through the forwarder (none when `None`: its
    /// namespace has only `lo`).
    pub net: Option<crate::SandboxNet>,
}

/// A running service. Dropping it kills the sandbox (the whole process group and, where there
/// is one, everything in its cgroup) and reaps it.
pub struct Service {
    child: Child,
    pid: Pid,
    /// Removed after the kill, which proves nothing of the service outlived it.
    _cgroup: Option<RunCgroup>,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("pid", &self.pid).finish()
    }
}

impl Service {
    /// The exit status if the sandbox has ended (a crash), without blocking.
    pub fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>, ProcessError> {
        self.child
            .try_wait()
            .map_err(|e| ProcessError::Io(format!("polling the service: {e}")))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // bwrap's init is PID 1 of the sandbox with --die-with-parent; killing the group takes
        // the namespace down. The reap below keeps the pid from being reused before that.
        let _ = killpg(self.pid, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Starts `spec` under `policy`'s sandbox with its standard streams piped.
pub fn spawn_service(policy: &SandboxPolicy, spec: &ServiceSpec) -> Result<Service, ProcessError> {
    let limits = spec.limits.unwrap_or(policy.limits);
    let argv = service_argv(policy, spec, &limits)?;
    let cgroup = RunCgroup::create(&policy.cgroups, &limits)?;
    let then = std::iter::once(policy.bwrap.clone().into()).chain(argv);
    let (program, argv) = crate::policy::launch_chain(
        cgroup.as_ref(),
        &policy.prlimit,
        &limits,
        &policy.cgroups,
        then,
    );
    let mut child = crate::exec::spawn(&program, &argv, true)?;
    let pid = Pid::from_raw(child.id() as i32);
    Ok(Service {
        stdin: child.stdin.take(),
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
        child,
        pid,
        _cgroup: cgroup,
    })
}

/// The bwrap arguments of a service (without the bwrap binary), after refusing grants that
/// would expose or let the program plant a masked path.
pub(crate) fn service_argv(
    policy: &SandboxPolicy,
    spec: &ServiceSpec,
    limits: &Limits,
) -> Result<Vec<OsString>, ProcessError> {
    crate::args::check_strings_of(&spec.program, &spec.args, &spec.env)?;
    let canon = |p: &Path, what: &str| -> Result<PathBuf, ProcessError> {
        if !p.is_absolute() {
            return Err(ProcessError::InvalidArgument(format!(
                "{what} {} must be an absolute path",
                p.display()
            )));
        }
        let c = p
            .canonicalize()
            .map_err(|e| ProcessError::InvalidArgument(format!("{what} {}: {e}", p.display())))?;
        if c == Path::new("/") || ["/proc", "/sys", "/dev"].iter().any(|r| c.starts_with(r)) {
            return Err(ProcessError::InvalidArgument(format!(
                "{what} {} would expose the whole host or its kernel interfaces",
                p.display()
            )));
        }
        Ok(c)
    };
    let mut binds: Vec<(PathBuf, bool)> = Vec::new();
    for d in spec.code_dirs.iter().chain(&spec.read_dirs) {
        let c = canon(d, "read directory")?;
        // Inside a masked directory is refused (the grant would be emptied anyway, and a
        // person granting `~/.ssh` should be told so); above one is fine, the mask covers it.
        refuse_inside_mask(&c, &policy.masked, "read directory")?;
        binds.push((c, false));
    }
    for d in &spec.write_dirs {
        let c = canon(d, "write directory")?;
        // Writable above a masked path would let the program plant `~/.aws/credentials`.
        crate::args::check_cwd_against_masks(&c, &policy.masked)?;
        binds.push((c, true));
    }

    let mut argv: Vec<OsString> = [
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
    ]
    .map(OsString::from)
    .to_vec();
    for d in SYSTEM_DIRS.iter().chain(ETC_ENTRIES) {
        argv.extend([os("--ro-bind-try"), os(d), os(d)]);
    }
    argv.extend([os("--dev"), os("/dev"), os("--proc"), os("/proc")]);
    argv.extend([
        os("--size"),
        limits.tmp_bytes.to_string().into(),
        os("--tmpfs"),
        os("/tmp"),
    ]);
    for (dir, writable) in &binds {
        let flag = if *writable { "--bind" } else { "--ro-bind" };
        argv.extend([os(flag), dir.into(), dir.into()]);
    }
    // Masks go on top of the grants: a granted home still has no `~/.ssh` inside.
    for (path, is_dir) in crate::args::existing_masks(&policy.masked) {
        if !binds.iter().any(|(b, _)| path.starts_with(b)) {
            continue; // not visible anyway
        }
        if is_dir {
            argv.extend([
                os("--tmpfs"),
                path.clone().into(),
                os("--remount-ro"),
                path.into(),
            ]);
        } else {
            argv.extend([os("--ro-bind"), os("/dev/null"), path.into()]);
        }
    }
    let cwd = binds
        .iter()
        .find(|(_, w)| *w)
        .map_or_else(|| PathBuf::from("/tmp"), |(d, _)| d.clone());
    argv.extend([os("--chdir"), cwd.into()]);
    match &spec.net {
        None => crate::args::push_env_and_program(
            &mut argv,
            policy,
            &spec.env,
            &spec.program,
            &spec.args,
        ),
        Some(net) => {
            let (program, args) =
                crate::net::wrap(&mut argv, policy, net, &spec.program, &spec.args)?;
            crate::args::push_env_and_program(&mut argv, policy, &spec.env, &program, &args);
        }
    }
    Ok(argv)
}

fn refuse_inside_mask(dir: &Path, masked: &[PathBuf], what: &str) -> Result<(), ProcessError> {
    for m in masked {
        let resolved = m.canonicalize().unwrap_or_else(|_| m.clone());
        if dir.starts_with(m) || dir.starts_with(&resolved) {
            return Err(ProcessError::InvalidArgument(format!(
                "{what} {} lies inside the masked path {}",
                dir.display(),
                m.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(masked: Vec<PathBuf>) -> SandboxPolicy {
        SandboxPolicy {
            bwrap: "/usr/bin/bwrap".into(),
            home: "/home/op".into(),
            masked,
            max_timeout: SandboxPolicy::MAX_TIMEOUT,
            default_timeout: SandboxPolicy::DEFAULT_TIMEOUT,
            max_output: SandboxPolicy::MAX_OUTPUT,
            default_output: SandboxPolicy::DEFAULT_OUTPUT,
            limits: Limits::default(),
            prlimit: "/usr/bin/prlimit".into(),
            cgroups: Default::default(),
            netfwd: None,
            runtime_dir: "/nonexistent/run".into(),
            launchers: Default::default(),
        }
    }

    fn strings(argv: &[OsString]) -> Vec<String> {
        argv.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn only_system_dirs_and_grants_are_bound_and_masks_cover_grants() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        let data = home.join("data");
        std::fs::create_dir(&data).unwrap();
        let p = policy(vec![home.join(".ssh"), "/nonexistent/mask".into()]);
        let spec = ServiceSpec {
            program: "node".into(),
            args: vec!["/".into()],
            read_dirs: vec![home.clone()],
            write_dirs: vec![data.clone()],
            ..Default::default()
        };
        let argv = strings(&service_argv(&p, &spec, &Limits::default()).unwrap());
        let joined = argv.join(" ");
        assert!(!joined.contains("--ro-bind / /"), "{joined}");
        assert!(joined.contains(&format!("--ro-bind {0} {0}", home.display())));
        assert!(joined.contains(&format!("--bind {0} {0}", data.display())));
        assert!(joined.contains(&format!("--tmpfs {}", home.join(".ssh").display())));
        assert!(joined.contains(&format!("--chdir {}", data.display())));
        assert!(!joined.contains("/nonexistent/mask"));
        assert_eq!(argv.last().unwrap(), "/");
    }

    #[test]
    fn a_granted_network_starts_the_forwarder_in_front_of_the_program() {
        let spec = ServiceSpec {
            program: "node".into(),
            args: vec!["server.js".into()],
            net: Some(crate::SandboxNet {
                socket_dir: "/tmp/astrid-net-x".into(),
                hosts_file: "/tmp/astrid-net-x/hosts".into(),
                routes: vec![crate::NetRoute {
                    listen: "127.0.100.1:443".parse().unwrap(),
                    socket: "0.sock".into(),
                }],
            }),
            ..Default::default()
        };
        // Without the forwarder, a service granted hosts is refused (never run unrouted).
        let err = service_argv(&policy(vec![]), &spec, &Limits::default()).unwrap_err();
        assert!(matches!(err, ProcessError::Unavailable(_)), "{err}");

        let mut p = policy(vec![]);
        p.netfwd = Some("/opt/astrid/astrid-netfwd".into());
        let argv = strings(&service_argv(&p, &spec, &Limits::default()).unwrap());
        let joined = argv.join(" ");
        assert!(joined.contains("--ro-bind /opt/astrid/astrid-netfwd /tmp/.astrid/netfwd"));
        assert!(joined.contains("--ro-bind /tmp/astrid-net-x /tmp/.astrid/net"));
        assert!(joined.contains("--ro-bind /tmp/astrid-net-x/hosts /etc/hosts"));
        assert!(
            joined.contains("--unshare-all"),
            "the namespace stays private"
        );
        // The forwarder's one capability, which it drops before the program starts.
        assert!(
            joined.contains("--cap-add CAP_NET_BIND_SERVICE"),
            "{joined}"
        );
        assert!(
            joined.ends_with(
                "-- /tmp/.astrid/netfwd --route 127.0.100.1:443=/tmp/.astrid/net/0.sock -- node server.js"
            ),
            "{joined}"
        );

        for (listen, socket) in [("10.0.0.1:443", "0.sock"), ("127.0.0.1:443", "../x")] {
            let mut bad = spec.clone();
            bad.net.as_mut().unwrap().routes[0] = crate::NetRoute {
                listen: listen.parse().unwrap(),
                socket: socket.into(),
            };
            let err = service_argv(&p, &bad, &Limits::default()).unwrap_err();
            assert!(matches!(err, ProcessError::InvalidArgument(_)), "{err}");
        }
    }

    #[test]
    fn grants_of_the_root_inside_or_writable_above_masks_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        let p = policy(vec![home.join(".ssh"), home.join(".aws")]);
        let refused = |spec: ServiceSpec| {
            let err = service_argv(&p, &spec, &Limits::default()).unwrap_err();
            assert!(matches!(err, ProcessError::InvalidArgument(_)), "{err}");
        };
        let base = ServiceSpec {
            program: "node".into(),
            ..Default::default()
        };
        refused(ServiceSpec {
            read_dirs: vec!["/".into()],
            ..base.clone()
        });
        refused(ServiceSpec {
            read_dirs: vec![home.join(".ssh")],
            ..base.clone()
        });
        refused(ServiceSpec {
            write_dirs: vec![home.clone()],
            ..base.clone()
        });
        refused(ServiceSpec {
            read_dirs: vec!["relative".into()],
            ..base
        });
    }
}
