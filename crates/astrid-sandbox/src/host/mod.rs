//! One module per `astrid:*` WIT package. Each function checks its gate before acting.

mod approval;
pub(crate) mod ceiling;
mod elicit;
mod fs;
mod http;
mod identity;
mod io;
mod ipc;
mod kv;
mod net;
mod process;
mod process_net;
mod sys;
mod uplink;

pub use ipc::MAX_EVENT_DEPTH;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::authorize::{Denial, Effect, Gatekeeper, How};
use crate::chain::{Actor, Chain};
use crate::context::{CapsuleContext, InboxMessage};

/// The data of one `Store`: one invocation of one capsule for one principal.
pub struct HostState {
    pub(crate) ctx: Arc<CapsuleContext>,
    /// The true sender of the event being handled, stamped by the kernel.
    pub(crate) source: String,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) inbox: Option<(
        crossbeam_channel::Sender<InboxMessage>,
        crossbeam_channel::Receiver<InboxMessage>,
    )>,
    pub(crate) subscriptions: Vec<u64>,
    /// Hops of the event being handled; messages this invocation sends are one deeper.
    pub(crate) depth: u8,
    /// The requester chain of the event being handled (empty for hooks and background loops).
    pub(crate) chain: Chain,
    /// The chain of what this invocation sends (`chain` plus this capsule); built on first use.
    pub(crate) next_chain: Option<Chain>,
    /// Whom this invocation's effects are for, as audit entries and approvals name it.
    pub(crate) actor: Actor,
    /// When this invocation must end; `None` for a background loop. The epoch interrupts only
    /// guest code, so host calls that block (`receive`, `request`) never wait past it. Time
    /// spent waiting for a person's approval moves it later (see [`HostState::pause_for`]).
    pub(crate) deadline: Option<Instant>,
    /// Set when a blocking host call was cut short by `deadline`; the invocation then ends as
    /// a deadline stop whatever the guest does next.
    pub(crate) deadline_hit: bool,
    /// Open HTTP responses of this invocation, by handle.
    pub(crate) http: std::collections::HashMap<u64, astrid_egress::EgressResponse>,
    /// Request bodies of this invocation still being written (`astrid:http@1.2.0` `start`),
    /// by handle.
    pub(crate) uploads: std::collections::HashMap<u64, astrid_egress::EgressUpload>,
    /// Open `astrid:net` connections of this invocation, by handle.
    pub(crate) streams: std::collections::HashMap<u64, astrid_egress::NetStream>,
    /// The next handle of a response or a connection: one sequence for both, so that an
    /// `astrid:io` handle names one stream whichever package opened it.
    pub(crate) next_handle: u64,
}

impl HostState {
    pub(crate) fn new(
        ctx: Arc<CapsuleContext>,
        source: String,
        depth: u8,
        chain: Chain,
        deadline: Option<Instant>,
    ) -> Self {
        let limiter = MemoryLimiter::new(ctx.quota.memory_bytes);
        let actor = Actor::new(&ctx.origin.capsule, &chain);
        HostState {
            ctx,
            source,
            limiter,
            inbox: None,
            subscriptions: Vec::new(),
            depth,
            chain,
            next_chain: None,
            actor,
            deadline,
            deadline_hit: false,
            http: std::collections::HashMap::new(),
            streams: std::collections::HashMap::new(),
            uploads: std::collections::HashMap::new(),
            next_handle: 1,
        }
    }

    /// How long a blocking host call may wait when the guest asked for `asked`, and whether
    /// the invocation's deadline (rather than the guest) set that limit.
    pub(crate) fn wait_budget(&self, asked: Duration) -> (Duration, bool) {
        wait_budget(self.deadline, Instant::now(), asked)
    }

