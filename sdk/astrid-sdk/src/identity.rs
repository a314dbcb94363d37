//! Who the capsule runs for: the principal's id, and the facts of its profile the principal
//! chose to share (`astrid profile set`).
//!
//! A fact is read only when the manifest names it in `[capabilities] identity` and the
//! principal allows it, with an `identity:<fact>` capability token
//! (`astrid caps grant NAME identity:display_name`) or by approving the read when asked.
//! Every read is in the principal's audit chain; the value is not.
//!
//! ```no_run
//! use astrid_sdk::prelude::*;
//!
//! fn greeting() -> Result<String, IdentityError> {
//!     // Capsule.toml: [capabilities] identity = ["display_name"]
//!     let name = identity::fact("display_name")?
//!         .unwrap_or_else(|| identity::principal());
//!     Ok(format!("Hello, {name}!"))
//! }
//! ```

use crate::bindings::astrid::identity::identity as host;
use crate::error::IdentityError;

/// The principal (tenant) this invocation runs for. Always known; not gated.
pub fn principal() -> String {
    host::principal()
}

/// The profile fact `name` (`display_name`, `timezone`, …), or `None` when the principal
/// has not set it. [`IdentityError::Denied`] when the manifest does not name it or the
/// principal did not allow it.
pub fn fact(name: &str) -> Result<Option<String>, IdentityError> {
    host::fact(name).map_err(Into::into)
}
