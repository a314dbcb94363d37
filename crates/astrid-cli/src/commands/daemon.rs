//! `start`, `stop`, `status`, `ps`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use astrid_client::{is_daemon_running, ClientError};
use astrid_types::wire::{ControlCommand, ControlResponse, DaemonStatus};

use super::{unexpected, Ctx};
use crate::output;

const STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn fetch_status(client: &astrid_client::Client) -> anyhow::Result<DaemonStatus> {
    match client.control(ControlCommand::Status).await? {
        ControlResponse::Status(s) => Ok(s),
        other => Err(unexpected(other)),
    }
}

pub async fn start(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    super::update::start_release_install(ctx).await?;
    let client = ctx.connect(true).await?;
    let status = fetch_status(&client).await?;
    outln!("astrid daemon running (pid {})", status.pid);
    Ok(ExitCode::SUCCESS)
}

pub async fn stop(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    if !is_daemon_running(&ctx.home) {
        outln!("astrid daemon: not running");
        return Ok(ExitCode::SUCCESS);
    }
    let client = ctx.connect(false).await?;
    // Knowing the pid lets us wait for the process itself, not just its socket, so that an
    // immediate `astrid start` does not race the old daemon's lock.
    let pid = fetch_status(&client).await.ok().map(|s| s.pid);
    match client.control(ControlCommand::Shutdown).await {
        Ok(ControlResponse::ShuttingDown) => {}
        // The daemon may hang up before its answer reaches us; that is success too.
        Err(ClientError::Disconnected) => {}
        Ok(other) => return Err(unexpected(other)),
        Err(e) => return Err(e.into()),
    }
    drop(client);
    let deadline = Instant::now() + STOP_TIMEOUT;
    // In-flight calls finish first, which can take a while.
    let spinner = crate::progress::spinner("stopping the astrid daemon");
    while is_daemon_running(&ctx.home) || pid.is_some_and(process_alive) {
        if Instant::now() >= deadline {
            spinner.finish_and_clear();
            match pid {
                Some(pid) => {
                    bail!("daemon (pid {pid}) still running {STOP_TIMEOUT:?} after shutdown")
                }
                None => bail!("daemon still listening {STOP_TIMEOUT:?} after shutdown"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    spinner.finish_and_clear();
    match pid {
        Some(pid) => outln!("astrid daemon stopped (pid {pid})"),
        None => outln!("astrid daemon stopped"),
    }
    Ok(ExitCode::SUCCESS)
}

fn process_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 only checks existence; EPERM still means the process exists.
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(e) => e == nix::errno::Errno::EPERM,
    }
}

pub async fn status(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    if !is_daemon_running(&ctx.home) {
        if ctx.json {
            crate::out::json(&serde_json::json!({ "running": false }))?;
        } else {
            outln!("astrid daemon: not running");
        }
        return Ok(ExitCode::FAILURE);
    }
    let client = ctx.connect(false).await?;
    let status = fetch_status(&client).await?;
    let gateway = gateway_url(&ctx.home);
    if ctx.json {
        // The daemon's own fields, plus the one a script checks first.
        let mut value = serde_json::to_value(&status)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("running".into(), true.into());
            object.insert("gateway".into(), gateway.into());
        }
        crate::out::json(&value)?;
    } else {
        out!("{}", output::status(&status));
        if let Some(url) = gateway {
            outln!("gateway: {url}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The URL of the gateway the daemon supervises (`[gateway]` in config.toml), from the
/// `run/gateway` file it writes while the gateway runs.
fn gateway_url(home: &astrid_types::AstridHome) -> Option<String> {
    let text = std::fs::read_to_string(home.run_dir().join("gateway")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("url="))
        .map(str::to_string)
}

pub async fn ps(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let client = ctx.connect(true).await?;
    match client.control(ControlCommand::Ps).await? {
        ControlResponse::Capsules(c) => crate::out::show(ctx.json, &c, |c| output::ps(c))?,
        other => return Err(unexpected(other)),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_check_sees_ourselves_and_not_the_dead() {
        assert!(process_alive(std::process::id()));
        #[expect(
            clippy::disallowed_methods,
            reason = "a test needs a real, exited process id"
        )]
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
    }
}
