//! The principal's frontends: the clients connected for it (`astrid chat`, the gateway, an
//! MCP host). A capsule may list them and send them a short notice.
//!
//! Both need `[capabilities] uplink = true` in the manifest; each notice also needs the
//! principal's leave, an `uplink:frontends` capability token
//! (`astrid caps grant NAME uplink:frontends`) or a person's yes when asked. The kernel
//! stamps the notice with the capsule's name, delivers it only to the principal's own
//! frontends, allows a capsule 30 notices a minute, and audits each one (its digest, not its
//! text).
//!
//! ```no_run
//! use astrid_sdk::prelude::*;
//!
//! fn report(done: usize) -> Result<(), UplinkError> {
//!     // Capsule.toml: [capabilities] uplink = true
//!     let shown = uplink::notify(uplink::Level::Info, &format!("indexed {done} files"))?;
//!     if shown == 0 {
//!         log::info("nobody is watching; the result is in the session instead");
//!     }
//!     Ok(())
//! }
//! ```

use crate::bindings::astrid::uplink::uplink as host;
use crate::error::UplinkError;

/// How a frontend presents a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Something the person may like to know.
    Info,
    /// Something that may need their attention.
    Warning,
    /// Something the person should act on.
    Alert,
}

/// One connected client of the principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontend {
    /// The name the client gave itself: reported by the client, not verified.
    pub client: String,
    /// What it authenticated with, checked by the kernel: `operator` or `device:<id>`.
    pub credential: String,
    /// Whether it shows notices.
    pub shows_notices: bool,
}

/// The principal's connected frontends.
pub fn frontends() -> Result<Vec<Frontend>, UplinkError> {
    let list = host::frontends()?;
    Ok(list
        .into_iter()
        .map(|f| Frontend {
            client: f.client,
            credential: f.credential,
            shows_notices: f.shows_notices,
        })
        .collect())
}

/// Sends `text` (at most 2048 bytes; newline and tab are the only control characters
/// allowed) to every frontend of the principal that shows notices. Returns how many
/// received it; 0 is not an error.
pub fn notify(level: Level, text: &str) -> Result<u32, UplinkError> {
    let level = match level {
        Level::Info => host::Level::Info,
        Level::Warning => host::Level::Warning,
        Level::Alert => host::Level::Alert,
    };
    host::notify(level, text).map_err(Into::into)
}
