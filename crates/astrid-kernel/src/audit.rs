//! The kernel's side of the audit chain: one `AuditLog` per principal, opened on first use
//! and signed with the runtime key, plus the `Auditor` the host functions record through.

use std::sync::Arc;

use astrid_audit::{AuditLog, Decision, NewEntry};
use astrid_sandbox::{Actor, AuditDecision, Auditor};
use astrid_types::PrincipalId;

use crate::error::KernelError;
use crate::kernel::Inner;

/// The `capsule` field of entries the kernel makes on its own behalf.
pub(crate) const KERNEL: &str = "kernel";

impl Inner {
    /// The principal's audit chain, opened (and recovered after a crash) on first use.
    pub fn audit_for(&self, p: &PrincipalId) -> Result<Arc<AuditLog>, KernelError> {
        let pr = self.tenant(p)?;
        let mut slot = pr.audit.lock();
        if let Some(l) = slot.as_ref() {
            return Ok(l.clone());
        }
        // Deleted since the entry was made: its files are gone, so do not make new ones.
        if !self.principal_exists(p) {
            return Err(KernelError::UnknownPrincipal(p.to_string()));
        }
        let path = astrid_audit::log_path(&self.home.principals_dir(), p);
        let log =
            AuditLog::open(&path, p.clone(), self.key.clone()).map_err(|e| KernelError::Audit {
                principal: p.to_string(),
                source: Box::new(e),
            })?;
        let log = Arc::new(log);
        *slot = Some(log.clone());
        Ok(log)
    }

    /// Appends one entry to `p`'s chain and returns once it is durable.
    pub fn record(
        &self,
        p: &PrincipalId,
        capsule: &str,
        action: &str,
        resource: &str,
        decision: Decision,
        outcome: &str,
    ) -> Result<(), KernelError> {
        let log = self.audit_for(p)?;
        log.append(NewEntry::new(capsule, action, resource, decision, outcome))
            .map(|_| ())
            .map_err(|e| KernelError::Audit {
                principal: p.to_string(),
                source: Box::new(e),
            })
    }
}

/// What a capsule context records through: its principal's chain.
pub(crate) struct LogAuditor(pub Arc<AuditLog>);

impl Auditor for LogAuditor {
    /// The entry's `capsule` field is the actor as shown (`tool-shell for borrower`), so the
    /// chain names who asked without a change to the entry format.
    fn record(
        &self,
        actor: &Actor,
        action: &str,
        resource: &str,
        decision: AuditDecision,
        outcome: &str,
    ) -> Result<(), String> {
        let decision = match decision {
            AuditDecision::Allowed => Decision::Allowed,
            AuditDecision::Denied => Decision::Denied,
        };
        self.0
            .append(NewEntry::new(
                actor.to_string(),
                action,
                resource,
                decision,
                outcome,
            ))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
