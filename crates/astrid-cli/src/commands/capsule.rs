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
        CapsuleCommand::Build { dir, out, verbose } => build(dir, out, verbose).await?,
        CapsuleCommand::Install { path } => install(ctx, path, false).await?,
        CapsuleCommand::Update { path } => install(ctx, path, true).await?,
        CapsuleCommand::Remove { name } => {
            let client = ctx.connect(true).await?;
            match client.control(ControlCommand::Remove { name }).await? {
                ControlResponse::Removed { name } => println!("removed {name}"),
                other => return Err(unexpected(other)),
            }
        }
        CapsuleCommand::List { verbose } => {
            let client = ctx.connect(true).await?;
            match client.control(ControlCommand::List).await? {
                ControlResponse::Capsules(c) => print!("{}", output::capsule_list(&c, verbose)),
                other => return Err(unexpected(other)),
            }
        }
        CapsuleCommand::Tree => {
            let client = ctx.connect(true).await?;
            match client.control(ControlCommand::Tree).await? {
                ControlResponse::Tree(nodes) => print!("{}", output::tree(&nodes)),
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
    // Compiling takes a while and blocks; keep it off the async runtime's thread.
    let built =
        tokio::task::spawn_blocking(move || astrid_build::build_capsule(&dir, &opts)).await??;
    println!("built {} {}", built.name, built.version);
    println!("  package:   {}", built.dir.display());
    println!("  archive:   {}", built.archive.display());
    println!(
        "  component: {} ({} bytes)",
        built.component_file, built.component_size
    );
    println!("  hash:      {}", built.hash);
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
    match client.control(command).await? {
        ControlResponse::Installed(info) => {
            println!(
                "{verb} {} {} ({})",
                info.name,
                info.version,
                output::short_hash(&info.hash)
            );
            if let Some(err) = info.error {
                println!("warning: {} is {}: {err}", info.name, info.state);
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
