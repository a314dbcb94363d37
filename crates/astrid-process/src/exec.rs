//! Spawning bwrap and supervising it: stdin writer, two capped output drains, an exit watcher,
//! the deadline and the limit watch. All helper threads are scoped, and the child is reaped
//! before returning.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread::{self, Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;

use crate::{LimitKind, ProcessError};

/// bwrap's result before bwrap's own failure messages are interpreted.
pub(crate) struct RawOutput {
    pub exit_code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub truncated: bool,
    pub timed_out: bool,
    /// The limit watch stopped the sandbox.
    pub stopped_by: Option<LimitKind>,
}

/// How often the limit counters are read while a program runs. A limit hit is acted on within
/// this; a program that ends sooner costs nothing (the wait wakes at its exit).
const WATCH_EVERY: Duration = Duration::from_millis(50);

const READ_CHUNK: usize = 16 * 1024;
const HELPER_STACK: usize = 64 * 1024;

/// Spawns `program` (the launcher that ends in bwrap) in a process group of its own, with a
/// clean environment and piped output; its standard input is a pipe when `stdin_piped`, else
/// `/dev/null`.
pub(crate) fn spawn(
    program: &Path,
    argv: &[OsString],
    stdin_piped: bool,
) -> Result<Child, ProcessError> {
    std::process::Command::new(program)
        .args(argv)
        // bwrap gets nothing from us: the sandbox's environment is set by --setenv, and bwrap's
        // own messages stay in the C locale so they can be recognised.
        .env_clear()
        .stdin(if stdin_piped {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so the deadline can kill bwrap and its in-sandbox init at once.
        .process_group(0)
        .spawn()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => {
                ProcessError::Unavailable(format!("cannot start {}: {e}", program.display()))
            }
            _ => ProcessError::Io(format!("spawning the sandbox: {e}")),
        })
}

/// Supervises a spawned launcher (see [`spawn`]) to its end: writes `stdin` (when its input is
/// a pipe), drains the output up to `cap` per stream, and enforces the deadline. `watch` is
/// asked periodically whether a limit was hit; if so the sandbox is stopped at once.
pub(crate) fn supervise(
    mut child: Child,
    stdin: &[u8],
    timeout: Duration,
    cap: usize,
    watch: &(dyn Fn() -> Option<LimitKind> + Sync),
) -> Result<RawOutput, ProcessError> {
    let deadline = Instant::now() + timeout;
    let pid = Pid::from_raw(child.id() as i32);
    // Nothing to write: the pipe is closed at once, so the program reads end-of-file.
    let child_stdin = child.stdin.take().filter(|_| !stdin.is_empty());
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        kill_and_reap(&mut child, pid);
        return Err(ProcessError::Io(
            "the sandbox's output pipes are missing".into(),
        ));
    };

    thread::scope(|s| {
        let spawned = (|| -> io::Result<_> {
            let out_h = helper(s, "astrid-process-stdout", move || drain(out, cap))?;
            let err_h = helper(s, "astrid-process-stderr", move || drain(err, cap))?;
            let in_h = match child_stdin {
                Some(mut pipe) => Some(helper(s, "astrid-process-stdin", move || {
                    // A program that exits without reading all its input breaks the pipe; that
                    // is its business, not an error of ours.
                    let _ = pipe.write_all(stdin);
                })?),
                None => None,
            };
            let (tx, rx) = mpsc::channel();
            let wait_h = helper(s, "astrid-process-wait", move || {
                let _ = tx.send(wait_for_exit(pid));
            })?;
            Ok((out_h, err_h, in_h, rx, wait_h))
        })();
        let (out_h, err_h, in_h, rx, wait_h) = match spawned {
            Ok(handles) => handles,
            Err(e) => {
                // Killing the sandbox closes its pipes, so the helpers already started end and
                // the scope can join them.
                kill_and_reap(&mut child, pid);
                return Err(ProcessError::Io(format!("starting a helper thread: {e}")));
            }
        };

        let mut timed_out = false;
        let mut stopped_by = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(WATCH_EVERY)) {
                Ok(Ok(())) => break,
                Ok(Err(e)) => {
                    kill_and_reap(&mut child, pid);
                    return Err(ProcessError::Io(format!("waiting for the sandbox: {e}")));
                }
                Err(_) => {
                    // The deadline or a limit. bwrap's init is the sandbox's PID 1 and has
                    // --die-with-parent, so killing the group tears down the whole PID
                    // namespace.
                    if let Some(kind) = watch() {
                        stopped_by = Some(kind);
                    } else if left.is_zero() {
                        timed_out = true;
                    } else {
                        continue;
                    }
                    let _ = killpg(pid, Signal::SIGKILL);
                    break;
                }
            }
        }
        // Exactly one reap, here: until then the pid (and group) cannot be reused, which is
        // what makes the killpg above safe.
        let status = child
            .wait()
            .map_err(|e| ProcessError::Io(format!("reaping the sandbox: {e}")));
        let _ = wait_h.join();
        if let Some(h) = in_h {
            let _ = h.join();
        }
        let (stdout, out_cut) = join_drain(out_h)?;
        let (stderr, err_cut) = join_drain(err_h)?;
        let status = status?;
        Ok(RawOutput {
            exit_code: status.code(),
            stdout,
            stderr,
            truncated: out_cut || err_cut,
            timed_out,
            stopped_by,
        })
    })
}

fn helper<'scope, 'env, T: Send + 'scope>(
    s: &'scope Scope<'scope, 'env>,
    name: &str,
    f: impl FnOnce() -> T + Send + 'scope,
) -> io::Result<ScopedJoinHandle<'scope, T>> {
    thread::Builder::new()
        .name(name.into())
        .stack_size(HELPER_STACK)
        .spawn_scoped(s, f)
}

/// Blocks until bwrap has exited, without reaping it (`WNOWAIT`), so only the supervising
/// thread ever reaps and a timed-out kill can never hit a recycled pid.
fn wait_for_exit(pid: Pid) -> nix::Result<()> {
    loop {
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => return other.map(|_| ()),
        }
    }
}

fn kill_and_reap(child: &mut Child, pid: Pid) {
    let _ = killpg(pid, Signal::SIGKILL);
    let _ = child.wait();
}

/// Reads a stream to its end, keeping at most `cap` bytes; the rest is read and dropped so the
/// program never blocks on a full pipe. Returns whether anything was dropped.
fn drain(mut r: impl Read, cap: usize) -> io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok((kept, truncated)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let room = cap - kept.len();
        if n > room {
            truncated = true;
        }
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
}

fn join_drain(
    h: ScopedJoinHandle<'_, io::Result<(Vec<u8>, bool)>>,
) -> Result<(Vec<u8>, bool), ProcessError> {
    match h.join() {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ProcessError::Io(format!(
            "reading the sandbox's output: {e}"
        ))),
        Err(_) => Err(ProcessError::Io("an output reader panicked".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_keeps_the_cap_and_reports_the_rest_dropped() {
        let data = vec![7u8; 100_000];
        let (kept, cut) = drain(&data[..], 40_000).unwrap();
        assert_eq!((kept.len(), cut), (40_000, true));
        let (kept, cut) = drain(&data[..], 100_000).unwrap();
        assert_eq!((kept, cut), (data.clone(), false));
        let (kept, cut) = drain(&data[..], 0).unwrap();
        assert_eq!((kept.len(), cut), (0, true));
    }
}
