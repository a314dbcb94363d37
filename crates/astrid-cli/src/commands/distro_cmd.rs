//! `astrid distro install|lock|show`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use astrid_types::distro::{DistroLock, LOCK_FILE};
use astrid_types::wire::{CapsuleInfo, ControlCommand, ControlResponse};
use serde::Serialize;

use super::{distro, distro_resolve, unexpected, Ctx};
use crate::args::DistroCommand;
use crate::output::short_hash;

pub async fn run(ctx: &Ctx, cmd: DistroCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DistroCommand::Install { dir } => install(ctx, dir.as_deref()).await,
        DistroCommand::Lock { dir } => lock(&dir).await,
        DistroCommand::Show => show(ctx).await,
    }
}

async fn install(ctx: &Ctx, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot determine the current directory")?;
    let exe = std::env::current_exe().ok();
    let (dir, source) =
        distro::locate(dir, std::env::var_os("ASTRID_DISTRO"), exe.as_deref(), &cwd)?;
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let client = ctx.connect(true).await?;
    outln!("distro: {} ({})", dir.display(), source.describe());
    let resolved = distro::install(&client, &dir).await?;
    outln!(
        "pinned {} {} ({} capsules, lock {}) in {}",
        resolved.lock.name,
        resolved.lock.version,
        resolved.lock.capsules.len(),
        short_hash(&resolved.lock.digest().to_string()),
        ctx.home.root().join(LOCK_FILE).display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn lock(dir: &Path) -> anyhow::Result<ExitCode> {
    let d = dir.to_path_buf();
    let lock = tokio::task::spawn_blocking(move || distro_resolve::lock_packages(&d)).await??;
    let path = dir.join(LOCK_FILE);
    write_atomic(&path, lock.to_toml().as_bytes())?;
    for c in &lock.capsules {
        outln!(
            "  {:<20} {:<10} {}",
            c.name,
            c.version,
            short_hash(&c.hash.to_string())
        );
    }
    outln!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Through a temporary file in the same directory, so a reader never sees half a lock.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{LOCK_FILE}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("writing {}: {e}", path.display())
    })
}

/// One pinned capsule as `distro show` reports it.
#[derive(Debug, Serialize)]
struct PinState {
    name: String,
    version: String,
    pinned: String,
    installed: Option<String>,
    /// `as pinned`, `refused` (installed with another artifact; it does not run), or
    /// `not installed`.
    state: &'static str,
}

#[derive(Debug, Serialize)]
struct Shown {
    lock: Option<DistroLock>,
    capsules: Vec<PinState>,
}

fn states(lock: &DistroLock, installed: &[CapsuleInfo]) -> Vec<PinState> {
    lock.capsules
        .iter()
        .map(|pin| {
            let now = installed.iter().find(|c| c.name == pin.name.as_ref());
            let pinned = pin.hash.to_string();
            let state = match now {
                None => "not installed",
                Some(c) if c.hash == pinned => "as pinned",
                Some(_) => "refused",
            };
            PinState {
                name: pin.name.to_string(),
                version: pin.version.to_string(),
                pinned,
                installed: now.map(|c| c.hash.clone()),
                state,
            }
        })
        .collect()
}

async fn show(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let client = ctx.connect(true).await?;
    let lock = match client.control(ControlCommand::DistroShow).await? {
        ControlResponse::Distro(lock) => lock,
        other => return Err(unexpected(other)),
    };
    let installed = match client.control(ControlCommand::List).await? {
        ControlResponse::Capsules(c) => c,
        other => return Err(unexpected(other)),
    };
    let capsules = lock
        .as_ref()
        .map(|l| states(l, &installed))
        .unwrap_or_default();
    let off = capsules.iter().any(|c| c.state == "refused");
    let shown = Shown { lock, capsules };
    crate::out::show(ctx.json, &shown, |s| match &s.lock {
        None => "no distro lock is pinned: capsules are installed as given\n".to_string(),
        Some(lock) => {
            let mut out = format!(
                "distro {} {} (lock {}, Distro.toml {})\n",
                lock.name,
                lock.version,
                short_hash(&lock.digest().to_string()),
                short_hash(&lock.manifest.to_string())
            );
            for c in &s.capsules {
                out.push_str(&format!(
                    "  {:<20} {:<10} {:<22} {}\n",
                    c.name,
                    c.version,
                    short_hash(&c.pinned),
                    match (&c.installed, c.state) {
                        (Some(h), "refused") => format!("refused: installed {h}"),
                        _ => c.state.to_string(),
                    }
                ));
            }
            out
        }
    })?;
    Ok(if off {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
