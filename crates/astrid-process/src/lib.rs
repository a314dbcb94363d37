//! Native subprocesses under the OS sandbox: the host side of `astrid:process`.
//!
//! Every [`run`] goes through bubblewrap: a read-only view of the host root, the working
//! directory as the only persistent writable place, fresh namespaces (no network but `lo` and
//! the routes a caller grants, [`SandboxNet`]; its own PIDs), the operator's credential directories and the Astrid home masked, a clean
//! environment, a time limit, per-stream output caps, and resource [`Limits`] (processes,
//! memory, CPU time, open files, file size, `/tmp` size). Nothing here decides *whether* a
//! program may run; the capability and approval gates do that before calling in.
//!
//! [`run`] blocks; the host calls it from a blocking thread. It returns only after the sandbox
//! and all helper threads are gone, so nothing outlives the call.
#![allow(
    clippy::disallowed_methods,
    reason = "this crate is where subprocesses start, under the sandbox"
)]

mod args;
mod cgroup;
mod exec;
mod limits;
mod net;
mod policy;
mod service;
mod warm;

use std::path::PathBuf;
use std::time::Duration;

pub use cgroup::{Cgroups, Enforcement, Mechanism};
pub use limits::{LimitKind, Limits};
pub use net::{NetRoute, SandboxNet, MAX_ROUTES, NETFWD};
pub use policy::{SandboxPolicy, CREDENTIAL_PATHS, SYSTEM_MASKS};
pub use service::{spawn_service, Service, ServiceSpec};
pub use warm::{end_stale_launchers, LaunchCounts};

/// What this machine lets the process count and memory limits rest on, found the way
/// [`SandboxPolicy::detect`] finds it (for a diagnosis without building a policy).
pub fn limit_enforcement() -> Enforcement {
    Cgroups::detect().enforcement()
}

/// One program to run inside the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    /// Looked up on the sandbox's PATH, or a path (absolute, or relative to `cwd`).
    pub program: String,
    pub args: Vec<String>,
    /// Absolute host directory: the working directory and the only persistent writable mount.
    pub cwd: PathBuf,
    /// Added to (or overriding) the minimal PATH, HOME and LANG the sandbox starts with.
    pub env: Vec<(String, String)>,
    /// Written to the program's standard input, which is then closed.
    pub stdin: Vec<u8>,
    /// `None` means the policy default; always capped by the policy maximum. Zero (a caller's
    /// deadline already spent) runs nothing and reports a time-out.
    pub timeout: Option<Duration>,
    /// Per stream. `None` means the policy default; always capped by the policy maximum.
    pub max_output: Option<usize>,
    /// The hosts the program may reach, through the forwarder (none when `None`: its
    /// namespace has only `lo`).
    pub net: Option<SandboxNet>,
}

/// What a finished (or killed) program left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// `None` when the time limit (or an outside signal to the sandbox) killed it. A program
    /// killed by a signal inside the sandbox reports `128 + signal`, as a shell would.
    pub exit_code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// At least one stream produced more than the cap; the excess was read and dropped.
    pub truncated: bool,
    /// The time limit killed the program.
    pub timed_out: bool,
    /// A resource limit stopped the program (or, for the process count and memory, the whole
    /// sandbox; `exit_code` is then `None`). [`LimitKind::describe`] words it.
    pub limit: Option<LimitKind>,
}

/// Why nothing (useful) ran. These map one to one onto `astrid:process` error codes.
/// Clone + PartialEq and handed to guests as text, so causes are kept as messages, not sources.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The program does not exist inside the sandbox.
    #[error("not found: {0}")]
    NotFound(String),
    /// The sandbox cannot be set up on this machine; nothing ran.
    #[error("sandbox unavailable: {0}")]
    Unavailable(String),
    /// Talking to the sandbox failed part-way (pipes, threads, waiting).
    #[error("i/o error: {0}")]
    Io(String),
}

/// Runs `cmd` inside the sandbox described by `policy` and waits for it (blocking).
pub fn run(policy: &SandboxPolicy, cmd: &Command) -> Result<Output, ProcessError> {
    let out = run_once(policy, cmd);
    // Whatever the outcome, the next runs' launchers are prepared now, off every run's path.
    policy.prepare_launcher();
    out
}

fn run_once(policy: &SandboxPolicy, cmd: &Command) -> Result<Output, ProcessError> {
    let argv = args::bwrap_argv(policy, cmd)?;
    let timeout = policy.effective_timeout(cmd.timeout);
    let cap = policy.effective_output(cmd.max_output);
    if timeout.is_zero() {
        return Ok(Output {
            timed_out: true,
            ..Output::default()
        });
    }
    // A launcher prepared ahead (already in its cgroup, under its rlimits) when one is ready;
    // otherwise the same chain started now.
    let prepared = policy.take_launcher().and_then(|w| w.launch(&argv).ok());
    policy.count_launch(prepared.is_some());
    let (child, cgroup) = match prepared {
        Some(started) => started,
        None => {
            let cgroup = cgroup::RunCgroup::create(&policy.cgroups, &policy.limits)?;
            let (program, argv) = policy.launcher(cgroup.as_ref(), argv);
            (exec::spawn(&program, &argv, !cmd.stdin.is_empty())?, cgroup)
        }
    };
    let watch = || cgroup.as_ref().and_then(|c| c.hit());
    let raw = exec::supervise(child, &cmd.stdin, timeout, cap, &watch)?;
    // A counter that moved after the last look (the program ended first) still counts.
    let counted = raw.stopped_by.or_else(watch);
    // Everything left in the cgroup is killed and the cgroup removed before returning.
    drop(cgroup);
    if !raw.timed_out && counted.is_none() {
        if let Some(err) =
            args::classify_failure(&cmd.program, raw.exit_code, &raw.stdout, &raw.stderr)
        {
            return Err(err);
        }
    }
    let stopped = raw.timed_out || raw.stopped_by.is_some();
    let limit = counted.or_else(|| {
        (!stopped)
            .then(|| limits::inferred(raw.exit_code, &raw.stderr))
            .flatten()
    });
    Ok(Output {
        exit_code: if stopped { None } else { raw.exit_code },
        stdout: raw.stdout,
        stderr: raw.stderr,
        truncated: raw.truncated,
        timed_out: raw.timed_out,
        limit,
    })
}
