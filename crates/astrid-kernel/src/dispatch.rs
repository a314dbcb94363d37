//! Delivering events: to client and inbox subscribers directly, to capsule handlers as one
//! fresh invocation each on the blocking pool. Also the sandbox's view of the bus.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use astrid_sandbox::{Call, Chain, Event, Inbox, InboxMessage, InvokeError, Origin};
use astrid_types::topic::pattern_matches;
use astrid_types::wire::{LifecycleState, RequestError};
use astrid_types::PrincipalId;

use crate::bus::{Envelope, ReplySlot, Subscription, Target};
use crate::kernel::{ContextEntry, Inner};
use crate::registry::Installed;

/// Kernel topic on which capsule crashes are announced (kernel-only: no capsule may publish it).
pub const CAPSULE_ERROR_TOPIC: &str = "astrid.v1.capsule.error";
/// Kernel topic announcing an install, update or removal, `{"capsule", "change"}`, to every
/// principal's subscribers.
pub const CAPSULE_CHANGED_TOPIC: &str = "astrid.v1.capsule.changed";

impl Inner {
    pub fn deliver(self: &Arc<Self>, env: Envelope) {
        self.subs.deliver_passive(&env);
        let capsules = self.capsules.snapshot();
        // Only the capsules this principal holds receive its events.
        let profile = self.profile(&env.principal);
        let mut served = false;
        let mut ungranted = Vec::new();
        for inst in capsules {
            if inst.component.is_none()
                || matches!(
                    inst.state(),
                    LifecycleState::Failed | LifecycleState::Stopping
                )
            {
                continue;
            }
            let held = profile.capsules.contains(&inst.name);
            for (pattern, handler) in &inst.handlers {
                if pattern_matches(pattern, &env.topic) {
                    if !held {
                        if !ungranted.contains(&inst.name) {
                            ungranted.push(inst.name.clone());
                        }
                        continue;
                    }
                    served = true;
                    if let Some(r) = &env.reply {
                        r.add_pending();
                    }
                    self.spawn_handler(inst.clone(), handler.clone(), env.clone());
                }
            }
        }
        served |= self.deliver_served(&env);
        if let Some(r) = &env.reply {
            // A request only another principal's capsule would answer is a refusal, not
            // "nobody is subscribed". Broadcasts (publish, gather) just do not reach it.
            let outcome = if !served && !ungranted.is_empty() && r.wants_first() {
                Err(self.refuse_ungranted(&env, &ungranted))
            } else {
                Ok(None)
            };
            r.finish("", outcome);
        }
    }

    /// One handler invocation. An event entering from outside (depth 0: a client, the kernel)
    /// takes one of its principal's concurrency slots; the requests it makes in turn ride on
    /// that slot, so a chain of capsules can never wait on slots its own caller holds. An
    /// event a capsule publishes (no reply: nobody waits for it) takes a slot of its own like
    /// one from outside, so a capsule that re-publishes in a loop fills its principal's queue,
    /// not the blocking pool that every principal's invocations share.
    fn spawn_handler(self: &Arc<Self>, inst: Arc<Installed>, handler: String, env: Envelope) {
        let inner = self.clone();
        self.calls.begin();
        let source = format!("capsule:{}", inst.name);
        let reply = env.reply.clone();
        let principal = env.principal.clone();
        let depth = env.depth;
        let job = Box::new(move || {
            let outcome = inner.invoke_handler(&inst, &handler, &env);
            if let Some(r) = &env.reply {
                r.finish(&format!("capsule:{}", inst.name), outcome);
            }
            inner.calls.end();
        });
        if depth > 0 && reply.is_some() {
            self.rt.spawn_blocking(job);
            return;
        }
        if let Err(why) = self.admit_invocation(&principal, job) {
            if let Some(r) = &reply {
                r.finish(&source, Err(RequestError::QuotaExceeded(why)));
            }
            self.calls.end();
        }
    }

