//! The kernel's shared state and the handful of operations everything else builds on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use astrid_crypto::{now_ms, Gate, KeyPair, RevocationList, DEFAULT_MAX_SKEW};
use astrid_fsgate::FsRoots;
use astrid_sandbox::{CapsuleContext, Origin, Quota, Runtime};
use astrid_store::PrincipalStore;
use astrid_types::{AstridHome, PrincipalId};
use parking_lot::Mutex;

use crate::bus::Subscriptions;
use crate::error::KernelError;
use crate::fsutil::private_dir;
use crate::principal::{Principal, Principals};
use crate::registry::{Capsules, Installed};
use crate::tracker::Tracker;

/// A capsule's context for one principal, plus the once-only install/upgrade hook run.
pub(crate) struct ContextEntry {
    pub installed: Arc<Installed>,
    pub ctx: Arc<CapsuleContext>,
    pub hooks: OnceLock<()>,
}

pub(crate) struct Inner {
    pub home: AstridHome,
    pub runtime: Runtime,
    pub quota: Quota,
    /// The installed capsules and the lock their changes take.
    pub capsules: Capsules,
    /// The distro lock: which artifact each pinned capsule name must be.
    pub pins: crate::pins::Pins,
    pub subs: Subscriptions,
    /// Every tenant's state: store, chain, tokens, profile, quota meters, contexts.
    pub principals: Principals,
    pub approvals: crate::approval::Broker,
    /// Connections that answer capsules' questions, and the questions waiting.
    pub elicitations: crate::elicit::Elicitations,
    /// Every open connection's principal, client name and credential (`astrid:uplink`).
    pub frontends: crate::frontends::Frontends,
    /// Tools that client connections (the MCP bridge) serve, and their calls in flight.
    pub served: crate::served::ServedTools,
    next_id: AtomicU64,
    /// The runtime signing key; only the audit logs see it.
    pub key: Arc<KeyPair>,
    /// Global: a revocation reaches every principal's checks, cached or not.
    pub revocations: RevocationList,
    pub gate: Arc<Gate>,
    pub started: Instant,
    pub clients: AtomicU64,
    /// Capsule invocations running now.
    pub calls: Tracker,
    /// Socket connections still open (their writers may hold unsent replies).
    pub connections: Tracker,
    pub rt: tokio::runtime::Handle,
    pub shutdown: tokio::sync::watch::Sender<bool>,
    pub weak: Weak<Inner>,
    /// The one place outbound connections are opened.
    pub airlock: Arc<astrid_egress::Airlock>,
    /// The subprocess sandbox, or why this machine has none.
    pub process: Arc<Result<astrid_process::SandboxPolicy, String>>,
    /// Encrypts the principals' secrets at rest; never leaves the daemon.
    pub secret_key: Arc<astrid_store::SecretKey>,
    /// Connections opened with a device token, so revoking the device closes them.
    pub live_devices: crate::devices::LiveDevices,
    /// `$ASTRID_HOME` and the operator's credentials: refused to every capsule's
    /// filesystem calls (each principal's own home excepted from the first).
    pub protected: astrid_protected::ProtectedSet,
    /// Serializes profile changes.
    pub profile_lock: Mutex<()>,
}

/// The daemon-wide pieces behind `astrid:http`, `astrid:process` and the secret store.
pub(crate) struct Effects {
    pub airlock: Arc<astrid_egress::Airlock>,
    pub process: Arc<Result<astrid_process::SandboxPolicy, String>>,
    pub secret_key: Arc<astrid_store::SecretKey>,
    pub protected: astrid_protected::ProtectedSet,
}

