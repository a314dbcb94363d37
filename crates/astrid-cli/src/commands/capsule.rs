//! `capsule build|install|update|remove|list|tree`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _};
use astrid_build::{BuildOptions, LoadedPackage};
use astrid_registry::Kind;
use astrid_types::wire::{ComponentUpload, ControlCommand, ControlResponse, PackageUpload};

use super::{unexpected, Ctx};
use crate::args::{CapsuleCommand, RegistryArg};
use crate::output;

pub async fn run(ctx: &Ctx, cmd: CapsuleCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CapsuleCommand::New {
            name,
            template,
            dir,
            sdk,
        } => {
            let exe = std::env::current_exe().ok();
            let sdk = super::forge::locate_sdk(
                sdk.as_deref(),
                std::env::var_os("ASTRID_SDK").map(PathBuf::from),
                exe.as_deref(),
            )?;
            let names = super::forge::Names::new(&name, &sdk)?;
            let dir = dir.unwrap_or_else(|| PathBuf::from(&names.name));
            let written = super::forge::write(&dir, &names, template)?;
            for f in &written {
                outln!("  wrote {}", f.display());
            }
            outln!(
                "next: astrid capsule build {d} && astrid capsule install {d} (then read {d}/AUTHORING.md)",
                d = dir.display()
            );
        }
        CapsuleCommand::Build { dir, out, verbose } => build(dir, out, verbose).await?,
        CapsuleCommand::Install { path, registry } => match super::registry::wanted(&path) {
            Some(wanted) => {
                let fetched =
                    super::registry::resolve_and_fetch(ctx, &registry, Kind::Capsule, &wanted?)
                        .await?;
                install_fetched(ctx, &fetched, false).await?
            }
            None => install(ctx, load(path).await?, false).await?,
        },
        CapsuleCommand::Update { path, registry } => {
            // A path on disk is a package; anything else is a name to look up.
            if path.exists() {
                install(ctx, load(path).await?, true).await?
            } else {
                update_from_registry(ctx, &path, &registry).await?
            }
        }
        CapsuleCommand::Remove { name } => {
            let client = ctx.connect(true).await?;
            match client.control(ControlCommand::Remove { name }).await? {
                ControlResponse::Removed { name } => outln!("removed {name}"),
                other => return Err(unexpected(other)),
            }
        }
        CapsuleCommand::List { verbose } => {
            let client = ctx.connect(true).await?;
            match client.control(ControlCommand::List).await? {
                ControlResponse::Capsules(c) => {
                    crate::out::show(ctx.json, &c, |c| output::capsule_list(c, verbose))?
                }
                other => return Err(unexpected(other)),
            }
        }
        CapsuleCommand::Tree => {
            let client = ctx.connect(true).await?;
            match client.control(ControlCommand::Tree).await? {
                ControlResponse::Tree(nodes) => {
                    crate::out::show(ctx.json, &nodes, |n| output::tree(n))?
                }
                other => return Err(unexpected(other)),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn build(dir: PathBuf, out: Option<PathBuf>, verbose: bool) -> anyhow::Result<()> {
    let opts = BuildOptions {
        out_dir: out,
        show_cargo_output: verbose,
        ..BuildOptions::default()
    };
    // With --verbose cargo's own output is the progress.
    let spinner = (!verbose)
        .then(|| crate::progress::spinner(format!("building {} (cargo, wasm32)", dir.display())));
    // Compiling takes a while and blocks; keep it off the async runtime's thread.
    let built = tokio::task::spawn_blocking(move || astrid_build::build_capsule(&dir, &opts)).await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let built = built??;
    outln!("built {} {}", built.name, built.version);
    outln!("  package:   {}", built.dir.display());
    outln!("  archive:   {}", built.archive.display());
    outln!(
        "  component: {} ({} bytes)",
        built.component_file,
        built.component_size
    );
    outln!("  hash:      {}", built.hash);
    Ok(())
}

/// Loads (and verifies) a package, a package directory or a built source tree.
async fn load(path: PathBuf) -> anyhow::Result<LoadedPackage> {
    // Build errors already name the file they are about.
    Ok(tokio::task::spawn_blocking(move || astrid_build::load_package(&path)).await??)
}

/// Installs a downloaded package, once it is shown to be what the signed index says it is:
/// the index names the capsule and version a package installs as, and a package claiming
/// another name or version is refused (the hash matched, so the publisher signed a lie).
async fn install_fetched(
    ctx: &Ctx,
    fetched: &super::registry::Fetched,
    update: bool,
) -> anyhow::Result<()> {
    let package = load(fetched.path.clone()).await?;
    let (e, m) = (&fetched.entry, &package.manifest.package);
    if e.capsule.as_deref() != Some(m.name.as_str()) || e.version != m.version {
        bail!(
            "{} {}: the index says it installs as `{}` {}, but the package is `{}` {}: refused",
            e.name,
            e.version,
            e.capsule.as_deref().unwrap_or("?"),
            e.version,
            m.name,
            m.version
        );
    }
    install(ctx, package, update).await
}

/// `capsule update NAME|@org/name[@REQ]`: the newest version in the registry, if it is newer
/// than the one installed.
async fn update_from_registry(ctx: &Ctx, arg: &Path, registry: &RegistryArg) -> anyhow::Result<()> {
    let wanted = super::registry::wanted(arg).transpose()?;
    let name = arg.to_string_lossy().into_owned();
    let reg = super::registry::open(ctx, registry).await?;
    let entry = match &wanted {
        Some(w) => reg.index.resolve(Kind::Capsule, w)?.clone(),
        None => reg
            .index
            .newest_for_capsule(&name)?
            .cloned()
            .ok_or_else(|| {
                anyhow!(
                    "`{name}` is not a package on disk, and no package in {} installs as                      `{name}`",
                    reg.location()
                )
            })?,
    };
    let capsule = entry.capsule.clone().unwrap_or_default();
    let client = ctx.connect(true).await?;
    let installed = match client.control(ControlCommand::List).await? {
        ControlResponse::Capsules(c) => c.into_iter().find(|c| c.name == capsule),
        other => return Err(unexpected(other)),
    };
    let Some(installed) = installed else {
        bail!(
            "`{capsule}` is not installed; `astrid capsule install {}` installs it",
            entry.name
        );
    };
    let current: semver::Version = installed
        .version
        .parse()
        .with_context(|| format!("the installed version of {capsule}"))?;
    if entry.version <= current {
        outln!(
            "{capsule} {current} is up to date (the newest in {} is {})",
            reg.location(),
            entry.version
        );
        return Ok(());
    }
    super::registry::announce(&reg, &entry);
    let fetched = super::registry::fetch(&reg, &entry).await?;
    install_fetched(ctx, &fetched, true).await
}

async fn install(ctx: &Ctx, package: LoadedPackage, update: bool) -> anyhow::Result<()> {
    let upload = upload(package);
    let client = ctx.connect(true).await?;
    let (command, verb) = if update {
        (ControlCommand::Update(upload), "updated")
    } else {
        (ControlCommand::Install(upload), "installed")
    };
    // The daemon verifies and compiles the component before it answers: seconds for a big one.
    let spinner = crate::progress::spinner(if update {
        "updating (the daemon verifies and compiles the component)"
    } else {
        "installing (the daemon verifies and compiles the component)"
    });
    let answer = client.control(command).await;
    spinner.finish_and_clear();
    match answer? {
        ControlResponse::Installed(info) => {
            outln!(
                "{verb} {} {} ({})",
                info.name,
                info.version,
                output::short_hash(&info.hash)
            );
            if let Some(err) = info.error {
                outln!("warning: {} is {}: {err}", info.name, info.state);
            }
        }
        other => return Err(unexpected(other)),
    }
    Ok(())
}

/// The daemon re-verifies everything, so the upload is just the raw manifest and bytes.
pub(super) fn upload(p: LoadedPackage) -> PackageUpload {
    PackageUpload {
        manifest_toml: p.manifest_text,
        components: vec![ComponentUpload {
            file: p.component_file,
            bytes: p.component,
        }],
    }
}
