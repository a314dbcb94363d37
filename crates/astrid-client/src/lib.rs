//! The socket client every Astrid uplink (CLI, emit, gateway) uses to talk to the daemon.
//!
//! One [`Client`] is one authenticated connection. It is cheap to clone and safe to use from
//! many tasks at once: requests are pipelined over the single connection and replies are
//! routed back to their callers by id.

mod client;
mod daemon;
mod error;
pub mod framing;
mod handles;
mod routes;
mod serve;

pub use client::Client;
pub use daemon::{ensure_daemon, find_daemon_exe, is_daemon_running};
pub use error::ClientError;
pub use handles::{ApprovalStream, ElicitStream, PendingReply, Subscription};
pub use routes::EventMsg;
pub use serve::Invocation;
