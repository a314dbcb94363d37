//! `astrid update` and `astrid release publish`: Astrid updating itself from a signed release
//! channel. The order is what makes it safe to kill at any point:
//!
//! 1. the channel's signature, a publisher trusted *for releases*, expiry and serial;
//! 2. the archive downloaded and checked against the signed size and hash;
//! 3. unpacked into a staging directory, each binary run once (`--version`), moved to
//!    `versions/V` by one rename (nothing in use has changed yet);
//! 4. `update.toml` records from → to, then `current` is swapped in one rename;
//! 5. the daemon of this home is stopped gracefully and the new one started; it must answer
//!    and run from `versions/V`, else `current` is swapped back and the old daemon started.
//!
//! Killed before 4, the old release is untouched and still running. Killed after, the record
//! remains: the next `astrid update` or `astrid start` puts `current` back to the release
//! that was known good (and the old daemon, if it still runs, never stopped) before doing
//! anything else.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use astrid_client::is_daemon_running;
use astrid_crypto::KeyPair;
use astrid_registry::channel::{publish_release, this_platform, ReleaseChannel};
use astrid_registry::{Location, SEEN_FILE};
use astrid_shuttle::{TrustStore, TRUST_FILE};
use semver::Version;

use super::update_layout::{Journal, Layout};
use super::Ctx;
use crate::args::{ReleaseCommand, UpdateArgs};

