//! Per-principal quotas: what `astrid quota set` keeps in the principal's profile, resolved
//! against the daemon's defaults, and the meters that enforce the two limits that span
//! invocations: storage (KV bytes plus `~` bytes) and concurrent invocations.
//!
//! Memory and wall time are per invocation and go into the capsule context's `Quota`
//! (wasmtime store limits and epoch deadline); subprocess limits narrow the daemon's
//! `[process]` limits in the context's sandbox policy.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use astrid_audit::Decision;
use astrid_store::PrincipalStore;
use astrid_types::wire::{QuotaInfo, QuotaSpec};
use astrid_types::PrincipalId;
use parking_lot::Mutex;

use crate::audit::KERNEL;
use crate::error::KernelError;
use crate::kernel::Inner;
use crate::principal::Principal;

/// Storage of a principal when its profile sets none: roomy for a laptop, finite.
pub const DEFAULT_STORAGE_BYTES: u64 = 4 << 30;
/// Capsule invocations one principal may run at once when its profile sets none.
pub const DEFAULT_CONCURRENCY: u32 = 16;
/// Invocations of one principal waiting for a slot before new ones are refused.
const QUEUE_PER_SLOT: usize = 64;
/// How long a count of `~` is trusted before it is taken again (subprocesses write there
/// without going through the host).
const HOME_RECOUNT: Duration = Duration::from_secs(2);

/// A quota with every field resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub memory_bytes: u64,
    pub time: Duration,
    pub storage_bytes: u64,
    pub processes: u32,
    pub concurrency: u32,
}

/// One principal's storage: the store and `~` share one budget.
pub(crate) struct StorageMeter {
    home: PathBuf,
    store: Arc<PrincipalStore>,
    limit: AtomicU64,
    home_bytes: Mutex<Option<(u64, Instant)>>,
}

impl StorageMeter {
    fn home_bytes(&self) -> u64 {
        let mut cached = self.home_bytes.lock();
        if let Some((n, at)) = *cached {
            if at.elapsed() < HOME_RECOUNT {
                return n;
            }
        }
        let n = dir_bytes(&self.home);
        *cached = Some((n, Instant::now()));
        n
    }

    pub fn used(&self) -> u64 {
        self.home_bytes()
            .saturating_add(self.store.kv_bytes().unwrap_or(0))
    }
}

impl astrid_sandbox::StorageMeter for StorageMeter {
    fn kv_cap(&self) -> u64 {
        self.limit
            .load(Ordering::Relaxed)
            .saturating_sub(self.home_bytes())
    }

    fn admit_fs(&self, host_path: &Path, grow: u64) -> Result<(), String> {
        if grow == 0 || !host_path.starts_with(&self.home) {
            return Ok(());
        }
        let limit = self.limit.load(Ordering::Relaxed);
        let used = self.used();
        if used.saturating_add(grow) > limit {
            return Err(format!(
                "storage quota of {limit} bytes would be exceeded ({used} bytes used, this \
                 write needs {grow} more)"
            ));
        }
        // Counted as written now, so two writes in one recount window cannot both fit.
        if let Some((n, _)) = self.home_bytes.lock().as_mut() {
            *n = n.saturating_add(grow);
        }
        Ok(())
    }
}

/// Bytes of the regular files under `dir` (symlinks are not followed).
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() {
                total = total.saturating_add(m.len());
            }
        }
    }
    total
}

type Job = Box<dyn FnOnce() + Send>;

/// Invocations of one principal running now, and those waiting for a slot.
#[derive(Default)]
pub(crate) struct Slots {
    running: u32,
    waiting: VecDeque<Job>,
}

impl Inner {
    pub(crate) fn resolved_quota(&self, p: &PrincipalId) -> Resolved {
        let set = self.profile(p).quota.clone();
        Resolved {
            memory_bytes: set.memory_bytes.unwrap_or(self.quota.memory_bytes),
            time: set
                .time_ms
                .map(Duration::from_millis)
                .unwrap_or(self.quota.timeout),
            storage_bytes: set.storage_bytes.unwrap_or(DEFAULT_STORAGE_BYTES),
            processes: set.processes.unwrap_or(self.process_limits().max_processes),
            concurrency: set.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
        }
    }

    pub(crate) fn process_limits(&self) -> astrid_process::Limits {
        match self.process.as_ref() {
            Ok(p) => p.limits,
            Err(_) => astrid_process::Limits::default(),
        }
    }

    /// The daemon's subprocess sandbox, narrowed to the principal's quota.
    pub(crate) fn process_policy_for(
        &self,
        p: &PrincipalId,
    ) -> Arc<Result<astrid_process::SandboxPolicy, String>> {
        let set = self.profile(p).quota.clone();
        if set.processes.is_none() && set.memory_bytes.is_none() && set.time_ms.is_none() {
            return self.process.clone();
        }
        let Ok(policy) = self.process.as_ref() else {
            return self.process.clone();
        };
        let mut policy = policy.clone();
        let l = &mut policy.limits;
        if let Some(n) = set.processes {
            l.max_processes = l.max_processes.min(n.max(1));
        }
        if let Some(m) = set.memory_bytes {
            l.max_memory_bytes = l.max_memory_bytes.min(m);
        }
        if let Some(ms) = set.time_ms {
            l.max_cpu_seconds = l.max_cpu_seconds.min(ms.div_ceil(1000).max(1));
        }
        Arc::new(Ok(policy))
    }

