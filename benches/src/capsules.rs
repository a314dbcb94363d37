//! Capsules built from `capsules/` in this repository, held as install-ready uploads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use astrid_build::{build_capsule, load_package, BuildOptions};
use astrid_types::wire::{ComponentUpload, PackageUpload};

use crate::BenchError;

/// Source tree of a first-party capsule.
pub fn capsule_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../capsules")
        .join(name)
}

/// Freshly built packages, by capsule name. The packages live in a temporary directory that
/// goes away with this value.
pub struct Capsules {
    _out: tempfile::TempDir,
    uploads: BTreeMap<String, PackageUpload>,
}

impl Capsules {
    /// Builds each named capsule (cargo for wasm32, then componentize) into a temporary
    /// directory. Cargo's own target directory (`CARGO_TARGET_DIR` when set) keeps rebuilds
    /// incremental.
    pub fn build(names: &[&str]) -> Result<Capsules, BenchError> {
        let out = tempfile::tempdir().map_err(|e| BenchError::io(std::env::temp_dir(), e))?;
        let opts = BuildOptions {
            out_dir: Some(out.path().to_path_buf()),
            ..BuildOptions::default()
        };
        let mut uploads = BTreeMap::new();
        for &name in names {
            eprintln!("astrid-benches: building capsule `{name}`");
            let build_err = |source| BenchError::Build {
                name: name.to_string(),
                source,
            };
            let built = build_capsule(&capsule_src(name), &opts).map_err(build_err)?;
            // Reading the package back verifies the hash, as an install would.
            let pkg = load_package(&built.dir).map_err(build_err)?;
            let upload = PackageUpload {
                manifest_toml: pkg.manifest_text,
                components: vec![ComponentUpload {
                    file: pkg.component_file,
                    bytes: pkg.component,
                }],
            };
            uploads.insert(name.to_string(), upload);
        }
        Ok(Capsules { _out: out, uploads })
    }

    /// The upload for a capsule passed to [`Capsules::build`].
    pub fn upload(&self, name: &str) -> PackageUpload {
        self.uploads
            .get(name)
            .unwrap_or_else(|| panic!("capsule `{name}` was not built"))
            .clone()
    }

    pub fn names(&self) -> Vec<String> {
        self.uploads.keys().cloned().collect()
    }
}
