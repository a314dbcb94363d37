//! The Astrid kernel: a dumb router with strong boundaries.
//!
//! It routes events between capsules and clients under the manifests' IPC ACL, stamps the true
//! source and principal on every message, runs the capsule lifecycle, and serves the Unix
//! socket. It knows nothing about models, prompts or tools.

mod agents;
mod answerers;
mod approval;
mod audit;
mod audit_read;
mod bus;
mod caps;
mod control;
mod devices;
mod dispatch;
mod elicit;
mod error;
mod fleet;
mod frontends;
mod fsutil;
mod grants;
mod identity;
mod kernel;
mod lifecycle;
mod mcp_launch;
mod operator_settings;
mod pins;
mod principal;
mod principals;
mod profile;
mod quota;
mod registry;
mod served;
mod server;
mod settings;
mod tracker;

use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

use astrid_sandbox::{Quota, Runtime, RuntimeConfig};
use astrid_types::wire::{CapsuleInfo, PackageUpload, RequestError};
use astrid_types::{AstridHome, PrincipalId};
use nix::fcntl::{Flock, FlockArg};
use tokio::net::UnixListener;

/// The resource limits of every subprocess sandbox (`config.toml` `[process]`).
pub use astrid_process::Limits as ProcessLimits;
pub use devices::{CredentialError, DeviceIdentity};
pub use dispatch::{CAPSULE_CHANGED_TOPIC, CAPSULE_ERROR_TOPIC};
pub use error::KernelError;
pub use fsutil::{atomic_write, private_dir};
pub use operator_settings::operator_settings;

#[derive(Debug, Clone)]
pub struct KernelConfig {
    pub home: AstridHome,
    pub quota: Quota,
    pub epoch_tick: Duration,
    /// Keep precompiled components in `$ASTRID_HOME/cache` (on by default).
    pub use_cache: bool,
    /// How long `shutdown` waits for in-flight invocations.
    pub drain_timeout: Duration,
    /// Limits of outbound HTTP.
    pub airlock: astrid_egress::AirlockConfig,
    /// Resource limits of every subprocess; a principal's quota may narrow them.
    pub process_limits: ProcessLimits,
}

impl KernelConfig {
    pub fn new(home: AstridHome) -> Self {
        KernelConfig {
            home,
            quota: Quota::default(),
            epoch_tick: Duration::from_millis(10),
            use_cache: true,
            drain_timeout: Duration::from_secs(30),
            airlock: astrid_egress::AirlockConfig::default(),
            process_limits: ProcessLimits::default(),
        }
    }
}

/// A booted kernel. Holds the daemon lock on `$ASTRID_HOME` for as long as it lives.
pub struct Kernel {
    inner: Arc<kernel::Inner>,
    config: KernelConfig,
    _lock: Flock<File>,
}

