//! The real `astrid-daemon` binary on a temporary home, started and stopped by the benchmark.
#![allow(clippy::disallowed_methods, reason = "benchmarks start a real daemon")]

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use astrid_client::Client;
use astrid_types::wire::{ControlCommand, ControlResponse, LifecycleState};
use astrid_types::{AstridHome, PrincipalId};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::BenchError;

const DAEMON_EXE: &str = "astrid-daemon";
const BUILD_HINT: &str = "build it first with `cargo build --release -p astrid-daemon`, using \
                          the same CARGO_TARGET_DIR as `cargo bench`";
/// Between looks at the token file. Short, because boot is measured through this loop, and
/// cheap (one stat), so polling does not steal much of the two cores from the daemon.
const POLL: Duration = Duration::from_micros(200);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const LOG_TAIL_LINES: usize = 15;
const CLIENT_NAME: &str = "astrid-benches";

/// `astrid-daemon` from the same build as this benchmark: benchmarks run from
/// `target/<profile>/deps/`, binaries land in `target/<profile>/`.
pub fn daemon_exe() -> Result<PathBuf, BenchError> {
    let me = std::env::current_exe().map_err(|e| BenchError::io("current executable", e))?;
    let Some(dir) = me.parent().and_then(Path::parent) else {
        return Err(BenchError::Daemon(format!(
            "cannot locate the target directory from {}",
            me.display()
        )));
    };
    let exe = dir.join(DAEMON_EXE);
    if !exe.is_file() {
        return Err(BenchError::Daemon(format!(
            "{} does not exist: {BUILD_HINT}",
            exe.display()
        )));
    }
    Ok(exe)
}

/// A running daemon. Dropping it stops the process.
pub struct Daemon {
    child: Child,
    home: AstridHome,
    log: PathBuf,
}

impl Daemon {
    /// Starts the daemon on `home` without waiting for it.
    pub fn spawn(exe: &Path, home: &AstridHome) -> Result<Daemon, BenchError> {
        // A token left behind by an earlier run must not pass for the new daemon's.
        match std::fs::remove_file(home.token_file()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(BenchError::io(home.token_file(), e))
            }
            _ => {}
        }
        let dir = home.log_dir();
        std::fs::create_dir_all(&dir).map_err(|e| BenchError::io(&dir, e))?;
        let log = dir.join("bench-daemon.log");
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| BenchError::io(&log, e))?;
        let err = out.try_clone().map_err(|e| BenchError::io(&log, e))?;
        let child = Command::new(exe)
            .arg("--home")
            .arg(home.root())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| BenchError::Daemon(format!("cannot start {}: {e}", exe.display())))?;
        Ok(Daemon {
            child,
            home: home.clone(),
            log,
        })
    }

    pub fn home(&self) -> &AstridHome {
        &self.home
    }

    /// The daemon's process id (for reading its resident memory).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Blocks until the daemon has written its token, which it does right after binding the
    /// socket. Fails with the daemon's last log lines if it exits or `timeout` passes.
    pub fn wait_for_token(&mut self, timeout: Duration) -> Result<(), BenchError> {
        let deadline = Instant::now() + timeout;
        let token = self.home.token_file();
        while !token.exists() {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.failure(&format!("exited with {status} before serving")));
            }
            if Instant::now() >= deadline {
                return Err(self.failure(&format!("no token after {timeout:?}")));
            }
            std::thread::sleep(POLL);
        }
        Ok(())
    }

    /// Asks the daemon to shut down (SIGTERM, as an operator would) and waits for it to exit,
    /// so the next start finds the home unlocked.
    pub fn stop(mut self) -> Result<(), BenchError> {
        self.terminate()
    }

    fn terminate(&mut self) -> Result<(), BenchError> {
        if self.child.try_wait().ok().flatten().is_some() {
            return Ok(());
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(self.failure(&format!("did not stop within {STOP_TIMEOUT:?}")));
                }
            }
        }
    }

    fn failure(&self, reason: &str) -> BenchError {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        BenchError::Daemon(format!(
            "astrid-daemon on {} {reason}\n--- last lines of {} ---\n{tail}",
            self.home.root().display(),
            self.log.display()
        ))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Err(e) = self.terminate() {
            eprintln!("astrid-benches: {e}");
        }
    }
}

/// Connects once the socket accepts, and returns when `Status` lists every capsule in
/// `expected` as ready. A capsule that failed to load ends the wait with its error.
pub async fn wait_ready(
    home: &AstridHome,
    expected: &[String],
    timeout: Duration,
) -> Result<Client, BenchError> {
    let deadline = Instant::now() + timeout;
    let client = loop {
        match Client::connect(home, PrincipalId::default_local().as_ref(), CLIENT_NAME).await {
            Ok(c) => break c,
            Err(e) if Instant::now() >= deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(POLL).await,
        }
    };
    loop {
        let ControlResponse::Status(status) = client.control(ControlCommand::Status).await? else {
            return Err(BenchError::Daemon(
                "Status answered with something else".into(),
            ));
        };
        let mut missing = Vec::new();
        for name in expected {
            match status.capsules.iter().find(|c| &c.name == name) {
                Some(c) if c.state == LifecycleState::Ready => {}
                Some(c) if c.state == LifecycleState::Failed => {
                    return Err(BenchError::Daemon(format!(
                        "capsule `{name}` failed to load: {}",
                        c.error.as_deref().unwrap_or("no reason given")
                    )));
                }
                _ => missing.push(name.as_str()),
            }
        }
        if missing.is_empty() {
            return Ok(client);
        }
        if Instant::now() >= deadline {
            return Err(BenchError::Daemon(format!(
                "capsules not ready after {timeout:?}: {missing:?}"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}