/// `ASTRID_FAILPOINT=NAME` kills this process with SIGKILL at that step, as a crash or a
/// `kill -9` would (the tests prove an update can be interrupted anywhere).
fn failpoint(name: &str) {
    if std::env::var("ASTRID_FAILPOINT").is_ok_and(|v| v == name) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

pub async fn run(ctx: &Ctx, args: UpdateArgs) -> anyhow::Result<ExitCode> {
    let layout = match &args.root {
        Some(root) => Layout::at(root),
        None => Layout::of_running_exe().ok_or_else(|| {
            let exe = std::env::current_exe().unwrap_or_default();
            anyhow!(
                "{} is not part of a release install (ROOT/versions/VERSION/astrid with \
                 ROOT/current); `astrid update --root DIR` installs releases into DIR, and \
                 DIR/bin/astrid update updates them",
                exe.display()
            )
        })?,
    };
    let _lock = layout.lock()?;
    recover(ctx, &layout).await?;
    let installed = layout.current()?;

    let channel = open_channel(ctx, args.channel.as_deref()).await?;
    let platform = this_platform();
    let (release, archive) = match &args.to {
        Some(v) => {
            let release = channel.channel.release(v).ok_or_else(|| {
                anyhow!(
                    "the channel has no release {v} (it has {})",
                    list_versions(&channel)
                )
            })?;
            let archive = release
                .archive(&platform)
                .ok_or_else(|| anyhow!("release {v} has no archive for {platform}"))?;
            (release, archive)
        }
        None => channel.channel.newest(&platform).ok_or_else(|| {
            anyhow!(
                "the channel has no release for {platform} (it has {})",
                list_versions(&channel)
            )
        })?,
    };
    let target = release.version.clone();
    outln!(
        "channel {} (signed by {}, trusted for releases): newest for {platform} is {}",
        channel.location(),
        channel.signer.name,
        channel
            .channel
            .newest(&platform)
            .map(|(r, _)| r.version.to_string())
            .unwrap_or_else(|| "none".into())
    );
    match &installed {
        Some(i) if *i == target => {
            outln!(
                "astrid {i} is installed in {}: up to date",
                layout.root.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Some(i) if target < *i && args.to.is_none() => {
            outln!("astrid {i} is installed, newer than the channel's {target}: nothing to do");
            return Ok(ExitCode::SUCCESS);
        }
        Some(i) if target < *i && !args.force => {
            bail!("{target} is older than the installed {i}: a downgrade needs --force")
        }
        _ => {}
    }
    let from = installed
        .as_ref()
        .map_or("nothing".to_string(), Version::to_string);
    if args.check {
        outln!(
            "update available: {from} → {target} in {}",
            layout.root.display()
        );
        return Ok(ExitCode::SUCCESS);
    }

    let bytes = {
        let spinner = crate::progress::spinner(format!("downloading astrid {target}"));
        let r = channel.download(&target, archive).await;
        spinner.finish_and_clear();
        r?
    };
    failpoint("update-downloaded");
    let what = PathBuf::from(&archive.file);
    let staged = {
        let (layout_root, target) = (layout.root.clone(), target.clone());
        tokio::task::spawn_blocking(move || Layout::at(&layout_root).stage(&target, &bytes, &what))
            .await??
    };
    outln!(
        "astrid {target} verified (hash {}) and staged in {}",
        crate::output::short_hash(&archive.hash.to_string()),
        staged.display()
    );
    failpoint("update-staged");

    let Some(from) = installed else {
        layout.point_current(&target)?;
        outln!(
            "astrid {target} installed in {}; put {} on PATH",
            layout.root.display(),
            layout.root.join("bin").display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    layout.write_journal(&Journal {
        from: from.clone(),
        to: target.clone(),
    })?;
    layout.point_current(&target)?;
    failpoint("update-swapped");
    match restart(ctx, &layout, &from, &target).await {
        Ok(()) => {
            layout.clear_journal()?;
            layout.prune(&[&target, &from]);
            outln!("astrid updated {from} → {target}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let rolled = roll_back(ctx, &layout, &from, &target).await;
            match rolled {
                Ok(note) => bail!("astrid {target} did not come up: {e:#}\nrolled back: {note}"),
                Err(r) => bail!(
                    "astrid {target} did not come up: {e:#}\nrolling back to {from} failed too: \
                     {r:#}"
                ),
            }
        }
    }
}

fn list_versions(channel: &ReleaseChannel) -> String {
    let v: Vec<String> = channel
        .channel
        .releases
        .iter()
        .map(|r| r.version.to_string())
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

async fn open_channel(ctx: &Ctx, location: Option<&str>) -> anyhow::Result<ReleaseChannel> {
    let Some(location) = location.filter(|l| !l.is_empty()) else {
        bail!(
            "no release channel: pass --channel DIR|URL or set ASTRID_CHANNEL to the directory \
             or https:// URL of a signed channel.toml"
        );
    };
    let mut location: Location = location.parse()?;
    if let Location::Dir(d) = &location {
        location = Location::Dir(std::fs::canonicalize(d).unwrap_or_else(|_| d.clone()));
    }
    let trust = TrustStore::load(&ctx.home.root().join(TRUST_FILE))?;
    let seen = ctx.home.root().join(SEEN_FILE);
    Ok(ReleaseChannel::open(location, &trust, &seen, super::registry::now()).await?)
}

/// Stops this home's daemon (if it runs from this install) and starts the one `current` now
/// points at, which must answer and run from `to`.
async fn restart(ctx: &Ctx, layout: &Layout, from: &Version, to: &Version) -> anyhow::Result<()> {
    if !is_daemon_running(&ctx.home) {
        outln!(
            "no daemon running for {}; the next start runs {to}",
            ctx.home.root().display()
        );
        return Ok(());
    }
    let client = ctx.connect(false).await?;
    let pid = super::daemon::fetch_status(&client).await?.pid;
    drop(client);
    match layout.release_of_pid(pid) {
        Some(v) if v == *from => {}
        Some(v) if v == *to => return Ok(()),
        _ => {
            outln!(
                "the daemon running (pid {pid}) is not {from} from {}: left running; restart it \
                 to use {to}",
                layout.root.display()
            );
            return Ok(());
        }
    }
    super::daemon::stop(ctx).await?;
    failpoint("update-stopped");
    start_checked(ctx, layout, to).await
}

/// Starts the daemon through `current` and checks it answers from release `expected`.
async fn start_checked(ctx: &Ctx, layout: &Layout, expected: &Version) -> anyhow::Result<()> {
    let spinner = crate::progress::spinner(format!("starting the astrid {expected} daemon"));
    let started = astrid_client::ensure_daemon(&ctx.home, Some(layout.current_daemon())).await;
    spinner.finish_and_clear();
    started?;
    let client = ctx.connect(false).await?;
    let status = super::daemon::fetch_status(&client).await?;
    match layout.release_of_pid(status.pid) {
        Some(v) if v == *expected => {
            outln!("astrid {expected} daemon running (pid {})", status.pid);
            Ok(())
        }
        other => Err(anyhow!(
            "the daemon that answered (pid {}) runs {}, not {expected}",
            status.pid,
            other.map_or("an executable outside this install".into(), |v| v
                .to_string())
        )),
    }
}

/// `current` back to `from`, and its daemon running again (a new daemon that answers but is
/// wrong is stopped first).
async fn roll_back(
    ctx: &Ctx,
    layout: &Layout,
    from: &Version,
    to: &Version,
) -> anyhow::Result<String> {
    layout.point_current(from)?;
    if is_daemon_running(&ctx.home) {
        super::daemon::stop(ctx).await?;
    }
    start_checked(ctx, layout, from).await?;
    layout.clear_journal()?;
    let _ = std::fs::remove_dir_all(layout.version_dir(to));
    Ok(format!("astrid {from} is in use and running again"))
}

/// An update killed after its swap left `update.toml`: finish it if the new daemon already
/// answers, else put `current` back to the release that was known good. A daemon that is
/// still running is left alone (it is the old one, or the new one, answering).
pub async fn recover(ctx: &Ctx, layout: &Layout) -> anyhow::Result<()> {
    let Some(j) = layout.journal()? else {
        return Ok(());
    };
    let running_new = if is_daemon_running(&ctx.home) {
        match ctx.connect(false).await {
            Ok(client) => super::daemon::fetch_status(&client)
                .await
                .ok()
                .and_then(|s| layout.release_of_pid(s.pid))
                .is_some_and(|v| v == j.to),
            Err(_) => false,
        }
    } else {
        false
    };
    if running_new {
        layout.clear_journal()?;
        outln!(
            "an update {} → {} had finished all but its record; done",
            j.from,
            j.to
        );
    } else {
        layout.point_current(&j.from)?;
        layout.clear_journal()?;
        outln!(
            "an update {} → {} was interrupted; {} is back in use in {}",
            j.from,
            j.to,
            j.from,
            layout.root.display()
        );
    }
    Ok(())
}

/// `astrid start` of a release install first undoes an interrupted update, then starts the
/// daemon through `current` (not beside this executable, which may be the release it undid).
/// Only an interrupted update needs the install's lock (and write access to it): a user who
/// may not write a shared install, e.g. one owned by root, can still start their daemon.
pub async fn start_release_install(ctx: &Ctx) -> anyhow::Result<()> {
    let Some(layout) = Layout::of_running_exe() else {
        return Ok(());
    };
    let _lock = if layout.journal()?.is_some() {
        let lock = layout.lock()?;
        recover(ctx, &layout).await?;
        Some(lock)
    } else {
        None
    };
    if !is_daemon_running(&ctx.home) {
        let spinner = crate::progress::spinner("starting the astrid daemon");
        let started = astrid_client::ensure_daemon(&ctx.home, Some(layout.current_daemon())).await;
        spinner.finish_and_clear();
        started?;
    }
    Ok(())
}

pub async fn release(_ctx: &Ctx, cmd: ReleaseCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ReleaseCommand::Publish {
            dir,
            key,
            version,
            from,
            platform,
            valid_for,
        } => {
            let version = match version {
                Some(v) => v,
                None => crate::args::VERSION.parse()?,
            };
            let from = match from {
                Some(f) => f,
                None => std::env::current_exe()?
                    .canonicalize()?
                    .parent()
                    .map(Path::to_path_buf)
                    .context("the directory of this executable")?,
            };
            let platform = platform.unwrap_or_else(this_platform);
            let valid_for = valid_for
                .as_deref()
                .map(super::caps::parse_duration_ms)
                .transpose()?
                .map(Duration::from_millis);
            let (v, p, d) = (version.clone(), platform.clone(), dir.clone());
            let archive = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let pair = KeyPair::load_file(&key)?;
                let bytes = astrid_registry::release_archive::pack(&from)?;
                Ok(publish_release(
                    &d,
                    &v,
                    &p,
                    &bytes,
                    &pair,
                    valid_for,
                    super::registry::now(),
                )?)
            })
            .await??;
            outln!(
                "published astrid {version} for {platform} as {} ({} bytes, {})",
                dir.join(&archive.file).display(),
                archive.size,
                crate::output::short_hash(&archive.hash.to_string())
            );
            outln!(
                "users update with: astrid update --channel URL|DIR (after `astrid trust add \
                 NAME KEY --releases`)"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
