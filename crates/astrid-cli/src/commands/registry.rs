//! Install by name: `@org/name` resolved in a signed registry (`astrid_registry`), and
//! `astrid registry publish|search`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use astrid_crypto::KeyPair;
use astrid_registry::{Entry, Kind, Location, PackageName, Registry, Wanted, SEEN_FILE};
use astrid_shuttle::{Bundle, TrustStore, TRUST_FILE};

use super::Ctx;
use crate::args::{RegistryArg, RegistryCommand};

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `Some` when `arg` names a registry package (`@org/name[@REQ]`) rather than a path.
pub fn wanted(arg: &Path) -> Option<anyhow::Result<Wanted>> {
    let s = arg.to_str()?;
    s.starts_with('@')
        .then(|| s.parse::<Wanted>().map_err(anyhow::Error::from))
}

/// The registry named by `--registry` / `$ASTRID_REGISTRY`, its index fetched and checked.
pub async fn open(ctx: &Ctx, arg: &RegistryArg) -> anyhow::Result<Registry> {
    let Some(location) = arg.location.as_deref().filter(|l| !l.is_empty()) else {
        bail!(
            "no registry: pass --registry DIR|URL or set ASTRID_REGISTRY to the directory or \
             https:// URL of a signed index.toml"
        );
    };
    let mut location: Location = location.parse()?;
    if let Location::Dir(d) = &location {
        // The record of what was seen names the registry however the operator spells it.
        location = Location::Dir(std::fs::canonicalize(d).unwrap_or_else(|_| d.clone()));
    }
    let trust = TrustStore::load(&ctx.home.root().join(TRUST_FILE))?;
    let seen = ctx.home.root().join(SEEN_FILE);
    Ok(Registry::open(location, &trust, &seen, now()).await?)
}

/// One artifact downloaded, checked against the signed index, and written to a private
/// temporary directory (removed when this is dropped).
pub struct Fetched {
    pub path: PathBuf,
    pub entry: Entry,
    _dir: tempfile::TempDir,
}

pub async fn fetch(registry: &Registry, entry: &Entry) -> anyhow::Result<Fetched> {
    let bytes = registry.download(entry).await?;
    let dir = tempfile::Builder::new()
        .prefix("astrid-download-")
        .tempdir()
        .context("creating a download directory")?;
    let kind = if entry.capsule.is_some() {
        Kind::Capsule
    } else {
        Kind::Distro
    };
    let path = dir.path().join(format!(
        "{}-{}.{}",
        entry.name.name(),
        entry.version,
        kind.extension()
    ));
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(Fetched {
        path,
        entry: entry.clone(),
        _dir: dir,
    })
}

/// Resolves `wanted` as `kind` and downloads it, telling the operator what was chosen.
pub async fn resolve_and_fetch(
    ctx: &Ctx,
    arg: &RegistryArg,
    kind: Kind,
    wanted: &Wanted,
) -> anyhow::Result<Fetched> {
    let registry = open(ctx, arg).await?;
    let entry = registry.index.resolve(kind, wanted)?.clone();
    announce(&registry, &entry);
    fetch(&registry, &entry).await
}

/// A distro bundle from the registry, its version what the index says (the bundle's own
/// signature and publisher are checked when it is opened, as for `--offline`).
pub async fn fetch_distro(
    ctx: &Ctx,
    arg: &RegistryArg,
    wanted: &Wanted,
) -> anyhow::Result<Fetched> {
    let fetched = resolve_and_fetch(ctx, arg, Kind::Distro, wanted).await?;
    let path = fetched.path.clone();
    let bundle = tokio::task::spawn_blocking(move || Bundle::read(&path)).await??;
    if bundle.lock.version != fetched.entry.version {
        bail!(
            "{} {}: the index lists version {}, but the bundle is {} {}: refused",
            fetched.entry.name,
            fetched.entry.version,
            fetched.entry.version,
            bundle.lock.name,
            bundle.lock.version
        );
    }
    Ok(fetched)
}

