//! `astrid mcp serve`: an MCP server over stdio whose tools are the tools of the capsules
//! available to one principal.
//!
//! The server is an ordinary client of the daemon's socket, authenticated as one principal
//! (the operator acting for a principal, or a device token). It holds no authority of its
//! own: `tools/list` is the principal's `tool.v1.describe` gathered over the bus, and
//! `tools/call` is a `tool.v1.execute.<name>` request from the connection, so the capsule's
//! manifest ceiling, the principal's capability tokens (or an approval) and the signed audit
//! chain decide and record each effect exactly as for the agent's own tool calls.

//!
//! The other direction, `astrid mcp add`: [`RemoteServer`] runs a native MCP server under the
//! OS sandbox (only its granted directories, and only its granted hosts through the
//! airlock) and talks to it as an MCP client;
//! [`pin`] treats its tool definitions as untrusted input, bounded and pinned by hash;
//! [`Supervised`] restarts a server that died, with backoff; [`Bridge`] serves the usable
//! tools of a principal's added servers to its agent through the daemon, which checks and
//! records every call.

mod bridge;
mod device_rounds;
mod elicit;
mod error;
mod http;
mod launch;
mod net;
pub mod pin;
mod remote;
mod rounds;
mod server;
mod store;
mod supervise;
mod tools;

pub use bridge::Bridge;
pub use device_rounds::{AnsweringDevice, Connect};
pub use error::McpError;
pub use http::{McpHttp, McpResponse, MAX_SESSIONS, MAX_SESSIONS_PER_DEVICE, SESSION_IDLE};
pub use launch::{default_grant, Launcher};
pub use net::ConnectReport;
pub use remote::{CallOutcome, RemoteServer, ServerConfig};
pub use server::{serve_stdio, CapsuleTools, ServeOptions};
pub use store::{valid_server_name, Store, MAX_SERVER_NAME};
pub use supervise::{Supervised, BACKOFF_FIRST, BACKOFF_MAX, STABLE_AFTER};
pub use tools::{parse_describe, ToolDef, MAX_DESCRIPTION, MAX_SCHEMA_BYTES};
