//! Resource limits of one sandbox, and recognising which of them stopped a program.
//!
//! The limits are applied in two layers: rlimits on bwrap (inherited by everything inside,
//! set by exec'ing through `prlimit`, because this crate has no `unsafe` for a `pre_exec`
//! `setrlimit`) and, where the machine lets us create one, a per-run cgroup for the process
//! count and the memory of the sandbox as a whole. See `cgroup.rs` for why both.

use astrid_types::mcp::SandboxLimits;
use std::ffi::OsString;
use std::fmt;

/// What one sandbox may consume. A plain value so that a caller (per-principal quotas later)
/// can refine it per run; [`Limits::default`] is the safe default `config.toml` starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Processes and threads alive at once in the sandbox (cgroup `pids.max`; `RLIMIT_NPROC`
    /// as well, which binds only a non-root operator).
    pub max_processes: u32,
    /// Memory of the whole sandbox, its `/tmp` included (cgroup memory limit); without a
    /// memory cgroup, the address space of each process (`RLIMIT_AS`).
    pub max_memory_bytes: u64,
    /// CPU time of each process (`RLIMIT_CPU`, then `SIGXCPU`).
    pub max_cpu_seconds: u64,
    /// Open file descriptors of each process (`RLIMIT_NOFILE`).
    pub max_open_files: u64,
    /// Largest file a process may write, in the workspace or in `/tmp` (`RLIMIT_FSIZE`, then
    /// `SIGXFSZ`).
    pub max_file_bytes: u64,
    /// Size of the sandbox's private in-memory `/tmp`.
    pub tmp_bytes: u64,
}

/// Limits as they cross the daemon's socket (an added MCP server's launch grant).
impl From<Limits> for SandboxLimits {
    fn from(l: Limits) -> SandboxLimits {
        SandboxLimits {
            max_processes: l.max_processes,
            max_memory_bytes: l.max_memory_bytes,
            max_cpu_seconds: l.max_cpu_seconds,
            max_open_files: l.max_open_files,
            max_file_bytes: l.max_file_bytes,
            tmp_bytes: l.tmp_bytes,
        }
    }
}

impl From<SandboxLimits> for Limits {
    fn from(l: SandboxLimits) -> Limits {
        Limits {
            max_processes: l.max_processes,
            max_memory_bytes: l.max_memory_bytes,
            max_cpu_seconds: l.max_cpu_seconds,
            max_open_files: l.max_open_files,
            max_file_bytes: l.max_file_bytes,
            tmp_bytes: l.tmp_bytes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_processes: 256,
            max_memory_bytes: 2 << 30,
            max_cpu_seconds: 300,
            max_open_files: 1024,
            max_file_bytes: 1 << 30,
            tmp_bytes: 256 << 20,
        }
    }
}

/// Which limit stopped a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// The process count reached its maximum; the sandbox was stopped.
    Processes,
    /// The memory limit was reached (the kernel killed a process); the sandbox was stopped.
    Memory,
    /// A process used up its CPU time (`SIGXCPU`).
    CpuTime,
    /// A process wrote past the file size limit (`SIGXFSZ`).
    FileSize,
    /// A process ran out of file descriptors (its own `EMFILE` report).
    OpenFiles,
    /// Writing failed for lack of space (its own `ENOSPC` report): the sandbox's `/tmp` is
    /// the bounded place, so that is the likely one.
    TmpSpace,
}

impl LimitKind {
    /// The `config.toml` key that raises this limit.
    pub fn config_key(self) -> &'static str {
        match self {
            LimitKind::Processes => "max_processes",
            LimitKind::Memory => "memory_mb",
            LimitKind::CpuTime => "cpu_seconds",
            LimitKind::FileSize => "file_size_mb",
            LimitKind::OpenFiles => "open_files",
            LimitKind::TmpSpace => "tmp_mb",
        }
    }

    /// A sentence for the model or the operator, with the limit's value.
    pub fn describe(self, limits: &Limits) -> String {
        let mib = |b: u64| b >> 20;
        match self {
            LimitKind::Processes => format!(
                "process limit reached ({} processes): the sandbox was stopped",
                limits.max_processes
            ),
            LimitKind::Memory => format!(
                "memory limit reached ({} MiB): the sandbox was stopped",
                mib(limits.max_memory_bytes)
            ),
            LimitKind::CpuTime => format!(
                "CPU time limit reached ({} s per process)",
                limits.max_cpu_seconds
            ),
            LimitKind::FileSize => format!(
                "file size limit reached ({} MiB per file)",
                mib(limits.max_file_bytes)
            ),
            LimitKind::OpenFiles => format!(
                "open files limit reached ({} per process)",
                limits.max_open_files
            ),
            LimitKind::TmpSpace => format!(
                "out of space (the sandbox's /tmp holds {} MiB)",
                mib(limits.tmp_bytes)
            ),
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::Processes => "processes",
            LimitKind::Memory => "memory",
            LimitKind::CpuTime => "cpu-time",
            LimitKind::FileSize => "file-size",
            LimitKind::OpenFiles => "open-files",
            LimitKind::TmpSpace => "tmp-space",
        })
    }
}

