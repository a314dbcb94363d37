//! Per-run cgroups: the process count and the memory of a sandbox as a whole.
//!
//! rlimits alone do not bound either: `RLIMIT_NPROC` does not apply to root (the kernel exempts
//! the initial user and `CAP_SYS_RESOURCE`, also inside bwrap's user namespace), and
//! `RLIMIT_AS` is per process. So where the machine lets us create a child cgroup (cgroup v2
//! with `pids`/`memory` delegated to our own cgroup, or writable v1 `pids` and `memory`
//! hierarchies), each run gets its own, entered race-free by a tiny `/bin/sh` trampoline that
//! writes its own pid into `cgroup.procs` and only then execs `prlimit` and bwrap: nothing of
//! the sandbox ever runs outside it. The counters the kernel keeps there (`pids.events max`,
//! `oom_kill`) tell which limit was hit, and emptying and removing the cgroup after the run is
//! the proof that nothing outlived it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{LimitKind, Limits, ProcessError};

/// Where per-run cgroups are created, as found at startup. All `None`: no cgroup here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cgroups {
    /// Our own cgroup v2 directory, when `pids` (and perhaps `memory`) are enabled for its
    /// children.
    pub v2: Option<PathBuf>,
    /// Whether `memory` is among the v2 controllers too.
    pub v2_memory: bool,
    /// Our own cgroup in a writable v1 `pids` hierarchy.
    pub v1_pids: Option<PathBuf>,
    /// Our own cgroup in a writable v1 `memory` hierarchy.
    pub v1_memory: Option<PathBuf>,
}

/// How a limit is enforced on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// For the sandbox as a whole, by a per-run cgroup.
    Cgroup,
    /// Per process, by an rlimit.
    Rlimit,
    /// Not at all (root without a writable cgroup, for the process count).
    NotEnforced,
}

/// What the process count and memory limits rest on here (the other limits are rlimits
/// everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enforcement {
    pub processes: Mechanism,
    pub memory: Mechanism,
}

impl Enforcement {
    /// Every limit holds for the whole sandbox or per process: nothing is left unbounded.
    pub fn complete(&self) -> bool {
        self.processes != Mechanism::NotEnforced && self.memory != Mechanism::NotEnforced
    }
}

impl std::fmt::Display for Enforcement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = |m: Mechanism, rlimit: &str| match m {
            Mechanism::Cgroup => "a per-run cgroup".to_string(),
            Mechanism::Rlimit => format!("{rlimit} per process"),
            Mechanism::NotEnforced => "NOT ENFORCED".to_string(),
        };
        write!(
            f,
            "process count: {}; memory: {}",
            how(self.processes, "RLIMIT_NPROC"),
            how(self.memory, "RLIMIT_AS")
        )?;
        if self.processes == Mechanism::NotEnforced {
            f.write_str(
                " (RLIMIT_NPROC does not bind root, and no writable pids cgroup was found)",
            )?;
        }
        Ok(())
    }
}

impl Cgroups {
    /// Finds our own cgroups and proves a child can be created in each (and removed again).
    pub fn detect() -> Cgroups {
        let (Ok(own), Ok(mounts)) = (
            std::fs::read_to_string("/proc/self/cgroup"),
            std::fs::read_to_string("/proc/self/mountinfo"),
        ) else {
            return Cgroups::default();
        };
        let mut found = Cgroups::default();
        let found_dirs = |c: &Cgroups| {
            for base in [&c.v2, &c.v1_pids, &c.v1_memory].into_iter().flatten() {
                sweep_stale(base);
            }
        };
        if let Some(dir) = own_dir(&own, &mounts, None) {
            let enabled =
                std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
            let has = |c: &str| enabled.split_whitespace().any(|x| x == c);
            if has("pids") && probe(&dir, "pids.max", "1") {
                found.v2_memory = has("memory") && probe(&dir, "memory.max", "max");
                found.v2 = Some(dir);
                found_dirs(&found);
                return found;
            }
        }
        found.v1_pids = own_dir(&own, &mounts, Some("pids")).filter(|d| probe(d, "pids.max", "1"));
        found.v1_memory = own_dir(&own, &mounts, Some("memory"))
            .filter(|d| probe(d, "memory.limit_in_bytes", "-1"));
        found_dirs(&found);
        found
    }

    pub fn enforcement(&self) -> Enforcement {
        let processes = if self.v2.is_some() || self.v1_pids.is_some() {
            Mechanism::Cgroup
        } else if nix::unistd::geteuid().is_root() {
            Mechanism::NotEnforced
        } else {
            Mechanism::Rlimit
        };
        let memory = if self.memory_by_cgroup() {
            Mechanism::Cgroup
        } else {
            Mechanism::Rlimit
        };
        Enforcement { processes, memory }
    }

