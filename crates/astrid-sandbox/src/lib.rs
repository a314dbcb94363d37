//! The Wasmtime host for Astrid capsules.
//!
//! One shared [`Runtime`] owns the engine, the linker with every `astrid:*` host package, the
//! epoch ticker and the on-disk cache of precompiled components. Each invocation gets a fresh
//! `Store` (so a trap, a runaway loop or a memory blow-up dies with it) instantiated from a
//! per-capsule `InstancePre`. Host functions live one module per WIT package under `host/`,
//! and each calls its gate where the effect happens. No `wasi:*` interface is ever linked.

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        // Every version of every package, side by side (wit/capsule.wit `served`).
        world: "astrid:capsule/served",
    });
}

mod authorize;
mod cache;
mod chain;
mod context;
mod error;
mod host;
mod invoke;
mod runtime;

pub use authorize::{Ceiling, Denial, Effect, Gatekeeper, How, TokenDenial, APPROVAL_WAIT};
pub use chain::{Actor, Chain, Requester};
pub use context::{
    ApprovalAsk, Approver, Asked, AuditDecision, Auditor, Bus, CapsuleContext, ElicitAsk, Elicited,
    Elicitor, Frontends, Inbox, InboxMessage, NetAccess, Origin, Quota, StorageMeter, TokenGate,
    Unmetered,
};
pub use error::{GuestError, InvokeError, SandboxError};
pub use host::MAX_EVENT_DEPTH;
pub use invoke::{Call, Event};
pub use runtime::{LoadedComponent, Runtime, RuntimeConfig};
