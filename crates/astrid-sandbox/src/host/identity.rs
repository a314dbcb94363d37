//! `astrid:identity`: who the capsule runs for. The principal's id is not gated (a capsule
//! learns it from `sys.caller` too); each profile fact is an effect like a file read: the
//! manifest must name it, then an `identity:<fact>` token or a person's yes, and the read
//! is audited before the value reaches the guest.

use astrid_crypto::Resource;
use astrid_types::FactName;

use super::HostState;
use crate::authorize::{Ceiling, Denial, Effect};
use crate::bindings::astrid::identity::identity::{ErrorCode, Host};

const OP: &str = "identity.fact";

impl Host for HostState {
    fn principal(&mut self) -> String {
        self.ctx.origin.principal.to_string()
    }

    fn fact(&mut self, name: String) -> Result<Option<String>, ErrorCode> {
        let fact = match FactName::new(name) {
            Ok(f) => f,
            Err(e) => return Err(ErrorCode::InvalidArgument(e.to_string())),
        };
        let ask = format!(
            "capsule `{}` wants to read `{fact}` from your profile",
            self.actor
        );
        let effect = Effect::new(OP, Resource::Identity(fact.clone()), Ceiling::Manifest, ask);
        let refused = |d: Denial| match d {
            Denial::AuditUnavailable(m) => ErrorCode::Failed(m),
            other => ErrorCode::Denied(other.to_string()),
        };
        self.authorize(&effect).map_err(refused)?;
        let value = self.ctx.facts.get(&fact).cloned();
        let outcome = if value.is_some() { "read" } else { "not set" };
        self.gatekeeper()
            .record_allowed(OP, &effect.resource.to_string(), outcome)
            .map_err(refused)?;
        Ok(value)
    }
}