    pub(crate) fn memory_by_cgroup(&self) -> bool {
        (self.v2.is_some() && self.v2_memory) || self.v1_memory.is_some()
    }

    fn is_empty(&self) -> bool {
        self.v2.is_none() && self.v1_pids.is_none() && self.v1_memory.is_none()
    }
}

/// The directory of our own cgroup: in the v2 hierarchy (`controller` `None`) or in the v1
/// hierarchy carrying `controller`.
fn own_dir(own: &str, mountinfo: &str, controller: Option<&str>) -> Option<PathBuf> {
    let path = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (id, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = match controller {
            None => id == "0" && ctrls.is_empty(),
            Some(c) => ctrls.split(',').any(|x| x == c),
        };
        hit.then_some(path)
    })?;
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let (root, mount) = (*pre.get(3)?, *pre.get(4)?);
        let fits = match controller {
            None => post.first() == Some(&"cgroup2"),
            Some(c) => {
                post.first() == Some(&"cgroup")
                    && post.get(2).is_some_and(|o| o.split(',').any(|x| x == c))
            }
        };
        if !fits {
            return None;
        }
        let rel = Path::new(path).strip_prefix(root).ok()?;
        Some(Path::new(mount).join(rel))
    })
}

static SEQ: AtomicU64 = AtomicU64::new(0);

pub(crate) fn fresh_name(what: &str) -> String {
    format!(
        "astrid-{what}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes the empty run cgroups of processes that are gone (a daemon that was killed leaves
/// its prepared launcher's cgroup behind). A cgroup that still holds a process cannot be
/// removed, and one of a live process is left alone.
fn sweep_stale(base: &Path) {
    for path in left_by_dead_daemons(base, "run") {
        let _ = std::fs::remove_dir(path);
    }
}

/// The entries of `dir` named by [`fresh_name`]`(what)` for a process that no longer exists
/// (a daemon that was killed).
pub(crate) fn left_by_dead_daemons(dir: &Path, what: &str) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let prefix = format!("astrid-{what}-");
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<i32>().ok());
            pid.is_some_and(|pid| {
                pid > 0
                    && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                        == Err(nix::errno::Errno::ESRCH)
            })
        })
        .map(|e| e.path())
        .collect()
}

/// Can we make a child here and set `file` in it?
fn probe(parent: &Path, file: &str, value: &str) -> bool {
    let dir = parent.join(fresh_name("probe"));
    if std::fs::create_dir(&dir).is_err() {
        return false;
    }
    let ok = std::fs::write(dir.join(file), value).is_ok();
    let _ = std::fs::remove_dir(&dir);
    ok
}

/// One run's cgroups (one directory on v2, one per controller on v1). Dropping it kills
/// whatever is still inside and removes the directories.
pub(crate) struct RunCgroup {
    dirs: Vec<PathBuf>,
    pids_events: Option<PathBuf>,
    oom_events: Option<PathBuf>,
}