    fn invoke_handler(
        self: &Arc<Self>,
        inst: &Arc<Installed>,
        handler: &str,
        env: &Envelope,
    ) -> Result<Option<Vec<u8>>, RequestError> {
        let component = inst.component.as_ref().ok_or_else(|| {
            RequestError::Failed(format!("capsule `{}` is not loaded", inst.name))
        })?;
        // RequestError is the wire protocol's answer to the caller: text by design.
        let entry = self
            .ready_context(&env.principal, inst)
            .map_err(|e| RequestError::Failed(e.to_string()))?;
        let call = Call::Handle {
            handler: handler.to_string(),
            event: Event {
                topic: env.topic.clone(),
                payload: env.payload.as_ref().clone(),
                source: env.source.clone(),
                depth: env.depth,
                chain: env.chain.clone(),
            },
        };
        match self.runtime.invoke(component, entry.ctx.clone(), call) {
            Ok(reply) => Ok(reply),
            Err(InvokeError::Guest { error, .. }) => Err(RequestError::Failed(error.to_string())),
            Err(e) => {
                if env.topic != CAPSULE_ERROR_TOPIC {
                    self.report_crash(&inst.name, &env.principal, env.depth + 1, &e);
                } else {
                    self.record_crash(&inst.name, &env.principal, &e);
                }
                Err(RequestError::Crashed(e.to_string()))
            }
        }
    }

    /// The principal's context for a capsule, after its install or upgrade hook has run once.
    pub fn ready_context(
        self: &Arc<Self>,
        p: &PrincipalId,
        inst: &Arc<Installed>,
    ) -> Result<Arc<ContextEntry>, crate::KernelError> {
        let entry = self.context(p, inst)?;
        entry.hooks.get_or_init(|| self.run_hooks(&entry));
        Ok(entry)
    }

    /// Runs `install` the first time a principal uses a capsule and `upgrade` the first time it
    /// uses a new version. A failing hook is logged and retried on the next boot; the capsule
    /// still serves, because hooks are for migrations, not for gating.
    fn run_hooks(&self, entry: &ContextEntry) {
        let inst = &entry.installed;
        let Some(component) = &inst.component else {
            return;
        };
        let store = &entry.ctx.store;
        let key = format!("capsule.{}.version", inst.name);
        let version = inst.manifest.package.version.to_string();
        let previous = match store.meta_get(&key) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(capsule = %inst.name, "reading hook state: {e}");
                return;
            }
        };
        let call = match previous {
            None => Call::Install,
            Some(prev) if prev == version.as_bytes() => return,
            Some(prev) => Call::Upgrade {
                previous_version: String::from_utf8_lossy(&prev).into_owned(),
            },
        };
        match self.runtime.invoke(component, entry.ctx.clone(), call) {
            Ok(_) => {
                if let Err(e) = store.meta_set(&key, version.as_bytes()) {
                    tracing::error!(capsule = %inst.name, "recording hook state: {e}");
                }
            }
            Err(e) => tracing::error!(capsule = %inst.name, "lifecycle hook failed: {e}"),
        }
    }

    /// Crashes go to the principal's audit chain (after the fact: the trap already ended the
    /// invocation, so there is nothing left to refuse).
    fn record_crash(&self, capsule: &str, p: &PrincipalId, err: &InvokeError) {
        tracing::error!(capsule, principal = %p, "{err}");
        if let Err(e) = self.record(
            p,
            capsule,
            "capsule.crash",
            &format!("capsule:{capsule}"),
            astrid_audit::Decision::Recorded,
            &err.to_string(),
        ) {
            tracing::error!(capsule, principal = %p, "audit append failed for a crash: {e}");
        }
    }

    /// A crash is contained: it is logged, announced on the bus, and nothing else changes.
    pub fn report_crash(
        self: &Arc<Self>,
        capsule: &str,
        p: &PrincipalId,
        depth: u8,
        err: &InvokeError,
    ) {
        self.record_crash(capsule, p, err);
        let payload = serde_json::json!({
            "capsule": capsule,
            "principal": p.to_string(),
            "error": err.to_string(),
        });
        self.deliver(Envelope {
            topic: CAPSULE_ERROR_TOPIC.to_string(),
            payload: Arc::new(payload.to_string().into_bytes()),
            source: "kernel".to_string(),
            principal: p.clone(),
            depth,
            chain: Chain::from_principal("kernel"),
            reply: None,
        });
    }

    /// Starts the `run` export of a capsule that declares `background = true` once for every
    /// principal that holds it.
    pub fn start_background(self: &Arc<Self>, inst: &Arc<Installed>) {
        for p in self.holders(&inst.name) {
            self.start_background_for(&p, inst);
        }
    }

    /// One principal's background loop, on its own blocking thread until the version is
    /// stopped or replaced, or the principal loses the grant.
    pub fn start_background_for(self: &Arc<Self>, p: &PrincipalId, inst: &Arc<Installed>) {
        if !inst.manifest.package.background || inst.component.is_none() {
            return;
        }
        let inner = self.clone();
        let inst = inst.clone();
        let p = p.clone();
        self.rt.spawn_blocking(move || {
            let entry = match inner.ready_context(&p, &inst) {
                Ok(e) => e,
                Err(e) => {
                    inst.set_state(LifecycleState::Failed, Some(e.to_string()));
                    return;
                }
            };
            inst.set_state(LifecycleState::Running, None);
            let component = inst.component.as_ref().expect("checked above");
            let result = inner
                .runtime
                .invoke(component, entry.ctx.clone(), Call::Run);
            if entry.ctx.stopping.load(Ordering::Relaxed) || inst.stopping.load(Ordering::Relaxed) {
                return;
            }
            match result {
                Ok(_) => inst.set_state(LifecycleState::Ready, None),
                Err(e) => {
                    if e.is_crash() {
                        inner.report_crash(&inst.name, &p, 0, &e);
                    }
                    inst.set_state(LifecycleState::Failed, Some(e.to_string()));
                }
            }
        });
    }

    /// A request from any origin: `env` (its `reply` is replaced) delivered like a publish,
    /// answered by the first handler reply. `sink` is called exactly once, with the reply or
    /// the reason there is none.
    pub fn request(
        self: &Arc<Self>,
        mut env: Envelope,
        sink: Box<dyn FnOnce(Result<Vec<u8>, RequestError>) + Send>,
    ) -> Arc<ReplySlot> {
        let slot = ReplySlot::new(&env.topic, sink);
        env.reply = Some(slot.clone());
        self.deliver(env);
        slot
    }
}

