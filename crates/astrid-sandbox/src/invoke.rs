use std::sync::atomic::Ordering;
use std::sync::Arc;

use wasmtime::{Store, Trap, UpdateDeadline};

use crate::bindings::astrid::capsule::types::{ErrorCode, Event as WitEvent};
use crate::chain::Chain;
use crate::context::CapsuleContext;
use crate::error::{GuestError, InvokeError};
use crate::host::HostState;
use crate::runtime::{LoadedComponent, Runtime};

/// An event as handed to a guest handler.
#[derive(Debug, Clone)]
pub struct Event {
    pub topic: String,
    pub payload: Vec<u8>,
    /// `capsule:<name>` or `client:<id>`, stamped by the kernel.
    pub source: String,
    /// Handler hops that led to this event (0 for one sent by a client).
    pub depth: u8,
    /// Who asked, oldest first, ending with the sender; stamped by the kernel and the host,
    /// never by a guest.
    pub chain: Chain,
}

/// Which guest export to call.
#[derive(Debug, Clone)]
pub enum Call {
    Install,
    Upgrade {
        previous_version: String,
    },
    Handle {
        handler: String,
        event: Event,
    },
    /// The background loop: no deadline, stopped through `CapsuleContext::stopping`.
    Run,
}

impl Runtime {
    /// Runs one export in a fresh store. Blocking: call from a blocking-pool thread.
    pub fn invoke(
        &self,
        component: &LoadedComponent,
        ctx: Arc<CapsuleContext>,
        call: Call,
    ) -> Result<Option<Vec<u8>>, InvokeError> {
        let capsule = ctx.capsule().to_string();
        // Hooks and background loops act for nobody else: their chain is empty.
        let (source, depth, chain) = match &call {
            Call::Handle { event, .. } => (event.source.clone(), event.depth, event.chain.clone()),
            _ => (String::new(), 0, Chain::default()),
        };
        let quota = ctx.quota;
        let background = matches!(call, Call::Run);
        // The epoch stops guest code at the deadline; host calls that block check this instead.
        let deadline = (!background).then(|| std::time::Instant::now() + quota.timeout);
        let mut store = Store::new(
            &self.engine,
            HostState::new(ctx.clone(), source, depth, chain, deadline),
        );
        store.limiter(|s| &mut s.limiter);

        if background {
            let stopping = ctx.stopping.clone();
            store.epoch_deadline_callback(move |_| {
                if stopping.load(Ordering::Relaxed) {
                    Err(wasmtime::Error::new(Trap::Interrupt))
                } else {
                    Ok(UpdateDeadline::Continue(10))
                }
            });
            store.set_epoch_deadline(1);
        } else {
            // Not a fixed number of ticks: the deadline moves later while the invocation
            // waits for a person (`HostState::pause_for`), so each expiry looks again.
            let tick = self.epoch_tick.as_millis().max(1) as u64;
            let ticks_for =
                move |left: std::time::Duration| (left.as_millis() as u64).div_ceil(tick).max(1);
            store.epoch_deadline_callback(move |cx| {
                let left = cx.data().deadline.map_or(std::time::Duration::ZERO, |d| {
                    d.saturating_duration_since(std::time::Instant::now())
                });
                if left.is_zero() {
                    Err(wasmtime::Error::new(Trap::Interrupt))
                } else {
                    Ok(UpdateDeadline::Continue(ticks_for(left)))
                }
            });
            store.set_epoch_deadline(ticks_for(quota.timeout));
        }

        let instance = component.pre.instantiate(&mut store).map_err(|e| {
            if store.data().limiter.hit {
                return InvokeError::MemoryLimit {
                    capsule: capsule.clone(),
                    limit_bytes: quota.memory_bytes,
                };
            }
            InvokeError::Instantiate {
                capsule: capsule.clone(),
                reason: format!("{e:#}"),
            }
        })?;
        let guest = instance.astrid_capsule_guest();
        let outcome = match &call {
            Call::Install => guest.call_install(&mut store).map(|r| r.map(|()| None)),
            Call::Upgrade { previous_version } => guest
                .call_upgrade(&mut store, previous_version)
                .map(|r| r.map(|()| None)),
            Call::Handle { handler, event } => {
                let ev = WitEvent {
                    topic: event.topic.clone(),
                    payload: event.payload.clone(),
                    source: event.source.clone(),
                    principal: ctx.origin.principal.to_string(),
                };
                guest.call_handle(&mut store, handler, &ev)
            }
            Call::Run => guest.call_run(&mut store).map(|r| r.map(|()| None)),
        };
        if outcome.is_ok() && store.data().deadline_hit {
            // A wait cut short by the deadline: the guest may have carried on and even replied
            // in the moment before the epoch caught up, but it did run out of time.
            return Err(InvokeError::Deadline {
                capsule,
                limit_ms: quota.timeout.as_millis() as u64,
            });
        }
        match outcome {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(code)) => Err(InvokeError::Guest {
                capsule,
                error: match code {
                    ErrorCode::Failed(m) => GuestError::Failed(m),
                    ErrorCode::InvalidArgument(m) => GuestError::InvalidArgument(m),
                    ErrorCode::UnknownHandler(m) => GuestError::UnknownHandler(m),
                },
            }),
            Err(err) => Err(classify_trap(
                err,
                &store,
                capsule,
                quota.timeout.as_millis() as u64,
                background,
            )),
        }
    }
}

fn classify_trap(
    err: wasmtime::Error,
    store: &Store<HostState>,
    capsule: String,
    limit_ms: u64,
    background: bool,
) -> InvokeError {
    if store.data().limiter.hit {
        return InvokeError::MemoryLimit {
            capsule,
            limit_bytes: store.data().limiter.max_bytes,
        };
    }
    if let Some(Trap::Interrupt) = err.downcast_ref::<Trap>() {
        if background {
            return InvokeError::Stopped { capsule };
        }
        return InvokeError::Deadline { capsule, limit_ms };
    }
    InvokeError::Trap {
        capsule,
        reason: format!("{err:#}"),
    }
}
