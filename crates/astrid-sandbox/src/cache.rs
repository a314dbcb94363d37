//! Precompiled components on disk, keyed by artifact hash and engine settings, so a warm boot
//! deserializes instead of compiling.
#![expect(
    clippy::disallowed_methods,
    reason = "the compiled-component cache is Astrid's own state under $ASTRID_HOME/cache, not a capsule's effect"
)]

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use astrid_types::ArtifactHash;
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::error::SandboxError;

/// Feeds `std::hash::Hash` output into BLAKE3 so the engine fingerprint is stable across runs
/// (std's `DefaultHasher` is randomly keyed per process).
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let h = self.0.finalize();
        u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

pub(crate) fn engine_fingerprint(engine: &Engine) -> String {
    let mut h = Blake3Hasher(blake3::Hasher::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    // The wasmtime version is part of the compatibility hash; ours guards our own host ABI.
    env!("CARGO_PKG_VERSION").hash(&mut h);
    format!("{:016x}", h.finish())
}

pub(crate) struct ComponentCache {
    dir: PathBuf,
    fingerprint: String,
}

impl ComponentCache {
    pub(crate) fn new(dir: &Path, engine: &Engine) -> Result<Self, SandboxError> {
        std::fs::create_dir_all(dir).map_err(|e| SandboxError::Cache {
            path: dir.display().to_string(),
            source: e,
        })?;
        Ok(ComponentCache {
            dir: dir.to_path_buf(),
            fingerprint: engine_fingerprint(engine),
        })
    }

    fn path_for(&self, hash: &ArtifactHash) -> PathBuf {
        let hex = hash.to_string();
        let hex = hex.trim_start_matches("blake3:");
        self.dir.join(format!("{hex}-{}.cwasm", self.fingerprint))
    }

    /// A previously compiled component, or `None` when there is none usable. A cache entry that
    /// fails to load is deleted and treated as a miss: the cache is an optimisation, never a
    /// source of truth.
    pub(crate) fn load(&self, engine: &Engine, hash: &ArtifactHash) -> Option<Component> {
        let path = self.path_for(hash);
        if !path.exists() {
            return None;
        }
        // SAFETY: `deserialize_file` trusts its input to be a compiled artifact produced by this
        // engine configuration. The file lives in `$ASTRID_HOME/cache` (0700, written only by
        // this daemon through an atomic rename in `store`) and its name binds it to the verified
        // artifact hash and the engine fingerprint; wasmtime additionally checks the header's
        // engine compatibility before using it.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), "discarding unusable cache entry: {e}");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    pub(crate) fn store(&self, hash: &ArtifactHash, component: &Component) {
        let path = self.path_for(hash);
        let result = component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                let mut tmp =
                    tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| e.to_string())?;
                std::io::Write::write_all(&mut tmp, &bytes).map_err(|e| e.to_string())?;
                tmp.persist(&path).map_err(|e| e.to_string())?;
                Ok(())
            });
        if let Err(e) = result {
            // A cache write failure only costs a recompile next boot.
            tracing::warn!(path = %path.display(), "could not cache compiled component: {e}");
        }
    }
}