pub fn announce(registry: &Registry, entry: &Entry) {
    outln!(
        "{} {} from {} (index signed by {}, a trusted publisher; {})",
        entry.name,
        entry.version,
        registry.location(),
        registry.signer.name,
        crate::output::short_hash(&entry.hash.to_string())
    );
}

pub async fn run(ctx: &Ctx, cmd: RegistryCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RegistryCommand::Publish {
            dir,
            artifact,
            name,
            key,
            valid_for,
        } => {
            let name: PackageName = name.parse()?;
            let valid_for = valid_for
                .as_deref()
                .map(super::caps::parse_duration_ms)
                .transpose()?
                .map(Duration::from_millis);
            let published = tokio::task::spawn_blocking(move || {
                publish(&dir, &artifact, &name, &key, valid_for).map(|p| (p, dir))
            })
            .await??;
            let (p, dir) = published;
            let verb = if p.unchanged {
                "already published"
            } else {
                "published"
            };
            outln!(
                "{verb} {} {} as {} ({})",
                p.entry.name,
                p.entry.version,
                dir.join(&p.entry.file).display(),
                crate::output::short_hash(&p.entry.hash.to_string())
            );
            outln!(
                "index serial {} signed; users install it with: astrid capsule install {} \
                 --registry URL|DIR",
                p.serial,
                p.entry.name
            );
        }
        RegistryCommand::Search { query, registry } => {
            let registry = open(ctx, &registry).await?;
            let q = query.unwrap_or_default();
            let mut rows = Vec::new();
            for kind in [Kind::Capsule, Kind::Distro] {
                for e in registry.index.entries(kind) {
                    if e.name.to_string().contains(&q) {
                        rows.push(SearchRow {
                            kind: kind.noun(),
                            name: e.name.to_string(),
                            version: e.version.to_string(),
                            installs_as: e.capsule.clone(),
                            hash: e.hash.to_string(),
                        });
                    }
                }
            }
            crate::out::show(ctx.json, &rows, |rows| {
                let mut s = format!(
                    "{} (signed by {}, serial {})\n",
                    registry.location(),
                    registry.signer.name,
                    registry.index.serial
                );
                for r in rows {
                    s.push_str(&format!("  {:<8} {:<32} {}\n", r.kind, r.name, r.version));
                }
                s
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct SearchRow {
    kind: &'static str,
    name: String,
    version: String,
    installs_as: Option<String>,
    hash: String,
}

/// Blocking: reads and checks the artifact (a package is loaded and verified, a bundle's
/// signature checked), then publishes it.
fn publish(
    dir: &Path,
    artifact: &Path,
    name: &PackageName,
    key: &Path,
    valid_for: Option<Duration>,
) -> anyhow::Result<astrid_registry::Published> {
    let pair = KeyPair::load_file(key)?;
    let is_bundle = artifact.extension().is_some_and(|e| e == "shuttle");
    let (kind, version, capsule) = if is_bundle {
        let bundle = Bundle::read(artifact)?;
        bundle.verify()?;
        (Kind::Distro, bundle.lock.version.clone(), None)
    } else {
        let package = astrid_build::load_package(artifact)?;
        if artifact.is_dir() {
            bail!(
                "{} is a directory; publish the .capsule archive (`astrid capsule build` writes \
                 it beside the directory)",
                artifact.display()
            );
        }
        let m = package.manifest.package;
        (Kind::Capsule, m.version, Some(m.name.to_string()))
    };
    let bytes =
        std::fs::read(artifact).with_context(|| format!("reading {}", artifact.display()))?;
    Ok(astrid_registry::publish(
        dir,
        kind,
        name,
        &version,
        capsule.as_deref(),
        &bytes,
        &pair,
        valid_for,
        now(),
    )?)
}
