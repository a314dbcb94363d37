//! The HTTP gateway as a child of the daemon (`[gateway]` in config.toml): started once the
//! kernel is up, restarted with backoff when it dies, stopped with the daemon.
//!
//! It stays what it is when run by hand: a separate, unprivileged process that reaches the
//! kernel only through the socket and authenticates every request with that request's device
//! token. The daemon hands it no credential: its environment is cleared (a provider key in the
//! daemon's environment does not leak into an HTTP-facing process), it inherits no descriptor
//! but a pipe on stdin, and it is never given the operator token. The pipe's other end is kept
//! here: when the daemon exits, even by SIGKILL, the gateway reads end-of-file and stops
//! (`--exit-on-stdin-eof`), so no orphan keeps serving for a daemon that is gone.
//!
//! Where it listens is logged and written to `run/gateway` (`url=` and `pid=` lines), which
//! `astrid status` shows; the file is removed when the gateway stops.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use astrid_types::AstridHome;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::config::GatewaySpec;

/// The first restart waits this long; each quick failure doubles it, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A gateway that ran this long before dying is restarted after `FIRST_BACKOFF` again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// How long a stopping gateway may finish its requests before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// `run/gateway`: where the supervised gateway listens, for `astrid status`.
pub fn info_file(home: &AstridHome) -> std::path::PathBuf {
    home.run_dir().join("gateway")
}

/// The running child, shared with [`Supervisor::stop`].
#[derive(Default)]
struct Running {
    /// Set once by `stop`: no restart after this.
    stopping: bool,
    pid: Option<u32>,
    /// Dropping it closes the gateway's stdin, which stops it.
    stdin: Option<ChildStdin>,
}

pub struct Supervisor {
    stop: mpsc::Sender<()>,
    running: Arc<Mutex<Running>>,
    thread: JoinHandle<()>,
}

impl Supervisor {
    /// Starts the gateway and a thread that restarts it when it exits.
    pub fn start(spec: GatewaySpec, home: AstridHome) -> Supervisor {
        let (stop, stopped) = mpsc::channel();
        let running = Arc::new(Mutex::new(Running::default()));
        let shared = running.clone();
        let thread = std::thread::Builder::new()
            .name("gateway-supervisor".into())
            .spawn(move || supervise(&spec, &home, &shared, &stopped))
            .expect("starting the gateway supervisor thread");
        Supervisor {
            stop,
            running,
            thread,
        }
    }

    /// Stops the gateway (SIGTERM and end-of-file on its stdin: it finishes what is in flight
    /// and ends its streams) and waits for it, killing it after `STOP_GRACE`.
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
                    "the gateway did not stop within {STOP_GRACE:?}; killing it"
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

fn supervise(
    spec: &GatewaySpec,
    home: &AstridHome,
    running: &Mutex<Running>,
    stopped: &mpsc::Receiver<()>,
) {
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
                announce(home, &mut child, pid);
                let status = child.wait();
                {
                    let mut r = lock(running);
                    r.pid = None;
                    r.stdin = None;
                }
                let _ = std::fs::remove_file(info_file(home));
                if lock(running).stopping {
                    tracing::info!(pid, "gateway stopped");
                    return;
                }
                match status {
                    Ok(s) => {
                        tracing::warn!(pid, "the gateway exited ({s}); restarting in {backoff:?}")
                    }
                    Err(e) => tracing::warn!(
                        pid,
                        "waiting for the gateway: {e}; restarting in {backoff:?}"
                    ),
                }
            }
            Err(e) => tracing::error!(
                "cannot start the gateway {}: {e}; retrying in {backoff:?}",
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
    reason = "the gateway is the operator's own uplink, not capsule code: it runs unsandboxed \
              as the daemon's user, with a cleared environment and no credential"
)]
fn spawn(spec: &GatewaySpec) -> std::io::Result<Child> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // Logging follows the daemon's (its stderr is the daemon's log).
    if let Some(level) = std::env::var_os("ASTRID_LOG") {
        cmd.env("ASTRID_LOG", level);
    }
    cmd.spawn()
}

/// Reads the base URL the gateway prints first, logs it and writes `run/gateway`. The rest of
/// its stdout (nothing, by design) is drained on a thread so it can never block on a pipe.
fn announce(home: &AstridHome, child: &mut Child, pid: u32) {
    let Some(out) = child.stdout.take() else {
        return;
    };
    let mut reader = BufReader::new(out);
    let mut url = String::new();
    match reader.read_line(&mut url) {
        Ok(n) if n > 0 => {
            let url = url.trim();
            tracing::info!(pid, "gateway listening on {url}");
            let text = format!("url={url}\npid={pid}\n");
            if let Err(e) = astrid_kernel::atomic_write(&info_file(home), text.as_bytes(), 0o644) {
                tracing::warn!("cannot write {}: {e}", info_file(home).display());
            }
        }
        // It exited before binding; `wait` reports how, and its stderr says why.
        _ => return,
    }
    let _ = std::thread::Builder::new()
        .name("gateway-stdout".into())
        .spawn(move || {
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
}
