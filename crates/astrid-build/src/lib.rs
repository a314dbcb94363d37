//! Builds Astrid capsules and loads capsule packages.
//!
//! A capsule source tree is a Rust `cdylib` crate with a `Capsule.toml` beside its
//! `Cargo.toml`. [`build_capsule`] compiles it for `wasm32-unknown-unknown`, turns the core
//! module into a component with wit-component, refuses any import outside `astrid:*`, hashes
//! it with BLAKE3 and writes a package: a directory and a single-file `.capsule` archive, both
//! holding the manifest (hash filled in) and the component. [`load_package`] reads either form
//! back and verifies the hash.

mod cargo;
mod componentize;
mod error;
mod package;

use std::path::{Path, PathBuf};

use astrid_types::{ArtifactHash, Manifest, ManifestError};

pub use cargo::WASM_TARGET;
pub use componentize::{check_interfaces, componentize, interfaces, Interfaces, GUEST_EXPORT};
pub use error::BuildError;
pub use package::{LoadedPackage, MANIFEST_FILE};

/// How to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Where packages go; `<src_dir>/dist` when unset.
    pub out_dir: Option<PathBuf>,
    /// Cargo's target directory; when unset, `CARGO_TARGET_DIR` or cargo's default applies.
    pub target_dir: Option<PathBuf>,
    /// Let cargo print its progress and diagnostics to stderr instead of capturing them
    /// (captured output is included in the error when the build fails).
    pub show_cargo_output: bool,
}

/// A package written by [`build_capsule`].
#[derive(Debug, Clone)]
pub struct BuiltPackage {
    /// `[package] name`.
    pub name: String,
    /// `[package] version`.
    pub version: String,
    /// `<out_dir>/<name>-<version>/`, holding `Capsule.toml` and the component.
    pub dir: PathBuf,
    /// `<out_dir>/<name>-<version>.capsule`.
    pub archive: PathBuf,
    /// The component's file name inside the package.
    pub component_file: String,
    /// The component's size in bytes.
    pub component_size: usize,
    /// The component's BLAKE3 hash, as written into the manifest.
    pub hash: ArtifactHash,
    /// What the component imports and exports.
    pub interfaces: Interfaces,
}

/// Builds the capsule crate in `src_dir` and writes its package. See the crate docs.
pub fn build_capsule(src_dir: &Path, opts: &BuildOptions) -> Result<BuiltPackage, BuildError> {
    // Cargo runs in the crate's directory, so relative paths would resolve against the wrong
    // base.
    let src_dir = &std::fs::canonicalize(src_dir).map_err(|e| BuildError::io(src_dir, e))?;
    let cargo_toml = src_dir.join("Cargo.toml");
    let manifest_path = src_dir.join(MANIFEST_FILE);
    for required in [&cargo_toml, &manifest_path] {
        if !required.is_file() {
            return Err(BuildError::NotACapsule {
                path: src_dir.to_path_buf(),
                reason: format!(
                    "a capsule source tree needs Cargo.toml and {MANIFEST_FILE}; {} is missing",
                    required.display()
                ),
            });
        }
    }
    // Read the manifest before compiling so a typo fails in milliseconds, not minutes.
    let mut manifest = Manifest::load(&manifest_path).map_err(manifest_error)?;

    let wasm_path = cargo::build_wasm(
        &cargo_toml,
        opts.target_dir.as_deref(),
        opts.show_cargo_output,
    )?;
    let module = std::fs::read(&wasm_path).map_err(|e| BuildError::io(&wasm_path, e))?;
    let component = componentize(&module, &wasm_path)?;
    let interfaces = check_interfaces(&component, &wasm_path)?;

    let hash = ArtifactHash::of(&component);
    // Validation guarantees exactly one [[component]].
    let component_file = manifest.components[0].file.clone();
    manifest.components[0].hash = Some(hash);
    let text = manifest.to_toml_string();

    let name = manifest.package.name.to_string();
    let version = manifest.package.version.to_string();
    let out_dir = opts.out_dir.clone().unwrap_or_else(|| src_dir.join("dist"));
    std::fs::create_dir_all(&out_dir).map_err(|e| BuildError::io(&out_dir, e))?;
    let (dir, archive) = package::write_package(
        &out_dir,
        &format!("{name}-{version}"),
        &text,
        &component_file,
        &component,
    )?;
    Ok(BuiltPackage {
        name,
        version,
        dir,
        archive,
        component_file,
        component_size: component.len(),
        hash,
        interfaces,
    })
}

/// Loads a package from a `.capsule` archive or a package directory, verifying the component
/// against the manifest's hash. A source tree (a directory with `Cargo.toml`) is built first,
/// into a temporary directory of its own: two installs of one tree at once (two terminals, two
/// tests) must not read each other's half-written `dist/`.
pub fn load_package(path: &Path) -> Result<LoadedPackage, BuildError> {
    let meta = std::fs::metadata(path).map_err(|e| BuildError::io(path, e))?;
    if meta.is_file() {
        return package::load_archive(path);
    }
    if path.join("Cargo.toml").is_file() {
        let out = tempfile::Builder::new()
            .prefix("astrid-build-")
            .tempdir()
            .map_err(|e| BuildError::io(std::env::temp_dir(), e))?;
        let opts = BuildOptions {
            out_dir: Some(out.path().to_path_buf()),
            ..BuildOptions::default()
        };
        let built = build_capsule(path, &opts)?;
        return package::load_dir(&built.dir);
    }
    if path.join(MANIFEST_FILE).is_file() {
        return package::load_dir(path);
    }
    Err(BuildError::NotACapsule {
        path: path.to_path_buf(),
        reason: format!(
            "expected a .capsule file, a package directory with {MANIFEST_FILE}, or a capsule \
             source tree with Cargo.toml"
        ),
    })
}

pub(crate) fn manifest_error(e: ManifestError) -> BuildError {
    let reason = if e.key.is_empty() {
        e.reason
    } else {
        format!("`{}`: {}", e.key, e.reason)
    };
    BuildError::Manifest {
        path: e.file,
        reason,
    }
}