    /// This invocation's authorization step (see [`Gatekeeper`]).
    pub(crate) fn gatekeeper(&self) -> Gatekeeper<'_> {
        Gatekeeper {
            ctx: &self.ctx,
            actor: &self.actor,
            deadline: None,
            may_ask: true,
        }
    }

    /// Logs and audits a refusal the host function decided itself (a bad argument, a path
    /// the filesystem gate refused).
    fn denied(&self, what: &str, resource: &str, reason: &str) {
        self.gatekeeper().record_denial(what, resource, reason);
    }

    /// The requester chain of what this invocation sends: the handled event's chain with this
    /// capsule appended (its explicit tool patterns taken from its own manifest).
    pub(crate) fn outgoing_chain(&mut self) -> Chain {
        let ctx = &self.ctx;
        let chain = &self.chain;
        self.next_chain
            .get_or_insert_with(|| chain.then(&ctx.origin.capsule, &ctx.manifest))
            .clone()
    }

    /// How long an effect may take: `asked` (`None`: the effect's own default), capped by
    /// what is left of the invocation's deadline.
    pub(crate) fn budget(&self, asked: Option<Duration>) -> Option<Duration> {
        effect_budget(self.deadline, Instant::now(), asked)
    }

    /// [`Gatekeeper::authorize`] for one effect of this invocation. A person asked gets the
    /// full approval wait, not what is left of the invocation's deadline (a 5 s deadline
    /// would give them a moment to read the dialog); the deadline is paused for as long as
    /// they take.
    pub(crate) fn authorize(&mut self, effect: &Effect) -> Result<How, Denial> {
        let started = Instant::now();
        let answer = self.gatekeeper().authorize(effect);
        self.pause_for(started.elapsed());
        if let Err(denial) = &answer {
            self.deadline_hit |= denial.deadline_hit();
        }
        answer
    }

    /// Moves the deadline later by `waited`, the time the invocation spent waiting for a
    /// person: their reading time is not the capsule's running time. The capsule gains no
    /// time to compute (it is blocked while it waits), and each wait is bounded by the
    /// approval wait.
    pub(crate) fn pause_for(&mut self, waited: Duration) {
        if let Some(deadline) = self.deadline.as_mut() {
            *deadline += waited;
        }
    }
}

impl Drop for HostState {
    fn drop(&mut self) {
        for id in self.subscriptions.drain(..) {
            self.ctx.bus.unsubscribe(id);
        }
    }
}

/// Refuses memory growth past the quota and remembers that it did, so the trap that follows
/// (the guest's allocator aborts) can be reported as a memory-limit stop, not a mystery crash.
pub(crate) struct MemoryLimiter {
    pub(crate) max_bytes: u64,
    pub(crate) hit: bool,
}

impl MemoryLimiter {
    fn new(max_bytes: u64) -> Self {
        MemoryLimiter {
            max_bytes,
            hit: false,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.max_bytes {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

// The remaining interfaces of the world have no functions but still need an impl.
impl crate::bindings::astrid::capsule::types::Host for HostState {}

/// Runs `io` to completion on the airlock's runtime, or until `budget` runs out (`None`).
pub(crate) fn within<T>(
    rt: &tokio::runtime::Handle,
    budget: Option<Duration>,
    io: impl std::future::Future<Output = T>,
) -> Option<T> {
    match budget {
        Some(b) => rt
            .block_on(async { tokio::time::timeout(b, io).await })
            .ok(),
        None => Some(rt.block_on(io)),
    }
}

/// [`HostState::wait_budget`] at `now`: pure, so the arithmetic is tested without a clock.
fn wait_budget(deadline: Option<Instant>, now: Instant, asked: Duration) -> (Duration, bool) {
    match deadline {
        Some(d) => {
            let left = d.saturating_duration_since(now);
            if left < asked {
                (left, true)
            } else {
                (asked, false)
            }
        }
        None => (asked, false),
    }
}

/// [`HostState::budget`] at `now`.
fn effect_budget(
    deadline: Option<Instant>,
    now: Instant,
    asked: Option<Duration>,
) -> Option<Duration> {
    match deadline {
        Some(d) => {
            let left = d.saturating_duration_since(now);
            Some(asked.map_or(left, |a| a.min(left)))
        }
        None => asked,
    }
}

#[cfg(test)]
mod budget_tests {
    use std::time::{Duration, Instant};

    use super::{effect_budget, wait_budget};

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_wait_is_cut_to_the_deadline_and_says_so() {
        let now = Instant::now();
        assert_eq!(wait_budget(None, now, 5 * S), (5 * S, false));
        assert_eq!(wait_budget(Some(now + 10 * S), now, 5 * S), (5 * S, false));
        assert_eq!(wait_budget(Some(now + 2 * S), now, 5 * S), (2 * S, true));
        // Exactly what is left: the guest's own limit, not the deadline.
        assert_eq!(wait_budget(Some(now + 5 * S), now, 5 * S), (5 * S, false));
        // Past the deadline: nothing left, never a negative or wrapped duration.
        assert_eq!(
            wait_budget(Some(now), now + 3 * S, 5 * S),
            (Duration::ZERO, true)
        );
    }

    #[test]
    fn an_effect_gets_what_is_left_of_the_invocation() {
        let now = Instant::now();
        assert_eq!(effect_budget(None, now, None), None);
        assert_eq!(effect_budget(None, now, Some(S)), Some(S));
        // No limit asked: the deadline's remainder is the limit.
        assert_eq!(effect_budget(Some(now + 4 * S), now, None), Some(4 * S));
        assert_eq!(effect_budget(Some(now + 4 * S), now, Some(S)), Some(S));
        assert_eq!(
            effect_budget(Some(now + 4 * S), now, Some(9 * S)),
            Some(4 * S)
        );
        assert_eq!(
            effect_budget(Some(now), now + S, Some(S)),
            Some(Duration::ZERO)
        );
    }
}