impl Kernel {
    /// Prepares `$ASTRID_HOME`, takes the single-daemon lock, and loads every installed
    /// capsule. Must run inside a tokio runtime.
    pub fn boot(config: KernelConfig) -> Result<Kernel, KernelError> {
        let home = &config.home;
        for dir in [
            home.root().to_path_buf(),
            home.run_dir(),
            home.keys_dir(),
            home.principals_dir(),
            home.state_dir(),
            home.log_dir(),
        ] {
            private_dir(&dir).map_err(|e| KernelError::io(&dir, e))?;
        }
        let lock_path = home.lock_file();
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| KernelError::io(&lock_path, e))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| KernelError::AlreadyRunning(home.root().display().to_string()))?;

        // Every path the kernel derives from here on is canonical, so a relative or
        // symlinked `ASTRID_HOME` protects (and grants) the directory it really is.
        let canonical = home
            .root()
            .canonicalize()
            .map_err(|e| KernelError::io(home.root(), e))?;
        let home = &AstridHome::new(canonical);
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: config.use_cache.then(|| home.cache_dir()),
            epoch_tick: config.epoch_tick,
        })
        .map_err(|e| KernelError::Load {
            name: "runtime".into(),
            source: e.into(),
        })?;
        // The runtime's signing key: read here, handed only to the audit logs, never to a
        // capsule or a client.
        let key =
            astrid_crypto::KeyPair::load_or_create(&home.keys_dir()).map_err(KernelError::Key)?;
        let secret_key =
            astrid_store::SecretKey::load_or_create(&home.keys_dir().join("secrets.key"))
                .map_err(KernelError::SecretKey)?;
        let airlock =
            astrid_egress::Airlock::new(config.airlock.clone()).map_err(|e| KernelError::Load {
                name: "airlock".into(),
                source: e.into(),
            })?;
        // A machine without a usable bubblewrap still runs everything but subprocesses;
        // `astrid:process` then says why.
        let process = astrid_process::SandboxPolicy::detect(home.root(), config.process_limits)
            .map_err(|e| e.to_string());
        match &process {
            Err(why) => tracing::warn!("subprocess sandbox unavailable: {why}"),
            // Said loudly at boot (and by `astrid doctor`): a limit that is not enforced here.
            Ok(p) if !p.enforcement().complete() => {
                tracing::warn!("subprocess limits incomplete: {}", p.enforcement())
            }
            Ok(p) => tracing::info!("subprocess limits: {}", p.enforcement()),
        }
        // The operator's credentials as the subprocess sandbox masks them: under the same home.
        let operator_home = match &process {
            Ok(policy) => Some(policy.home.clone()),
            Err(_) => astrid_protected::operator_home(),
        };
        let protected = astrid_protected::ProtectedSet::new(home.root(), operator_home.as_deref());
        let inner = kernel::Inner::new(
            home.clone(),
            Arc::new(key),
            runtime,
            config.quota,
            tokio::runtime::Handle::current(),
            kernel::Effects {
                airlock: Arc::new(airlock),
                process: Arc::new(process),
                secret_key: Arc::new(secret_key),
                protected,
            },
        );
        inner.ensure_principal(&PrincipalId::default_local())?;
        inner.boot()?;
        Ok(Kernel {
            inner,
            config,
            _lock: lock,
        })
    }

    /// Binds the socket, writes the token and pid files, and serves until a shutdown is
    /// requested; then stops accepting, lets in-flight calls finish, and cleans up.
    pub async fn serve(&self) -> Result<(), KernelError> {
        let home = &self.config.home;
        let socket = home.socket();
        // We hold the lock, so any socket file left here is stale.
        let _ = std::fs::remove_file(&socket);
        // The token before the socket: after a crash the old token file is still there, and a
        // client that finds the socket accepting reads the token at once. Written second, it
        // could read the dead daemon's token and be refused.
        let token = random_token();
        atomic_write(&home.token_file(), token.as_bytes(), 0o600)
            .map_err(|e| KernelError::io(&home.token_file(), e))?;
        let listener = UnixListener::bind(&socket).map_err(|e| KernelError::io(&socket, e))?;
        atomic_write(
            &home.pid_file(),
            std::process::id().to_string().as_bytes(),
            0o600,
        )
        .map_err(|e| KernelError::io(&home.pid_file(), e))?;
        tracing::info!(socket = %socket.display(), "astrid daemon ready");

        server::accept_loop(self.inner.clone(), listener, token).await;

        tracing::info!("shutting down: draining in-flight calls");
        let _ = std::fs::remove_file(&socket);
        let left = self.inner.calls.wait_idle(self.config.drain_timeout).await;
        if left > 0 {
            tracing::warn!("{left} calls still running after the drain timeout");
        }
        // Connections stop reading at shutdown and close once their replies are written.
        let open = self
            .inner
            .connections
            .wait_idle(Duration::from_secs(5))
            .await;
        if open > 0 {
            tracing::warn!("{open} connections did not finish writing within 5 s");
        }
        for inst in self.inner.capsules.snapshot() {
            inst.stopping
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let _ = std::fs::remove_file(home.pid_file());
        let _ = std::fs::remove_file(home.token_file());
        Ok(())
    }

    pub fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
    }

    pub fn home(&self) -> &AstridHome {
        &self.config.home
    }

    pub fn capsules(&self) -> Vec<CapsuleInfo> {
        self.inner.list()
    }

    /// Installs or updates a capsule in-process for `default` (the socket's Install/Update do
    /// the same for the connection's principal).
    pub async fn install(
        &self,
        upload: PackageUpload,
        replace: bool,
    ) -> Result<CapsuleInfo, KernelError> {
        let inner = self.inner.clone();
        let owner = PrincipalId::default_local();
        tokio::task::spawn_blocking(move || inner.install(upload, replace, &owner))
            .await
            .expect("install task panicked")
    }

    /// Checks a device token (from `astrid pair-device issue`): the one verification every
    /// uplink uses, so the HTTP gateway can accept the same string as a bearer token.
    pub fn verify_device_token(&self, token: &str) -> Result<DeviceIdentity, CredentialError> {
        self.inner.verify_device(token)
    }

    /// What a host call of the installed `capsule` acting for `principal` (who must hold it)
    /// runs with, built or cached as an invocation would. Benchmarks run the authorization
    /// step ([`astrid_sandbox::Gatekeeper`]) on it.
    pub fn capsule_context(
        &self,
        principal: &PrincipalId,
        capsule: &str,
    ) -> Result<std::sync::Arc<astrid_sandbox::CapsuleContext>, KernelError> {
        self.inner.context_of(principal, capsule)
    }

    /// Consents, in-process, to `capsule` reaching the local `target` (`host:port`) for
    /// `principal`, as `astrid egress allow` does (recorded the same way; used by benchmarks).
    pub fn egress_allow(
        &self,
        principal: &PrincipalId,
        capsule: &str,
        target: &str,
    ) -> Result<(), KernelError> {
        self.inner
            .egress_allow(principal, capsule, target, true)
            .map(|_| ())
    }

    /// An in-process request, as a client on the socket would make it (used by benchmarks).
    pub async fn request(
        &self,
        principal: &PrincipalId,
        topic: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, RequestError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let env = crate::bus::Envelope {
            topic: topic.to_string(),
            payload: std::sync::Arc::new(payload),
            source: "kernel".to_string(),
            principal: principal.clone(),
            depth: 0,
            chain: astrid_sandbox::Chain::from_principal("kernel"),
            reply: None,
        };
        let slot = self.inner.request(
            env,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            _ => {
                slot.cancel();
                Err(RequestError::Timeout(timeout.as_millis() as u32))
            }
        }
    }
}

fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
