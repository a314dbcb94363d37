//! Launchers started ahead of need, so a run does not wait for the kernel to move a process
//! into its cgroup.
//!
//! Entering a cgroup (a write to `cgroup.procs`) takes the kernel's `cgroup_threadgroup_rwsem`
//! for writing, and the first writer after an idle spell waits for an RCU grace period: 6–18 ms
//! of waiting on every run, more than bubblewrap itself costs. So launchers for the next runs
//! are started as soon as the current one has ended (two are kept ready): each a fresh run
//! cgroup, the trampoline that enters it, `prlimit` with the run's rlimits, and then a `/bin/sh`
//! that sources a FIFO and blocks there. A run takes a ready launcher and writes one line into
//! the FIFO, `exec bwrap …` with every
//! argument single-quoted, and the shell becomes bwrap: what is left on the run's path is one
//! `exec` and bubblewrap's own setup.
//!
//! The FIFO is made owner-only in the Astrid home's `run/` (which every sandbox has masked) and
//! is unlinked as soon as both ends are open, so nothing but the daemon can ever write a
//! line a launcher would execute. A launcher whose key (limits, cgroups, binaries) differs from
//! the run's is not used. A launcher that is never used goes when the policy and its clones are
//! dropped: its FIFO is closed, the shell reads end-of-file and exits, and its cgroup is
//! removed.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::cgroup::{Cgroups, RunCgroup};
use crate::{Limits, ProcessError};

/// What a launcher was prepared for; a run uses it only if its own key is equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LaunchKey {
    pub limits: Limits,
    pub cgroups: Cgroups,
    pub prlimit: PathBuf,
    pub bwrap: PathBuf,
}

/// How long a launcher may take to reach its FIFO before it is given up (it is the time of a
/// few `exec`s and one cgroup move; a machine where it takes longer runs cold).
const READY_WITHIN: Duration = Duration::from_secs(10);

/// How long a run waits for a launcher being prepared for it (none ready) before it starts its
/// own.
/// Preparing one costs about what a cold start costs, so waiting is never worse than starting
/// over; the bound only keeps a stuck preparation from holding a run.
const WAIT_FOR_FILL: Duration = Duration::from_millis(250);

/// One launcher, blocked in its shell on the FIFO's first line.
pub(crate) struct Warm {
    key: LaunchKey,
    child: Option<Child>,
    line: Option<File>,
    cgroup: Option<RunCgroup>,
}

