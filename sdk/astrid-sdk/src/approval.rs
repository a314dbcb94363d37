//! Asking the principal's human for permission. The kernel forwards the question to every
//! approver client of the principal; nobody connected, or no answer in time, is a denial.

use std::fmt;

use crate::bindings::astrid::approval::approval as wit;
use crate::error::ApprovalError;

/// The human's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Allowed for this request only.
    AllowOnce,
    /// Allowed for this capsule and resource until the daemon stops.
    AllowSession,
    /// Allowed from now on; the kernel minted a capability token for the resource.
    AllowAlways,
    /// Refused, timed out, or nobody to ask.
    Deny,
}

impl Decision {
    /// True for every kind of allow.
    pub fn is_allowed(self) -> bool {
        self != Decision::Deny
    }

    /// The WIT name, such as `allow-once`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::AllowOnce => "allow-once",
            Decision::AllowSession => "allow-session",
            Decision::AllowAlways => "allow-always",
            Decision::Deny => "deny",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<wit::Decision> for Decision {
    fn from(d: wit::Decision) -> Self {
        match d {
            wit::Decision::AllowOnce => Decision::AllowOnce,
            wit::Decision::AllowSession => Decision::AllowSession,
            wit::Decision::AllowAlways => Decision::AllowAlways,
            wit::Decision::Deny => Decision::Deny,
        }
    }
}

/// Asks whether this capsule may perform `action` on `resource`, waiting at most
/// `timeout_ms` (and never past the invocation's deadline). `resource` must be a capability
/// pattern such as `fs:read:/srv/data/**` inside the capsule's manifest ceiling; anything
/// else is refused without asking. `AllowAlways` mints a token for exactly that pattern,
/// bound to this capsule, unless the pattern is too wide (then the answer is `AllowOnce`).
pub fn request(
    action: &str,
    resource: &str,
    reason: &str,
    timeout_ms: u32,
) -> Result<Decision, ApprovalError> {
    wit::request(action, resource, reason, timeout_ms)
        .map(Into::into)
        .map_err(Into::into)
}