impl Inner {
    pub fn new(
        home: AstridHome,
        key: Arc<KeyPair>,
        runtime: Runtime,
        quota: Quota,
        rt: tokio::runtime::Handle,
        effects: Effects,
    ) -> Arc<Inner> {
        let revocations =
            RevocationList::with_store(Arc::new(crate::caps::RevokedTables { home: home.clone() }));
        let gate = Arc::new(Gate::new(
            [key.public_key().clone()],
            revocations.clone(),
            now_ms,
            DEFAULT_MAX_SKEW,
        ));
        let pins = crate::pins::Pins::load(&home);
        Arc::new_cyclic(|weak| Inner {
            home,
            runtime,
            quota,
            capsules: Capsules::default(),
            pins,
            subs: Subscriptions::default(),
            principals: Principals::default(),
            approvals: crate::approval::Broker::default(),
            frontends: crate::frontends::Frontends::default(),
            elicitations: crate::elicit::Elicitations::default(),
            served: crate::served::ServedTools::default(),
            next_id: AtomicU64::new(1),
            key,
            revocations,
            gate,
            started: Instant::now(),
            clients: AtomicU64::new(0),
            calls: Tracker::default(),
            connections: Tracker::default(),
            rt,
            shutdown: tokio::sync::watch::channel(false).0,
            weak: weak.clone(),
            airlock: effects.airlock,
            process: effects.process,
            secret_key: effects.secret_key,
            live_devices: Default::default(),
            protected: effects.protected,
            profile_lock: Mutex::new(()),
        })
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Creates the principal's directories if needed. Principals are created explicitly;
    /// everything else refuses an unknown one.
    pub fn ensure_principal(&self, p: &PrincipalId) -> Result<(), KernelError> {
        let dir = self.home.principal_dir(p);
        private_dir(&dir).map_err(|e| KernelError::io(&dir, e))?;
        let home = self.home.principal_home(p);
        private_dir(&home).map_err(|e| KernelError::io(&home, e))?;
        // Loading the token set mints the default grants for a new principal.
        self.tokens_for(p).map(|_| ())
    }

    pub fn principal_exists(&self, p: &PrincipalId) -> bool {
        self.home.principal_dir(p).is_dir()
    }

    /// The in-memory state of an existing principal; an unknown name gets an error and
    /// leaves nothing behind.
    pub(crate) fn tenant(&self, p: &PrincipalId) -> Result<Arc<Principal>, KernelError> {
        self.principals
            .get_existing(p, || self.principal_exists(p))
            .ok_or_else(|| KernelError::UnknownPrincipal(p.to_string()))
    }

    pub fn store_for(&self, p: &PrincipalId) -> Result<Arc<PrincipalStore>, KernelError> {
        let pr = self.tenant(p)?;
        let mut slot = pr.store.lock();
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        // Deleted since the entry was made: its files are gone, so do not make new ones.
        if !self.principal_exists(p) {
            return Err(KernelError::UnknownPrincipal(p.to_string()));
        }
        let path = self.home.principal_store(p);
        let store = PrincipalStore::open(&path).map_err(|e| KernelError::StoreOpen {
            principal: p.to_string(),
            path: path.clone(),
            source: e,
        })?;
        let store = Arc::new(store);
        *slot = Some(store.clone());
        Ok(store)
    }

    /// The context of the installed `capsule` for `p`, which must hold it: what a host call
    /// of that capsule for that principal runs with.
    pub fn context_of(
        &self,
        p: &PrincipalId,
        capsule: &str,
    ) -> Result<Arc<CapsuleContext>, KernelError> {
        let installed = self
            .installed(capsule)
            .ok_or_else(|| KernelError::NotInstalled(capsule.to_string()))?;
        if !self.principal_exists(p) {
            return Err(KernelError::UnknownPrincipal(p.to_string()));
        }
        if !self.holds(p, capsule) {
            return Err(KernelError::Capability(format!(
                "principal `{p}` is not granted capsule `{capsule}`"
            )));
        }
        Ok(self.context(p, &installed)?.ctx.clone())
    }

    /// The context a capsule version runs in for one principal, created on first use.
    pub fn context(
        &self,
        p: &PrincipalId,
        installed: &Arc<Installed>,
    ) -> Result<Arc<ContextEntry>, KernelError> {
        let pr = self.tenant(p)?;
        if let Some(e) = pr.contexts.lock().get(&installed.name) {
            if Arc::ptr_eq(&e.installed, installed) {
                return Ok(e.clone());
            }
        }
        let entry = Arc::new(self.build_context(p, installed)?);
        let mut map = pr.contexts.lock();
        // A call dispatched just before an update or removal can start after it. Its version
        // is no longer installed: caching its context would evict the current version's, and
        // running its hooks would "upgrade" the successor's data back to the old version.
        // (Lock order is contexts, then capsules; nothing takes them the other way round.)
        let current = self.capsules.is_current(installed);
        if !current {
            let _ = entry.hooks.set(());
            return Ok(entry);
        }
        let e = map
            .entry(installed.name.clone())
            .or_insert_with(|| entry.clone());
        if !Arc::ptr_eq(&e.installed, installed) {
            *e = entry;
        }
        Ok(e.clone())
    }

    fn build_context(
        &self,
        p: &PrincipalId,
        installed: &Arc<Installed>,
    ) -> Result<ContextEntry, KernelError> {
        let store = self.store_for(p)?;
        let audit = self.audit_for(p)?;
        let m = &installed.manifest;
        // Bound to this capsule: a token an allow-always answer minted for another capsule
        // grants nothing here.
        let tokens = self.token_gate(p, &m.package.name)?;
        let caps = &m.capabilities;
        let fs = if caps.fs_read.is_empty() && caps.fs_write.is_empty() {
            None
        } else {
            let home = self.home.principal_home(p);
            // `$user_home` is the operator's home for the operator's own principal only; for
            // every other tenant it is that principal's home, so no agent identity can be
            // granted (or talk a human into) the operator's personal files by approval.
            let user_home = if *p == PrincipalId::default_local() {
                self.protected.user_home()
            } else {
                Some(home.as_path())
            };
            let roots = FsRoots::with_symbols(&home, user_home, &caps.fs_read, &caps.fs_write)
                .map_err(|e| KernelError::Load {
                    name: installed.name.clone(),
                    source: e.into(),
                })?
                .with_protected(self.protected.clone().exempting(&home));
            // Validated above; roots inside the principal's own home are the principal's to have; create them
            // so a fresh principal's capsules find them. Absolute roots are the operator's.
            for root in caps.fs_read.iter().chain(&caps.fs_write) {
                if let Some(rel) = root.strip_prefix("~/") {
                    let dir = home.join(rel);
                    private_dir(&dir).map_err(|e| KernelError::io(&dir, e))?;
                }
            }
            Some(Arc::new(roots))
        };
        let config = self.effective_config(p, m)?;
        let facts = self
            .profile(p)
            .facts
            .iter()
            .filter(|(name, _)| caps.declares_fact(name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let limits = self.resolved_quota(p);
        let storage: Arc<dyn astrid_sandbox::StorageMeter> = self.storage_meter(p)?;
        let net = self.net_access(p, m)?;
        let ctx = CapsuleContext {
            origin: Origin {
                principal: p.clone(),
                capsule: m.package.name.clone(),
            },
            manifest: m.clone(),
            fs,
            store,
            config,
            facts,
            bus: Arc::new(crate::dispatch::BusHandle(self.weak.clone())),
            auditor: Arc::new(crate::audit::LogAuditor(audit)),
            tokens: Arc::new(tokens),
            approver: Arc::new(self.for_principal(p)),
            frontends: Arc::new(self.for_principal(p)),
            elicitor: Arc::new(self.for_principal(p)),
            net,
            process: self.process_policy_for(p),
            // The manifest may ask for a longer deadline than the daemon's default; the
            // principal's quota, when set, caps it.
            quota: Quota {
                timeout: match (m.limits.timeout_ms, self.profile(p).quota.time_ms) {
                    (Some(own), Some(q)) => Duration::from_millis(own.min(q)),
                    (Some(own), None) => Duration::from_millis(own),
                    (None, _) => limits.time,
                },
                memory_bytes: limits.memory_bytes,
            },
            storage,
            stopping: self.stop_flag(p, installed),
        };
        Ok(ContextEntry {
            installed: installed.clone(),
            ctx: Arc::new(ctx),
            hooks: OnceLock::new(),
        })
    }

    fn for_principal(&self, p: &PrincipalId) -> crate::answerers::ForPrincipal {
        crate::answerers::ForPrincipal {
            inner: self.weak.clone(),
            principal: p.clone(),
        }
    }

    pub fn forget_contexts(&self, capsule: &str) {
        for pr in self.principals.all() {
            pr.contexts.lock().remove(capsule);
        }
    }

    /// Drops every cached context of `p` (its quota changed): the next invocation rebuilds.
    pub fn forget_principal_contexts(&self, p: &PrincipalId) {
        if let Some(pr) = self.principals.loaded(p) {
            pr.contexts.lock().clear();
        }
    }

    /// The version's stop flag for `p`, shared by every context built for it.
    fn stop_flag(&self, p: &PrincipalId, installed: &Arc<Installed>) -> Arc<AtomicBool> {
        // A principal deleted meanwhile runs nothing more: its flag is set from the start.
        let Ok(pr) = self.tenant(p) else {
            return Arc::new(AtomicBool::new(true));
        };
        let mut stops = pr.stops.lock();
        if let Some((i, f)) = stops.get(&installed.name) {
            if Arc::ptr_eq(i, installed) {
                return f.clone();
            }
        }
        let current = self.capsules.is_current(installed);
        // A version no longer installed is stopped (or about to be): never let it block.
        let flag = Arc::new(AtomicBool::new(!current));
        if current {
            stops.insert(installed.name.clone(), (installed.clone(), flag.clone()));
        }
        flag
    }

    /// Stops what runs of `capsule` (for one principal, or for all) and drops its contexts:
    /// an update, a removal, or a grant taken away.
    pub fn stop_contexts(&self, capsule: &str, only: Option<&PrincipalId>) {
        let affected = match only {
            Some(p) => self.principals.loaded(p).into_iter().collect(),
            None => self.principals.all(),
        };
        for pr in affected {
            pr.contexts.lock().remove(capsule);
            if let Some((_, flag)) = pr.stops.lock().remove(capsule) {
                flag.store(true, Ordering::Relaxed);
            }
        }
    }

    pub fn installed(&self, name: &str) -> Option<Arc<Installed>> {
        self.capsules.get(name)
    }
}
