//! `astrid-build [SRC_DIR] [--out DIR]`: builds a capsule and prints the package path.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use astrid_build::{build_capsule, BuildOptions};

const USAGE: &str = "usage: astrid-build [SRC_DIR] [--out DIR]\n\
    Builds the capsule crate in SRC_DIR (default: .) for wasm32-unknown-unknown, turns it into\n\
    a component and writes DIR/<name>-<version>/ and DIR/<name>-<version>.capsule\n\
    (default DIR: SRC_DIR/dist). Prints the .capsule path.";

fn main() -> Result<()> {
    let mut src: Option<PathBuf> = None;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return Ok(());
            }
            Some("-o" | "--out") => {
                let dir = args.next().context("--out needs a directory")?;
                out = Some(PathBuf::from(dir));
            }
            Some(s) if s.starts_with("--out=") => out = Some(PathBuf::from(&s["--out=".len()..])),
            Some(s) if s.starts_with('-') => bail!("unknown option {s}\n{USAGE}"),
            _ if src.is_none() => src = Some(PathBuf::from(arg)),
            _ => bail!("more than one source directory given\n{USAGE}"),
        }
    }
    let src = src.unwrap_or_else(|| PathBuf::from("."));
    let opts = BuildOptions {
        out_dir: out,
        target_dir: None,
        show_cargo_output: true,
    };
    let built = build_capsule(&src, &opts)
        .with_context(|| format!("building the capsule in {}", src.display()))?;
    eprintln!(
        "built {} {}: {} ({} bytes, {})",
        built.name, built.version, built.component_file, built.component_size, built.hash
    );
    println!("{}", built.archive.display());
    Ok(())
}