/// The bus as the sandbox sees it. Holds the kernel weakly so capsule contexts do not keep a
/// stopped kernel alive.
pub(crate) struct BusHandle(pub Weak<Inner>);

impl astrid_sandbox::Bus for BusHandle {
    fn publish(&self, from: &Origin, chain: &Chain, depth: u8, topic: &str, payload: Vec<u8>) {
        if let Some(inner) = self.0.upgrade() {
            inner.deliver(Envelope {
                topic: topic.to_string(),
                payload: Arc::new(payload),
                source: from.source(),
                principal: from.principal.clone(),
                depth,
                chain: chain.clone(),
                reply: None,
            });
        }
    }

    fn request(
        &self,
        from: &Origin,
        chain: &Chain,
        depth: u8,
        topic: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, RequestError> {
        let Some(inner) = self.0.upgrade() else {
            return Err(RequestError::Failed("kernel is shutting down".into()));
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let env = Envelope {
            topic: topic.to_string(),
            payload: Arc::new(payload),
            source: from.source(),
            principal: from.principal.clone(),
            depth,
            chain: chain.clone(),
            reply: None,
        };
        let slot = inner.request(
            env,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(_) => {
                slot.cancel();
                Err(RequestError::Timeout(timeout.as_millis() as u32))
            }
        }
    }

    fn gather(
        &self,
        from: &Origin,
        chain: &Chain,
        depth: u8,
        topic: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Vec<InboxMessage> {
        let Some(inner) = self.0.upgrade() else {
            return Vec::new();
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let slot = ReplySlot::gather(
            topic,
            Box::new(move |replies| {
                let _ = tx.send(replies);
            }),
        );
        inner.deliver(Envelope {
            topic: topic.to_string(),
            payload: Arc::new(payload),
            source: from.source(),
            principal: from.principal.clone(),
            depth,
            chain: chain.clone(),
            reply: Some(slot.clone()),
        });
        let principal = from.principal.to_string();
        // On timeout, the handlers that did answer still count; the rest are left out.
        let replies = rx.recv_timeout(timeout).unwrap_or_else(|_| {
            let got = slot.take_gathered();
            // The last handler may have finished between the timeout and the take.
            if got.is_empty() {
                rx.try_recv().unwrap_or_default()
            } else {
                got
            }
        });
        replies
            .into_iter()
            .map(|(source, bytes)| InboxMessage {
                topic: topic.to_string(),
                payload: Arc::new(bytes),
                source,
                principal: principal.clone(),
            })
            .collect()
    }

    fn subscribe(&self, from: &Origin, pattern: &str, inbox: Inbox) -> u64 {
        let Some(inner) = self.0.upgrade() else {
            return 0;
        };
        let id = inner.next_id();
        inner.subs.insert(
            id,
            Subscription {
                pattern: pattern.to_string(),
                principal: from.principal.clone(),
                target: Target::Inbox(inbox),
                connection: None,
            },
        );
        id
    }

    fn unsubscribe(&self, id: u64) {
        if let Some(inner) = self.0.upgrade() {
            inner.subs.remove(id);
        }
    }
}