impl Warm {
    /// Starts a launcher for `key` and waits until its shell has the FIFO open. The FIFO is
    /// made in `dir` (owner-only, masked in every sandbox) and unlinked before this returns.
    fn start(key: LaunchKey, dir: &Path) -> Result<Warm, ProcessError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| ProcessError::Io(format!("creating {}: {e}", dir.display())))?;
        let cgroup = RunCgroup::create(&key.cgroups, &key.limits)?;
        let fifo = dir.join(crate::cgroup::fresh_name("launch"));
        nix::unistd::mkfifo(
            &fifo,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .map_err(|e| ProcessError::Io(format!("creating {}: {e}", fifo.display())))?;
        // Whatever happens next, the FIFO's name does not outlive this function.
        let _unlink = Unlink(&fifo);
        let shell = ["/bin/sh", "-c", r#". "$1""#, "astrid-launch"].map(OsString::from);
        let (program, argv) = crate::policy::launch_chain(
            cgroup.as_ref(),
            &key.prlimit,
            &key.limits,
            &key.cgroups,
            shell.into_iter().chain([fifo.clone().into()]),
        );
        let child = crate::exec::spawn(&program, &argv, true)?;
        let mut warm = Warm {
            key,
            child: Some(child),
            line: None,
            cgroup,
        };
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            // Non-blocking: succeeds only once the shell has opened its end (ENXIO before).
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
                .open(&fifo)
            {
                Ok(f) => {
                    nix::fcntl::fcntl(
                        &f,
                        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
                    )
                    .map_err(|e| ProcessError::Io(format!("preparing the launcher: {e}")))?;
                    warm.line = Some(f);
                    return Ok(warm);
                }
                Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENXIO as i32) => {}
                Err(e) => return Err(ProcessError::Io(format!("opening the launcher: {e}"))),
            }
            if let Some(Ok(Some(status))) = warm.child.as_mut().map(Child::try_wait) {
                // Reaped: its pid may be reused now, so drop must not signal it.
                warm.child = None;
                return Err(ProcessError::Unavailable(format!(
                    "the launcher exited before it was ready ({status})"
                )));
            }
            if start.elapsed() > READY_WITHIN {
                return Err(ProcessError::Unavailable(format!(
                    "the launcher was not ready within {READY_WITHIN:?}"
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// Turns the launcher into bwrap with `bwrap_argv`. Returns the running child and its
    /// cgroup; on failure the launcher is gone and the caller starts cold.
    pub(crate) fn launch(
        mut self,
        bwrap_argv: &[OsString],
    ) -> Result<(Child, Option<RunCgroup>), ProcessError> {
        let line = exec_line(&self.key.bwrap, bwrap_argv)?;
        let fifo = self.line.as_mut().expect("a ready launcher has its line");
        // On failure `self` drops, which kills the shell before its FIFO is closed: it never
        // sees the end of a line it did not get whole (and the braces make a partial line a
        // syntax error anyway).
        fifo.write_all(&line)
            .map_err(|e| ProcessError::Io(format!("handing the command to the launcher: {e}")))?;
        // The shell runs the line once it has read the closing brace; closing the FIFO only
        // tells it there is nothing more.
        self.line = None;
        let child = self.child.take().expect("a ready launcher has its child");
        Ok((child, self.cgroup.take()))
    }
}

impl Drop for Warm {
    fn drop(&mut self) {
        // Unused or failed: kill the shell first (so it reads no end-of-file after a partial
        // line), then close its FIFO, reap it, and empty and remove its cgroup.
        if let Some(mut child) = self.child.take() {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
        self.line = None;
        self.cgroup = None;
    }
}

/// Ends the launchers a killed daemon left blocked in `dir` (its `run/` directory). A daemon
/// killed between starting a launcher and opening the FIFO's write end leaves the shell
/// blocked in `open()` on a FIFO that was never unlinked, for ever. For each
/// `astrid-launch-<pid>-*` of a process that is gone: open the write end without blocking (it
/// succeeds only if such a shell waits), close it, so the shell reads end-of-file and exits,
/// and unlink the name.
///
/// The pool runs it once per directory before preparing the first launcher there, which
/// covers a daemon restarted in the same home. Whoever deletes a killed daemon's home instead
/// (a test harness) must run it first: with the name gone, nothing can reach that shell.
pub fn end_stale_launchers(dir: &Path) {
    for fifo in crate::cgroup::left_by_dead_daemons(dir, "launch") {
        // ENXIO (nobody reading) is fine: then there is only the name to remove.
        drop(
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
                .open(&fifo),
        );
        let _ = std::fs::remove_file(&fifo);
    }
}

struct Unlink<'a>(&'a Path);

impl Drop for Unlink<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

/// `{ exec 'bwrap' 'arg' …; }` as one shell line. Inside single quotes the shell gives no
/// character a meaning (newlines included) except the closing quote, which is written as
/// `'\''`. The braces make the shell parse the whole line before running any of it. A NUL
/// cannot be passed to `exec` at all and is refused (the argument checks refuse it earlier).
pub(crate) fn exec_line(bwrap: &Path, argv: &[OsString]) -> Result<Vec<u8>, ProcessError> {
    let mut line = b"{ exec".to_vec();
    for arg in std::iter::once(bwrap.as_os_str()).chain(argv.iter().map(OsString::as_os_str)) {
        line.push(b' ');
        quote_into(&mut line, arg)?;
    }
    line.extend_from_slice(b"; }\n");
    Ok(line)
}

fn quote_into(out: &mut Vec<u8>, arg: &OsStr) -> Result<(), ProcessError> {
    out.push(b'\'');
    for &b in arg.as_bytes() {
        match b {
            0 => {
                return Err(ProcessError::InvalidArgument(
                    "an argument contains a NUL byte".into(),
                ))
            }
            b'\'' => out.extend_from_slice(br"'\''"),
            _ => out.push(b),
        }
    }
    out.push(b'\'');
    Ok(())
}

/// The next runs' launchers, shared by a policy and its clones.
#[derive(Clone, Default)]
pub(crate) struct Launchers {
    inner: Arc<Pool>,
}

/// How many launchers are kept ready. Two, so that a run starting the instant the last one
/// ended still finds one while its successor is being prepared; and preparing two in a row
/// costs one grace period, not two (the second cgroup move follows within the first's).
const DEPTH: usize = 2;

/// The ready launchers and the thread that prepares them. Every launcher is spawned by that one
/// thread, which lives as long as the pool: bwrap's `--die-with-parent` is `PR_SET_PDEATHSIG`,
/// which fires when the *thread* that forked the process ends, so a launcher forked by a
/// short-lived thread would be killed mid-run when that thread exits.
#[derive(Default)]
struct Pool {
    shared: Arc<Shared>,
    worker: Mutex<Option<Worker>>,
}

struct Worker {
    requests: mpsc::Sender<(LaunchKey, PathBuf)>,
    thread: std::thread::JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    slots: Mutex<Slots>,
    changed: Condvar,
    prepared: AtomicU64,
    cold: AtomicU64,
}

#[derive(Default)]
struct Slots {
    /// What the launchers are prepared for; `None` before the first run.
    key: Option<LaunchKey>,
    ready: Vec<Warm>,
    /// Launchers asked of the worker for `key` and not back yet.
    filling: usize,
    /// Preparing failed once (or was turned off): every run starts cold.
    off: bool,
}

/// How the runs of a policy (and its clones) were started so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaunchCounts {
    /// By a launcher prepared ahead, already in its cgroup.
    pub prepared: u64,
    /// By a launcher started on the run's own path.
    pub cold: u64,
}

impl std::fmt::Debug for Launchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = lock(&self.inner.shared.slots);
        if s.off {
            return f.write_str("Launchers(off)");
        }
        write!(
            f,
            "Launchers({} ready, {} on the way)",
            s.ready.len(),
            s.filling
        )
    }
}

/// Launchers are a cache, not configuration: two policies that say the same compare equal.
impl PartialEq for Launchers {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Launchers {}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Launchers {
    /// A pool that never prepares a launcher: every run starts cold.
    pub(crate) fn off() -> Launchers {
        let l = Launchers::default();
        lock(&l.inner.shared.slots).off = true;
        l
    }

    pub(crate) fn counts(&self) -> LaunchCounts {
        let s = &self.inner.shared;
        LaunchCounts {
            prepared: s.prepared.load(Ordering::Relaxed),
            cold: s.cold.load(Ordering::Relaxed),
        }
    }

    /// Counts one run as started by a prepared launcher or cold.
    pub(crate) fn count(&self, prepared: bool) {
        let s = &self.inner.shared;
        let c = if prepared { &s.prepared } else { &s.cold };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// A ready launcher for `key`, waiting briefly for one being prepared; `None` means start
    /// cold.
    pub(crate) fn take(&self, key: &LaunchKey) -> Option<Warm> {
        let shared = &self.inner.shared;
        let deadline = Instant::now() + WAIT_FOR_FILL;
        let mut s = lock(&shared.slots);
        loop {
            if s.off || s.key.as_ref() != Some(key) {
                return None;
            }
            if let Some(w) = s.ready.pop() {
                return Some(w);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if s.filling == 0 || left.is_zero() {
                return None;
            }
            s = shared
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Tops the ready launchers for `key` up to [`DEPTH`]. Called when a run has ended, not
    /// when it starts: preparing costs a few `exec`s of CPU, which a run should not have to
    /// share. Launchers for other limits (another principal's quota) are replaced: the limits
    /// of the run just ended are the likelier next ones.
    pub(crate) fn prepare(&self, key: &LaunchKey, runtime_dir: &Path) {
        let shared = &self.inner.shared;
        let mut s = lock(&shared.slots);
        if s.off {
            return;
        }
        let displaced = if s.key.as_ref() != Some(key) {
            // Launchers still on their way for the old key are dropped as they arrive.
            s.key = Some(key.clone());
            s.filling = 0;
            std::mem::take(&mut s.ready)
        } else {
            Vec::new()
        };
        let wanted = DEPTH.saturating_sub(s.ready.len() + s.filling);
        s.filling += wanted;
        drop(s);
        drop(displaced);
        for _ in 0..wanted {
            let sent = self.inner.worker().and_then(|requests| {
                requests
                    .send((key.clone(), runtime_dir.to_path_buf()))
                    .map_err(|_| ())
            });
            if sent.is_err() {
                let mut s = lock(&shared.slots);
                s.off = true;
                let gone = std::mem::take(&mut s.ready);
                drop(s);
                drop(gone);
                shared.changed.notify_all();
                return;
            }
        }
    }
}

impl Pool {
    /// The worker's request channel, starting the worker on first use.
    fn worker(&self) -> Result<mpsc::Sender<(LaunchKey, PathBuf)>, ()> {
        let mut worker = lock(&self.worker);
        if let Some(w) = &*worker {
            return Ok(w.requests.clone());
        }
        let (requests, incoming) = mpsc::channel();
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name("astrid-process-launchers".into())
            .stack_size(256 * 1024)
            .spawn(move || fill_requests(&shared, incoming))
            .map_err(|e| {
                tracing::warn!(
                    error = %e,
                    "no thread for subprocess launchers: every run starts cold"
                );
            })?;
        *worker = Some(Worker {
            requests: requests.clone(),
            thread,
        });
        Ok(requests)
    }
}

/// The worker: prepares a launcher per request, until the pool is dropped.
fn fill_requests(shared: &Shared, incoming: mpsc::Receiver<(LaunchKey, PathBuf)>) {
    // Once per directory, not per launcher: only a daemon before this one can have left any.
    let mut swept = std::collections::HashSet::new();
    while let Ok((key, runtime_dir)) = incoming.recv() {
        if swept.insert(runtime_dir.clone()) {
            end_stale_launchers(&runtime_dir);
        }
        let warm = Warm::start(key.clone(), &runtime_dir);
        let mut s = lock(&shared.slots);
        let wanted = !s.off && s.key.as_ref() == Some(&key) && s.filling > 0;
        let mut unused = Vec::new();
        match (warm, wanted) {
            (Ok(w), true) => {
                s.filling -= 1;
                s.ready.push(w);
            }
            (Ok(w), false) => unused.push(w),
            (Err(e), true) => {
                tracing::warn!(
                    error = %e,
                    "a subprocess launcher cannot be prepared ahead: every run starts cold"
                );
                s.off = true;
                s.filling = 0;
                unused = std::mem::take(&mut s.ready);
            }
            (Err(_), false) => {}
        }
        shared.changed.notify_all();
        drop(s);
        drop(unused);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // No run can be using the pool now (each holds a policy). Stop the worker (it finishes
        // the launcher it is preparing, if any), then end the ready launchers: shells reading
        // their FIFOs, which nothing ties to the worker's life.
        if let Some(w) = lock(&self.worker).take() {
            drop(w.requests);
            let _ = w.thread.join();
        }
        let ready = {
            let mut s = lock(&self.shared.slots);
            s.off = true;
            std::mem::take(&mut s.ready)
        };
        drop(ready);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launcher_left_blocked_by_a_killed_daemon_is_released_and_its_fifo_removed() {
        let dir = tempfile::tempdir().unwrap();
        // No process has this pid (above any pid_max), as for a daemon that was killed.
        let fifo = dir.path().join(format!("astrid-launch-{}-0", 1u32 << 30));
        nix::unistd::mkfifo(
            &fifo,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .unwrap();
        // A live daemon's FIFO (ours) is left alone.
        let live = dir
            .path()
            .join(format!("astrid-launch-{}-0", std::process::id()));
        nix::unistd::mkfifo(
            &live,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .unwrap();
        // The blocked shell: its open for reading waits for a writer.
        let (done, finished) = mpsc::channel();
        let (tid_tx, tid_rx) = mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tid_tx.send(nix::unistd::gettid());
            let mut line = Vec::new();
            let read =
                File::open(&path).and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut line));
            let _ = done.send(read.map(|n| (n, line)));
        });
        // Wait until the reader sleeps (in its open, waiting for a writer), as the shell would.
        let tid = tid_rx.recv().unwrap();
        let stat = format!("/proc/self/task/{tid}/stat");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !std::fs::read_to_string(&stat)
            .unwrap_or_default()
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('S'))
        {
            assert!(Instant::now() < deadline, "the reader never blocked");
            std::thread::sleep(Duration::from_millis(5));
        }
        end_stale_launchers(dir.path());
        let (n, line) = finished
            .recv_timeout(Duration::from_secs(30))
            .expect("the blocked reader was released")
            .unwrap();
        assert_eq!(
            (n, line),
            (0, Vec::new()),
            "it read end-of-file, no command"
        );
        assert!(!fifo.exists(), "the stale FIFO is removed");
        assert!(live.exists(), "a live daemon's FIFO is kept");
    }

    #[test]
    fn quoting_leaves_the_shell_nothing_to_interpret() {
        let line = exec_line(
            Path::new("/usr/bin/bwrap"),
            &["a b".into(), "it's".into(), "$(x)\n`y`".into(), "".into()],
        )
        .unwrap();
        assert_eq!(
            line,
            b"{ exec '/usr/bin/bwrap' 'a b' 'it'\\''s' '$(x)\n`y`' ''; }\n".to_vec()
        );
        let nul = OsString::from(std::ffi::OsStr::from_bytes(b"a\0b"));
        assert!(matches!(
            exec_line(Path::new("/b"), &[nul]),
            Err(ProcessError::InvalidArgument(_))
        ));
    }
}