    /// The principal's storage meter, made on first use.
    pub(crate) fn storage_meter(&self, p: &PrincipalId) -> Result<Arc<StorageMeter>, KernelError> {
        let pr = self.tenant(p)?;
        if let Some(m) = pr.meter.lock().as_ref() {
            return Ok(m.clone());
        }
        let meter = Arc::new(StorageMeter {
            home: self.home.principal_home(p),
            store: self.store_for(p)?,
            limit: AtomicU64::new(self.resolved_quota(p).storage_bytes),
            home_bytes: Mutex::new(None),
        });
        let kept = pr.meter.lock().get_or_insert(meter).clone();
        Ok(kept)
    }

    /// `astrid quota set`: replaces the principal's quota; the next invocation runs under it.
    pub fn set_quota(&self, p: &PrincipalId, spec: QuotaSpec) -> Result<QuotaInfo, KernelError> {
        validate(&spec)?;
        self.update_profile(p, |prof| {
            prof.quota = spec.clone();
            Ok(())
        })?;
        if let Some(m) = self
            .principals
            .loaded(p)
            .and_then(|pr| pr.meter.lock().clone())
        {
            m.limit
                .store(self.resolved_quota(p).storage_bytes, Ordering::Relaxed);
        }
        self.forget_principal_contexts(p);
        let info = self.quota_info(p)?;
        self.record(
            p,
            KERNEL,
            "quota.set",
            "quota",
            Decision::Recorded,
            &format!(
                "memory {} B, time {} ms, storage {} B, processes {}, concurrency {}",
                info.memory_bytes,
                info.time_ms,
                info.storage_bytes,
                info.processes,
                info.concurrency
            ),
        )?;
        Ok(info)
    }

    pub fn quota_info(&self, p: &PrincipalId) -> Result<QuotaInfo, KernelError> {
        if !self.principal_exists(p) {
            return Err(KernelError::UnknownPrincipal(p.to_string()));
        }
        let r = self.resolved_quota(p);
        let meter = self.storage_meter(p)?;
        Ok(QuotaInfo {
            principal: p.to_string(),
            set: self.profile(p).quota.clone(),
            memory_bytes: r.memory_bytes,
            time_ms: r.time.as_millis() as u64,
            storage_bytes: r.storage_bytes,
            processes: r.processes,
            concurrency: r.concurrency,
            storage_used: meter.used(),
            running: self
                .principals
                .loaded(p)
                .map_or(0, |pr| pr.slots.lock().running),
        })
    }

    /// Runs `job` (an invocation entering from outside: a client, the kernel) when the
    /// principal has a free slot, else queues it behind that principal's own. One principal
    /// flooding the bus fills its own queue, not the blocking pool everyone shares. A full
    /// queue refuses with `Err` (the job is dropped unrun).
    pub(crate) fn admit_invocation(
        self: &Arc<Self>,
        p: &PrincipalId,
        job: Job,
    ) -> Result<(), String> {
        let limit = self.resolved_quota(p).concurrency.max(1);
        let pr = self.tenant(p).map_err(|e| e.to_string())?;
        let mut s = pr.slots.lock();
        if s.running < limit {
            s.running += 1;
            drop(s);
            self.run_slot(pr, job);
            return Ok(());
        }
        let max_waiting = limit as usize * QUEUE_PER_SLOT;
        if s.waiting.len() >= max_waiting {
            return Err(format!(
                "quota-exceeded: principal `{p}` has {} invocations running and {max_waiting} \
                 waiting (concurrency quota {limit})",
                s.running
            ));
        }
        s.waiting.push_back(job);
        Ok(())
    }

    /// Runs a job that holds a slot; when it ends, the slot passes to the next waiting job.
    fn run_slot(self: &Arc<Self>, pr: Arc<Principal>, job: Job) {
        self.rt.spawn_blocking(move || {
            let mut job = job;
            loop {
                job();
                let mut s = pr.slots.lock();
                match s.waiting.pop_front() {
                    Some(next) => job = next,
                    None => {
                        s.running -= 1;
                        return;
                    }
                }
            }
        });
    }
}

fn validate(spec: &QuotaSpec) -> Result<(), KernelError> {
    let bad = |what: &str, why: &str| Err(KernelError::Settings(format!("quota {what}: {why}")));
    if spec
        .memory_bytes
        .is_some_and(|m| !(1 << 20..=4 << 30).contains(&m))
    {
        return bad("memory", "must be between 1MB and 4GB");
    }
    if spec.time_ms.is_some_and(|t| !(10..=3_600_000).contains(&t)) {
        return bad("time", "must be between 10ms and 1h");
    }
    if spec.storage_bytes == Some(0) {
        return bad("storage", "must be at least 1 byte");
    }
    if spec.processes == Some(0) {
        return bad("processes", "must be at least 1");
    }
    if spec.concurrency.is_some_and(|c| !(1..=1024).contains(&c)) {
        return bad("concurrency", "must be between 1 and 1024");
    }
    Ok(())
}