/// `prlimit` options for `limits` (soft and hard alike, so nothing inside can raise them;
/// only CPU time has a hard limit one second above, because at the hard limit the kernel sends
/// `SIGKILL`, and at the soft one the `SIGXCPU` that names the limit).
/// The address-space limit is only a fallback: with a memory cgroup it would add nothing but
/// breakage for runtimes that reserve large address ranges up front.
pub(crate) fn prlimit_args(limits: &Limits, memory_by_cgroup: bool) -> Vec<OsString> {
    let mut args = vec![
        format!("--nproc={}", limits.max_processes),
        format!(
            "--cpu={}:{}",
            limits.max_cpu_seconds,
            limits.max_cpu_seconds.saturating_add(1)
        ),
        format!("--nofile={}", limits.max_open_files),
        format!("--fsize={}", limits.max_file_bytes),
        // SIGXCPU and SIGXFSZ dump core by default: no core files in the workspace.
        "--core=0".to_string(),
    ];
    if !memory_by_cgroup {
        args.push(format!("--as={}", limits.max_memory_bytes));
    }
    args.into_iter().map(OsString::from).collect()
}

const SIGXCPU: i32 = 24;
const SIGXFSZ: i32 = 25;

/// The limit an exit tells of, when no cgroup counter did. A program killed by `SIGXCPU` or
/// `SIGXFSZ` exits `128 + signal` (bwrap's init and the shells report it so); a program that
/// failed with `EMFILE` or `ENOSPC` says so in its own words, and we run it in the C locale.
/// A program can print those words itself, but then it only mislabels its own failure.
pub(crate) fn inferred(exit_code: Option<i32>, stderr: &[u8]) -> Option<LimitKind> {
    match exit_code {
        Some(0) | None => return None,
        Some(c) if c == 128 + SIGXCPU => return Some(LimitKind::CpuTime),
        Some(c) if c == 128 + SIGXFSZ => return Some(LimitKind::FileSize),
        Some(_) => {}
    }
    let has = |needle: &[u8]| stderr.windows(needle.len()).any(|w| w == needle);
    if has(b"Too many open files") {
        Some(LimitKind::OpenFiles)
    } else if has(b"No space left on device") {
        Some(LimitKind::TmpSpace)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prlimit_sets_every_limit_and_the_address_space_only_without_a_memory_cgroup() {
        let l = Limits::default();
        let with = prlimit_args(&l, true);
        let s: Vec<String> = with
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            s,
            [
                "--nproc=256",
                "--cpu=300:301",
                "--nofile=1024",
                "--fsize=1073741824",
                "--core=0"
            ]
        );
        let without = prlimit_args(&l, false);
        assert_eq!(without.last().unwrap().to_string_lossy(), "--as=2147483648");
    }

    #[test]
    fn exits_and_messages_name_their_limit() {
        assert_eq!(inferred(Some(153), b""), Some(LimitKind::FileSize));
        assert_eq!(inferred(Some(152), b""), Some(LimitKind::CpuTime));
        assert_eq!(
            inferred(Some(1), b"sh: 1: cannot open x: Too many open files\n"),
            Some(LimitKind::OpenFiles)
        );
        assert_eq!(
            inferred(Some(1), b"yes: standard output: No space left on device\n"),
            Some(LimitKind::TmpSpace)
        );
        // Success, a plain failure, or a time-out name nothing.
        assert_eq!(inferred(Some(0), b"Too many open files"), None);
        assert_eq!(inferred(Some(2), b"ls: x: No such file"), None);
        assert_eq!(inferred(None, b""), None);
    }

    #[test]
    fn descriptions_carry_the_value_and_keys_match_the_config() {
        let l = Limits::default();
        assert!(LimitKind::Memory.describe(&l).contains("2048 MiB"));
        assert!(LimitKind::Processes.describe(&l).contains("256 processes"));
        assert_eq!(LimitKind::TmpSpace.config_key(), "tmp_mb");
    }
}
