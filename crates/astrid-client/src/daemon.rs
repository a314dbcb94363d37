//! Finding out whether the daemon is up, and starting it in the background when it is not.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use astrid_types::home::AstridHome;

use crate::ClientError;

const DAEMON_EXE: &str = "astrid-daemon";
const START_TIMEOUT: Duration = Duration::from_secs(15);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// If the daemon we spawned exits, another one may have won the start race and still be
/// binding its socket; give it this long before declaring failure.
const LOST_RACE_GRACE: Duration = Duration::from_secs(2);
const LOG_TAIL_LINES: usize = 20;

/// True when something accepts connections on the daemon socket.
pub fn is_daemon_running(home: &AstridHome) -> bool {
    std::os::unix::net::UnixStream::connect(home.socket()).is_ok()
}

/// Starts the daemon for `home` unless it is already running, and waits until it accepts
/// connections. `daemon_exe` overrides the search done by [`find_daemon_exe`].
pub async fn ensure_daemon(
    home: &AstridHome,
    daemon_exe: Option<PathBuf>,
) -> Result<(), ClientError> {
    if is_ready(home) {
        return Ok(());
    }
    let exe = match daemon_exe {
        Some(p) => p,
        None => find_daemon_exe()?,
    };
    let log_path = home.daemon_log();
    let (log, log_start) = open_log(home)?;
    let log_err = log.try_clone().map_err(|source| ClientError::DaemonSpawn {
        path: log_path.clone(),
        source,
    })?;
    #[expect(
        clippy::disallowed_methods,
        reason = "starting astrid-daemon itself when no daemon runs"
    )]
    let mut child = Command::new(&exe)
        .arg("--home")
        .arg(home.root())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Its own process group, so a Ctrl-C meant for the CLI does not reach the daemon.
        .process_group(0)
        .spawn()
        .map_err(|source| ClientError::DaemonSpawn {
            path: exe.clone(),
            source,
        })?;

    let deadline = Instant::now() + START_TIMEOUT;
    let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
    loop {
        if is_ready(home) {
            if exited.is_none() {
                // Reap it whenever it eventually exits, so it never lingers as a zombie of
                // a long-lived uplink.
                std::thread::spawn(move || child.wait());
            }
            return Ok(());
        }
        if exited.is_none() {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some((status, Instant::now()));
            }
        }
        let reason = match exited {
            Some((status, at)) if at.elapsed() >= LOST_RACE_GRACE => {
                Some(format!("{} exited with {status}", exe.display()))
            }
            _ if Instant::now() >= deadline => Some(format!(
                "no socket at {} after {START_TIMEOUT:?}",
                home.socket().display()
            )),
            _ => None,
        };
        if let Some(reason) = reason {
            return Err(ClientError::DaemonStart {
                reason,
                log_tail: log_tail(&log_path, log_start),
                log: log_path,
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The daemon is usable once it listens and its token exists for us to authenticate with.
fn is_ready(home: &AstridHome) -> bool {
    home.token_file().exists() && is_daemon_running(home)
}

/// `$ASTRID_DAEMON`, else `astrid-daemon` next to the running executable, else on `PATH`.
/// The variable wins so an operator can always point at a specific build.
pub fn find_daemon_exe() -> Result<PathBuf, ClientError> {
    let mut looked = Vec::new();
    if let Some(p) = std::env::var_os("ASTRID_DAEMON").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if is_executable(&p) {
            return Ok(p);
        }
        looked.push(format!("ASTRID_DAEMON={}", p.display()));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_owned))
    {
        let p = dir.join(DAEMON_EXE);
        if is_executable(&p) {
            return Ok(p);
        }
        looked.push(dir.display().to_string());
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(DAEMON_EXE);
            if is_executable(&p) {
                return Ok(p);
            }
        }
        looked.push("PATH".into());
    }
    Err(ClientError::DaemonNotFound(looked.join(", ")))
}

fn is_executable(p: &Path) -> bool {
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Opens the daemon log for appending and returns where this start's output begins.
fn open_log(home: &AstridHome) -> Result<(std::fs::File, u64), ClientError> {
    let dir = home.log_dir();
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| ClientError::DaemonLog {
            action: "create",
            path: dir.clone(),
            source,
        })?;
    let path = home.daemon_log();
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .map_err(|source| ClientError::DaemonLog {
            action: "open",
            path: path.clone(),
            source,
        })?;
    let start = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((file, start))
}

/// The last lines the daemon wrote, preferring what this start produced over older runs.
fn log_tail(path: &Path, start: u64) -> String {
    let read_from = |offset: u64| -> String {
        let mut text = Vec::new();
        if let Ok(mut f) = std::fs::File::open(path) {
            if f.seek(SeekFrom::Start(offset)).is_ok() {
                let _ = f.read_to_end(&mut text);
            }
        }
        String::from_utf8_lossy(&text).into_owned()
    };
    let mut text = read_from(start);
    if text.trim().is_empty() {
        text = read_from(0);
    }
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
    if tail.trim().is_empty() {
        "(the log is empty)".into()
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_prefers_the_current_run_and_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.log");
        let old = "old run\n".repeat(5);
        let new: String = (0..30).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, format!("{old}{new}")).unwrap();
        let tail = log_tail(&path, old.len() as u64);
        assert!(!tail.contains("old run"), "{tail}");
        assert!(tail.starts_with("line 10\n"), "{tail}");
        assert!(tail.ends_with("line 29"), "{tail}");
    }

    #[test]
    fn log_tail_falls_back_to_older_output_when_this_run_wrote_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.log");
        std::fs::write(&path, "earlier failure\n").unwrap();
        assert_eq!(log_tail(&path, 16), "earlier failure");
        assert_eq!(
            log_tail(&dir.path().join("missing"), 0),
            "(the log is empty)"
        );
    }
}
