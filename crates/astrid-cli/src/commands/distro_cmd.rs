//! `astrid distro install|lock|show|keygen|pack|verify` and `astrid trust`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use astrid_crypto::KeyPair;
use astrid_shuttle::{TrustStore, TRUST_FILE};
use astrid_types::distro::{DistroLock, LOCK_FILE};
use astrid_types::wire::{CapsuleInfo, ControlCommand, ControlResponse, LifecycleState};
use serde::Serialize;

use super::{distro, distro_resolve, unexpected, Ctx};
use crate::args::{DistroCommand, RegistryArg, TrustCommand};
use crate::output::short_hash;

pub async fn run(ctx: &Ctx, cmd: DistroCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DistroCommand::Install { dir, registry } => install(ctx, dir.as_deref(), &registry).await,
        DistroCommand::Lock { dir } => lock(&dir).await,
        DistroCommand::Show => show(ctx).await,
        DistroCommand::Keygen { key } => {
            let pair = KeyPair::create_file(&key)?;
            outln!(
                "wrote {} (keep it private; it is never overwritten)",
                key.display()
            );
            outln!("public key: {}", pair.public_key());
            outln!(
                "users trust it with: astrid trust add NAME {}",
                pair.public_key()
            );
            Ok(ExitCode::SUCCESS)
        }
        DistroCommand::Pack { dir, key, out } => pack(&dir, &key, out).await,
        DistroCommand::Verify { bundle } => verify(ctx, &bundle).await,
    }
}

/// `astrid trust add|list|remove`: a file under the home, no daemon needed.
pub fn trust(ctx: &Ctx, cmd: TrustCommand) -> anyhow::Result<ExitCode> {
    let path = ctx.home.root().join(TRUST_FILE);
    let mut store = TrustStore::load(&path)?;
    match cmd {
        TrustCommand::Add {
            name,
            key,
            releases,
        } => {
            let added = store.add(&name, &key, releases)?;
            let what = if added.releases {
                "distros, registry indexes and Astrid releases (`astrid update`)"
            } else {
                "distros and registry indexes"
            };
            outln!(
                "trusting `{}` (key {}) to sign {what}",
                added.name,
                added.key
            );
        }
        TrustCommand::Remove { name } => {
            let removed = store.remove(&name)?;
            outln!(
                "no longer trusting `{}` (key {})",
                removed.name,
                removed.key
            );
        }
        TrustCommand::List => crate::out::show(ctx.json, store.publishers(), |ps| {
            if ps.is_empty() {
                return "no trusted publishers: `astrid trust add NAME KEY`\n".to_string();
            }
            ps.iter()
                .map(|p| {
                    let releases = if p.releases { "  (also releases)" } else { "" };
                    format!("{:<24} {}{releases}\n", p.name, p.key)
                })
                .collect()
        })?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn pack(dir: &Path, key: &Path, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (d, k) = (dir.to_path_buf(), key.to_path_buf());
    let (out, lock, signer) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let pair = KeyPair::load_file(&k)?;
        // The bundle is only as good as what it signs: the distro is checked against its own
        // lock first, and a distro without one is refused rather than locked silently.
        if !d.join(LOCK_FILE).is_file() {
            anyhow::bail!(
                "{} has no {LOCK_FILE}: run `astrid distro lock {}` first",
                d.display(),
                d.display()
            );
        }
        let resolved = distro_resolve::resolve(&d)?;
        let out = out.unwrap_or_else(|| {
            d.join("..").join(format!(
                "{}-{}.shuttle",
                resolved.lock.name, resolved.lock.version
            ))
        });
        astrid_shuttle::pack(&d, &pair, &out)?;
        Ok((out, resolved.lock, pair.public_key().to_string()))
    })
    .await??;
    outln!(
        "wrote {}: {} {}, {} capsules, signed by {signer}",
        out.display(),
        lock.name,
        lock.version,
        lock.capsules.len()
    );
    Ok(ExitCode::SUCCESS)
}

async fn verify(ctx: &Ctx, bundle: &Path) -> anyhow::Result<ExitCode> {
    let (b, home) = (bundle.to_path_buf(), ctx.home.clone());
    let (signer, lock) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        if b.is_dir() {
            anyhow::bail!(
                "{} is a directory; `astrid distro verify` checks a .shuttle bundle",
                b.display()
            );
        }
        let opened = distro::open(&b, &home)?;
        let resolved = opened.resolve()?;
        Ok((opened.signer.clone().unwrap_or_default(), resolved.lock))
    })
    .await??;
    outln!(
        "{}: {} {}, {} capsules, every package as its lock pins it; signed by {signer}, a \
         trusted publisher",
        bundle.display(),
        lock.name,
        lock.version,
        lock.capsules.len()
    );
    Ok(ExitCode::SUCCESS)
}

async fn install(
    ctx: &Ctx,
    dir: Option<&Path>,
    registry: &RegistryArg,
) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot determine the current directory")?;
    let exe = std::env::current_exe().ok();
    // Kept until the install is done: the downloaded bundle lives in its temporary directory.
    let mut fetched = None;
    let (dir, source) = match dir.and_then(super::registry::wanted) {
        Some(wanted) => {
            let f = super::registry::fetch_distro(ctx, registry, &wanted?).await?;
            let path = f.path.clone();
            fetched = Some(f);
            (path, distro::Source::Registry)
        }
        None => distro::locate(dir, std::env::var_os("ASTRID_DISTRO"), exe.as_deref(), &cwd)?,
    };
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let (p, home) = (dir.clone(), ctx.home.clone());
    let opened = tokio::task::spawn_blocking(move || distro::open(&p, &home)).await??;
    let client = ctx.connect(true).await?;
    let from = match source {
        distro::Source::Flag => "as given",
        other => other.describe(),
    };
    outln!("distro: {} ({from})", dir.display());
    if let Some(signer) = &opened.signer {
        outln!("  signed by {signer}, a trusted publisher");
    }
    let resolved = distro::install(&client, opened).await?;
    outln!(
        "pinned {} {} ({} capsules, lock {}) in {}",
        resolved.lock.name,
        resolved.lock.version,
        resolved.lock.capsules.len(),
        short_hash(&resolved.lock.digest().to_string()),
        ctx.home.root().join(LOCK_FILE).display()
    );
    drop(fetched);
    let failed = super::mcp_servers::add_from_distro(ctx, &resolved.manifest.mcp_servers).await;
    if failed > 0 {
        eprintln!(
            "{failed} MCP server(s) of the distro were not added (see above); the capsules \
             are installed. Fix the cause and run `astrid distro install` again, or add them \
             with `astrid mcp add`."
        );
        return Ok(ExitCode::FAILURE);
    }
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
    /// `as pinned`, `refused` (installed with another component or manifest, or refused by an
    /// unreadable lock: it does not run), `failed` (as pinned, but it does not run), or
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
            // The daemon's own refusal names the lock; that is how a Capsule.toml that
            // differs from its pin shows (the list does not carry manifest hashes).
            let refused_by_lock = |c: &CapsuleInfo| {
                c.error
                    .as_deref()
                    .is_some_and(|e| e.contains("pinned by Distro.lock") || e.contains(LOCK_FILE))
            };
            let state = match now {
                None => "not installed",
                Some(c) if c.hash != pinned || refused_by_lock(c) => "refused",
                Some(c) if c.state == LifecycleState::Failed => "failed",
                Some(_) => "as pinned",
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
    let off = capsules
        .iter()
        .any(|c| c.state == "refused" || c.state == "failed");
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
