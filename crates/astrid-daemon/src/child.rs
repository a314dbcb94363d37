//! Programs the daemon keeps running beside itself (the HTTP gateway, the MCP bridges):
//! started once the kernel is up, restarted with backoff when they die, stopped with the
//! daemon.
//!
//! Each stays what it is when run by hand: a separate process that reaches the kernel only
//! through the socket, with the credential it would have then. Its environment is cleared but
//! for the variables its spec names (a provider key in the daemon's environment does not leak
//! into it), and it inherits no descriptor but a pipe on stdin. The pipe's other end is kept
//! here: when the daemon exits, even by SIGKILL, the child reads end-of-file (the gateway stops
//! on it, `--exit-on-stdin-eof`; a bridge also loses its connection), so no orphan keeps
//! serving for a daemon that is gone.
//!
//! A child that announces (the gateway) prints where it listens as its first stdout line; that
//! is logged and written to an info file (`url=` and `pid=` lines), which `astrid status`
//! shows; the file is removed when the child stops.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The first restart waits this long; each quick failure doubles it, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A child that ran this long before dying is restarted after `FIRST_BACKOFF` again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// How long a stopping child may finish its work before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What to run, and how.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// For logs and thread names: `gateway`, `mcp-bridge-alice`.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Variables passed on from the daemon's environment (`ASTRID_LOG` always is); all others
    /// are cleared.
    pub pass_env: &'static [&'static str],
    /// Where to write the address the child prints as its first stdout line; `None`: its
    /// stdout is discarded.
    pub announce_to: Option<PathBuf>,
}

/// The running child, shared with [`Supervisor::stop`].
#[derive(Default)]
struct Running {
    /// Set once by `stop`: no restart after this.
    stopping: bool,
    pid: Option<u32>,
    /// Dropping it closes the child's stdin, which stops it.
    stdin: Option<ChildStdin>,
}

pub struct Supervisor {
    name: String,
    stop: mpsc::Sender<()>,
    running: Arc<Mutex<Running>>,
    thread: JoinHandle<()>,
}

impl Supervisor {
    /// Starts the child and a thread that restarts it when it exits.
    pub fn start(spec: ChildSpec) -> Supervisor {
        let (stop, stopped) = mpsc::channel();
        let running = Arc::new(Mutex::new(Running::default()));
        let shared = running.clone();
        let name = spec.name.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{}-supervisor", spec.name))
            .spawn(move || supervise(&spec, &shared, &stopped))
            .expect("starting a supervisor thread");
        Supervisor {
            name,
            stop,
            running,
            thread,
        }
    }

    /// Stops the child (SIGTERM and end-of-file on its stdin: the gateway finishes what is in
    /// flight and ends its streams) and waits for it, killing it after `STOP_GRACE`.
    pub fn stop(self) {
        let pid = {
            let mut r = lock(&self.running);
            r.stopping = true;
            r.stdin = None;
            r.pid
        };
        // Wakes a supervisor waiting out its backoff.
        let _ = self.stop.send(());
        if let Some(pid) = pid {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while !self.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !self.thread.is_finished() {
            if let Some(pid) = lock(&self.running).pid {
                tracing::warn!(
                    pid,
                    "{} did not stop within {STOP_GRACE:?}; killing it",
                    self.name
                );
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
        let _ = self.thread.join();
    }
}

fn lock(m: &Mutex<Running>) -> std::sync::MutexGuard<'_, Running> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn supervise(spec: &ChildSpec, running: &Mutex<Running>, stopped: &mpsc::Receiver<()>) {
    let name = &spec.name;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        match spawn(spec) {
            Ok(mut child) => {
                let pid = child.id();
                {
                    let mut r = lock(running);
                    if r.stopping {
                        // `stop` came while this child was being started: it never saw it.
                        drop(child.stdin.take());
                        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
                    } else {
                        r.stdin = child.stdin.take();
                    }
                    r.pid = Some(pid);
                }
                announce(spec, &mut child, pid);
                let status = child.wait();
                {
                    let mut r = lock(running);
                    r.pid = None;
                    r.stdin = None;
                }
                if let Some(info) = &spec.announce_to {
                    let _ = std::fs::remove_file(info);
                }
                if lock(running).stopping {
                    tracing::info!(pid, "{name} stopped");
                    return;
                }
                match status {
                    Ok(s) => tracing::warn!(pid, "{name} exited ({s}); restarting in {backoff:?}"),
                    Err(e) => {
                        tracing::warn!(pid, "waiting for {name}: {e}; restarting in {backoff:?}")
                    }
                }
            }
            Err(e) => tracing::error!(
                "cannot start {name} ({}): {e}; retrying in {backoff:?}",
                spec.program.display()
            ),
        }
        if started.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        // Returns early when `stop` sends; an owner that is gone wants no more restarts.
        let woken = stopped.recv_timeout(backoff);
        if lock(running).stopping || woken == Err(mpsc::RecvTimeoutError::Disconnected) {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "the gateway and the MCP bridges are the operator's own programs, not capsule \
              code: they run unsandboxed as the daemon's user, with a cleared environment (the \
              bridge runs the MCP servers themselves in the OS sandbox)"
)]
fn spawn(spec: &ChildSpec) -> std::io::Result<Child> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(if spec.announce_to.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::inherit());
    // Logging follows the daemon's (its stderr is the daemon's log).
    for var in spec.pass_env.iter().copied().chain(["ASTRID_LOG"]) {
        if let Some(value) = std::env::var_os(var) {
            cmd.env(var, value);
        }
    }
    cmd.spawn()
}

/// Reads the address the child prints first, logs it and writes the spec's info file. The
/// rest of its stdout (nothing, by design) is drained on a thread so it can never block on a
/// pipe.
fn announce(spec: &ChildSpec, child: &mut Child, pid: u32) {
    let Some(info) = &spec.announce_to else {
        return;
    };
    let Some(out) = child.stdout.take() else {
        return;
    };
    let mut reader = BufReader::new(out);
    let mut url = String::new();
    match reader.read_line(&mut url) {
        Ok(n) if n > 0 => {
            let url = url.trim();
            tracing::info!(pid, "{} listening on {url}", spec.name);
            let text = format!("url={url}\npid={pid}\n");
            if let Err(e) = astrid_kernel::atomic_write(info, text.as_bytes(), 0o644) {
                tracing::warn!("cannot write {}: {e}", info.display());
            }
        }
        // It exited before binding; `wait` reports how, and its stderr says why.
        _ => return,
    }
    let _ = std::thread::Builder::new()
        .name(format!("{}-stdout", spec.name))
        .spawn(move || {
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
}
