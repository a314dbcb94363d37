use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use astrid_types::ArtifactHash;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, OptLevel};

use crate::bindings::{Served, ServedPre};
use crate::cache::ComponentCache;
use crate::error::SandboxError;
use crate::host::HostState;

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where precompiled components are kept; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Granularity of deadlines. Smaller is more precise and costs a wakeup per tick.
    pub epoch_tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            epoch_tick: Duration::from_millis(10),
        }
    }
}

/// A component ready to instantiate: compiled (or loaded from cache), linked, type-checked.
#[derive(Clone)]
pub struct LoadedComponent {
    pub(crate) pre: ServedPre<HostState>,
    pub hash: ArtifactHash,
    /// True when this load came from the precompiled cache rather than a compile.
    pub from_cache: bool,
    /// The host interfaces the component imports, versioned (`astrid:http/http@1.0.0`), in
    /// the component's order: which version of each package it was built against.
    pub host_imports: Vec<String>,
}

/// The one shared engine, linker and cache of the daemon.
pub struct Runtime {
    pub(crate) engine: Engine,
    linker: Linker<HostState>,
    cache: Option<ComponentCache>,
    pub(crate) epoch_tick: Duration,
    ticker_stop: Arc<AtomicBool>,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Self, SandboxError> {
        let mut c = Config::new();
        c.epoch_interruption(true);
        // Component-model async is not used; turning it off halves the cost of each call.
        c.concurrency_support(false);
        c.parallel_compilation(true);
        c.cranelift_opt_level(OptLevel::Speed);
        c.max_wasm_stack(1024 * 1024);
        let engine = Engine::new(&c).map_err(SandboxError::Engine)?;

        let mut linker = Linker::<HostState>::new(&engine);
        Served::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(SandboxError::Engine)?;

        let cache = match &config.cache_dir {
            Some(dir) => Some(ComponentCache::new(dir, &engine)?),
            None => None,
        };

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), config.epoch_tick, ticker_stop.clone());

        Ok(Runtime {
            engine,
            linker,
            cache,
            epoch_tick: config.epoch_tick,
            ticker_stop,
        })
    }

    /// Compiles `wasm` (or loads it precompiled) and links it. The caller has verified that
    /// `hash` is the BLAKE3 of `wasm`; the cache is keyed by it.
    pub fn load(&self, hash: &ArtifactHash, wasm: &[u8]) -> Result<LoadedComponent, SandboxError> {
        let invalid = |e: wasmtime::Error| SandboxError::InvalidComponent {
            hash: hash.to_string(),
            reason: format!("{e:#}"),
        };
        let cached = self.cache.as_ref().and_then(|c| c.load(&self.engine, hash));
        let from_cache = cached.is_some();
        let component = match cached {
            Some(c) => c,
            None => {
                let c = Component::new(&self.engine, wasm).map_err(invalid)?;
                if let Some(cache) = &self.cache {
                    cache.store(hash, &c);
                }
                c
            }
        };
        let host_imports = host_imports(&component, &self.engine, hash)?;
        let pre = self.linker.instantiate_pre(&component).map_err(invalid)?;
        let pre = ServedPre::new(pre).map_err(invalid)?;
        Ok(LoadedComponent {
            pre,
            hash: *hash,
            from_cache,
            host_imports,
        })
    }
}

/// The component's imports, all of which must be our own packages: one importing anything
/// else (a `wasi:*` interface, say) would fail to link anyway, and saying so by name is
/// kinder than a linker error. A version the host does not serve fails at link time, naming
/// the interface.
fn host_imports(
    component: &Component,
    engine: &Engine,
    hash: &ArtifactHash,
) -> Result<Vec<String>, SandboxError> {
    let ty = component.component_type();
    let mut names = Vec::new();
    for (name, _) in ty.imports(engine) {
        if !name.starts_with("astrid:") {
            return Err(SandboxError::InvalidComponent {
                hash: hash.to_string(),
                reason: format!(
                    "imports `{name}`; capsules may import only astrid:* host packages (no WASI)"
                ),
            });
        }
        names.push(name.to_string());
    }
    Ok(names)
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

fn spawn_epoch_ticker(engine: Engine, tick: Duration, stop: Arc<AtomicBool>) {
    thread::Builder::new()
        .name("astrid-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .expect("spawning the epoch ticker thread");
}
