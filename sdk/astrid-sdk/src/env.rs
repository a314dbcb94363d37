//! Install-time configuration (the manifest's `[env]` table) and who is calling.

use serde::{Deserialize, Serialize};

use crate::bindings::astrid::sys::sys;
use crate::error::{SysCallError, SysError};

/// Reads a non-secret `[env]` setting; [`SysError::NotPresent`] when it has no value.
pub fn var(key: &str) -> Result<String, SysError> {
    var_opt(key)?.ok_or_else(|| SysError::NotPresent(key.to_owned()))
}

/// Reads a non-secret `[env]` setting, `None` when it has no value.
pub fn var_opt(key: &str) -> Result<Option<String>, SysCallError> {
    sys::config_get(key).map_err(Into::into)
}

/// Who the current invocation runs for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The principal (tenant) this invocation belongs to.
    pub principal: String,
    /// This capsule's own name.
    pub capsule: String,
    /// The true sender of the event being handled (`capsule:<name>` or `client:<id>`); empty
    /// outside a handler.
    pub source: String,
}

/// The identity of the current invocation, as the kernel knows it.
pub fn caller() -> Caller {
    let c = sys::caller();
    Caller {
        principal: c.principal,
        capsule: c.capsule,
        source: c.source,
    }
}
