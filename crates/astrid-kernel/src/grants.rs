//! Which principal may invoke which installed capsule. A capsule is installed once (one
//! content-addressed artifact, one compiled component) and granted to principals; each
//! holder gets its own instance (store, `~`, audit chain, background loop). Dispatch skips
//! the handlers of capsules the event's principal does not hold, so a principal's agent
//! neither sees nor reaches another principal's tools; a request that only such a capsule
//! would answer is refused with a typed denial and recorded.

use std::sync::Arc;

use astrid_audit::Decision;
use astrid_types::wire::RequestError;
use astrid_types::PrincipalId;

use crate::bus::Envelope;
use crate::error::KernelError;
use crate::kernel::Inner;
use crate::registry::Installed;

impl Inner {
    /// Grants and takes away capsules (`agent modify`), each change recorded in `p`'s chain.
    pub fn modify_grants(
        self: &Arc<Self>,
        p: &PrincipalId,
        add: &[String],
        remove: &[String],
    ) -> Result<Vec<String>, KernelError> {
        let _guard = self.capsules.one_change_at_a_time();
        if !self.principal_exists(p) {
            return Err(KernelError::UnknownPrincipal(p.to_string()));
        }
        // Checked in full before anything changes, so a bad name changes nothing.
        let mut adds = Vec::new();
        for name in add {
            let inst = self
                .installed(name)
                .ok_or_else(|| KernelError::NotInstalled(name.clone()))?;
            adds.push(inst);
        }
        for name in remove {
            if !self.holds(p, name) {
                return Err(KernelError::Capability(format!(
                    "`{p}` does not hold capsule `{name}`"
                )));
            }
        }
        for inst in adds {
            if self.holds(p, &inst.name) {
                continue;
            }
            let outcome = format!(
                "granted version {} (hash {})",
                inst.manifest.package.version, inst.hash
            );
            self.grant_capsule_locked(p, &inst, "capsule.grant", &outcome)?;
        }
        for name in remove {
            self.ungrant_capsule_locked(p, name, "capsule.ungrant", "grant taken away")?;
        }
        Ok(self.profile(p).capsules.iter().cloned().collect())
    }

    /// Records, then grants, then starts `p`'s background loop. The caller holds the
    /// lifecycle lock.
    pub(crate) fn grant_capsule_locked(
        self: &Arc<Self>,
        p: &PrincipalId,
        inst: &Arc<Installed>,
        action: &str,
        outcome: &str,
    ) -> Result<(), KernelError> {
        self.record_lifecycle(action, &inst.name, outcome, std::slice::from_ref(p))?;
        self.update_profile(p, |prof| {
            prof.capsules.insert(inst.name.clone());
            Ok(())
        })?;
        self.start_background_for(p, inst);
        self.announce_change(&inst.name, "grant", std::slice::from_ref(p));
        Ok(())
    }

    /// Records, then takes the grant away and stops what runs of it for `p`. The caller
    /// holds the lifecycle lock.
    pub(crate) fn ungrant_capsule_locked(
        &self,
        p: &PrincipalId,
        name: &str,
        action: &str,
        outcome: &str,
    ) -> Result<(), KernelError> {
        self.record_lifecycle(action, name, outcome, std::slice::from_ref(p))?;
        self.update_profile(p, |prof| {
            prof.capsules.remove(name);
            Ok(())
        })?;
        self.stop_contexts(name, Some(p));
        self.announce_change(name, "ungrant", std::slice::from_ref(p));
        Ok(())
    }

    /// A request whose only handlers belong to capsules its principal does not hold: refused
    /// (typed) and recorded in the requester's chain, naming who asked.
    pub(crate) fn refuse_ungranted(&self, env: &Envelope, capsules: &[String]) -> RequestError {
        let list = capsules.join(", ");
        let why = format!(
            "capsule {list} is not granted to principal `{}` (asked by {})",
            env.principal, env.chain
        );
        for name in capsules {
            if let Err(e) = self.record(
                &env.principal,
                &env.source,
                "capsule.invoke",
                &format!("capsule:{name}"),
                Decision::Denied,
                &format!("topic {}: not granted", env.topic),
            ) {
                tracing::error!(principal = %env.principal, "recording a refused invoke: {e}");
            }
        }
        RequestError::Denied(why)
    }
}
