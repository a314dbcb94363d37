//! `capsule build|install|update|remove|list|tree`.

use std::path::PathBuf;
use std::process::ExitCode;

use astrid_build::{BuildOptions, LoadedPackage};
use astrid_types::wire::{ComponentUpload, ControlCommand, ControlResponse, PackageUpload};

use super::{unexpected, Ctx};
use crate::args::CapsuleCommand;
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
        CapsuleCommand::Install { path } => install(ctx, path, false).await?,
        CapsuleCommand::Update { path } => install(ctx, path, true).await?,
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

async fn install(ctx: &Ctx, path: PathBuf, update: bool) -> anyhow::Result<()> {
    // Build errors already name the file they are about.
    let package = tokio::task::spawn_blocking(move || astrid_build::load_package(&path)).await??;
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