impl RunCgroup {
    /// `None` when the machine has no usable cgroup. A cgroup that detection promised but
    /// that cannot be made now is an error: running without it would run unlimited.
    pub(crate) fn create(c: &Cgroups, limits: &Limits) -> Result<Option<RunCgroup>, ProcessError> {
        if c.is_empty() {
            return Ok(None);
        }
        let mut run = RunCgroup {
            dirs: Vec::new(),
            pids_events: None,
            oom_events: None,
        };
        let name = fresh_name("run");
        let procs = limits.max_processes.to_string();
        let mem = limits.max_memory_bytes.to_string();
        if let Some(base) = &c.v2 {
            let dir = run.make(base, &name)?;
            write(&dir, "pids.max", &procs)?;
            run.pids_events = Some(dir.join("pids.events"));
            if c.v2_memory {
                write(&dir, "memory.max", &mem)?;
                // Swap would let a memory bomb carry on past the limit, only slower.
                let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                run.oom_events = Some(dir.join("memory.events"));
            }
        }
        if let Some(base) = &c.v1_pids {
            let dir = run.make(base, &name)?;
            write(&dir, "pids.max", &procs)?;
            run.pids_events = Some(dir.join("pids.events"));
        }
        if let Some(base) = &c.v1_memory {
            let dir = run.make(base, &name)?;
            write(&dir, "memory.limit_in_bytes", &mem)?;
            // Only where swap accounting exists; it must not be below the memory limit.
            let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), &mem);
            run.oom_events = Some(dir.join("memory.oom_control"));
        }
        Ok(Some(run))
    }

    fn make(&mut self, base: &Path, name: &str) -> Result<PathBuf, ProcessError> {
        let dir = base.join(name);
        std::fs::create_dir(&dir).map_err(|e| {
            ProcessError::Unavailable(format!("cannot create the cgroup {}: {e}", dir.display()))
        })?;
        self.dirs.push(dir.clone());
        Ok(dir)
    }

    /// `/bin/sh` arguments that put the shell into every cgroup of this run and then exec the
    /// rest of the command line (appended by the caller after the returned `--`).
    pub(crate) fn trampoline_args(&self) -> Vec<OsString> {
        const SCRIPT: &str = r#"while [ "$1" != -- ]; do echo $$ > "$1" || { echo "astrid-sandbox: cannot enter the cgroup $1" >&2; exit 125; }; shift; done; shift; exec "$@""#;
        let mut argv: Vec<OsString> = vec!["-c".into(), SCRIPT.into(), "astrid-sandbox".into()];
        argv.extend(self.dirs.iter().map(|d| d.join("cgroup.procs").into()));
        argv.push("--".into());
        argv
    }

    /// The limit whose counter moved since the cgroup was made (it starts at zero).
    pub(crate) fn hit(&self) -> Option<LimitKind> {
        let counter = |file: &Option<PathBuf>, key: &str| -> u64 {
            let Some(f) = file else { return 0 };
            let text = std::fs::read_to_string(f).unwrap_or_default();
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
                .unwrap_or(0)
        };
        if counter(&self.oom_events, "oom_kill ") > 0 {
            Some(LimitKind::Memory)
        } else if counter(&self.pids_events, "max ") > 0 {
            Some(LimitKind::Processes)
        } else {
            None
        }
    }

    fn pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .dirs
            .iter()
            .flat_map(|d| {
                std::fs::read_to_string(d.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

const EMPTY_WAIT: Duration = Duration::from_secs(5);

impl Drop for RunCgroup {
    fn drop(&mut self) {
        // By now the sandbox's init is gone, and the kernel kills the rest of its PID
        // namespace; wait for that. Only if something lingers are the remaining pids killed by
        // hand: they are all inside this run's cgroup, so none of them is anyone else's.
        let start = Instant::now();
        let mut killed = false;
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            if start.elapsed() > EMPTY_WAIT / 2 && !killed {
                for dir in &self.dirs {
                    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
                }
                for p in pids {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                killed = true;
            }
            if start.elapsed() > EMPTY_WAIT {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        for dir in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn write(dir: &Path, file: &str, value: &str) -> Result<(), ProcessError> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|e| {
        ProcessError::Unavailable(format!("cannot set {} to {value}: {e}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/api/abc\n0::/user.slice/x\n";
    const MOUNTS: &str = "\
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn own_cgroups_are_found_in_their_hierarchies() {
        assert_eq!(
            own_dir(OWN, MOUNTS, Some("pids")),
            Some(PathBuf::from("/sys/fs/cgroup/pids/"))
        );
        assert_eq!(
            own_dir(OWN, MOUNTS, Some("memory")),
            Some(PathBuf::from("/sys/fs/cgroup/memory/api/abc"))
        );
        assert_eq!(
            own_dir(OWN, MOUNTS, None),
            Some(PathBuf::from("/sys/fs/cgroup/unified/user.slice/x"))
        );
        assert_eq!(own_dir(OWN, MOUNTS, Some("cpu")), None);
    }

    #[test]
    fn a_mount_rooted_below_the_hierarchy_root_is_joined_relative() {
        let mounts = "50 1 0:9 /api /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            own_dir(OWN, mounts, Some("memory")),
            Some(PathBuf::from("/sys/fs/cgroup/memory/abc"))
        );
        // Our cgroup outside the mounted subtree: nothing to use.
        let mounts = "50 1 0:9 /other /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(own_dir(OWN, mounts, Some("memory")), None);
    }

    #[test]
    fn without_cgroups_root_has_no_process_limit() {
        let e = Cgroups::default().enforcement();
        assert_eq!(e.memory, Mechanism::Rlimit);
        if nix::unistd::geteuid().is_root() {
            assert_eq!(e.processes, Mechanism::NotEnforced);
            assert!(!e.complete());
            assert!(e.to_string().contains("NOT ENFORCED"), "{e}");
        } else {
            assert_eq!(e.processes, Mechanism::Rlimit);
            assert!(e.complete());
        }
    }
}
