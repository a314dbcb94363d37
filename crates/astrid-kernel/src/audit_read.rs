//! Reading a principal's audit chain back for a client of that principal (`AuditPage`,
//! `AuditVerify`). The CLI reads the chain files itself as the operator; an uplink acting for
//! a device (the HTTP gateway) has no business reading files, so the kernel reads the chain
//! of the connection's own principal for it, after `admit_control` has checked who asks.

use astrid_audit::{export_head, log_path, read_entries, AuditError, Witness};
use astrid_types::wire::{AuditPage, AuditVerdict};
use astrid_types::PrincipalId;

use crate::kernel::Inner;

/// Entries per page at most: an entry's JSON (with its signed bytes in hex) is under 2 KiB,
/// so a page stays far below the frame limit.
pub(crate) const MAX_PAGE: u32 = 1000;

impl Inner {
    /// Up to `limit` entries with `seq > after_seq`, and the signed head once the page
    /// reaches the end of the chain.
    pub(crate) fn audit_page(
        &self,
        p: &PrincipalId,
        after_seq: u64,
        limit: u32,
    ) -> Result<AuditPage, String> {
        // Opening the log through the kernel recovers a torn tail first, as appends do.
        let log = self.audit_for(p).map_err(|e| e.to_string())?;
        let path = log_path(&self.home.principals_dir(), p);
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let mut entries = Vec::new();
        let mut reached_end = true;
        for e in read_entries(&path).map_err(|e| e.to_string())? {
            let e = e.map_err(|e| e.to_string())?;
            if e.entry.principal != *p {
                return Err(AuditError::WrongPrincipal {
                    path: path.clone(),
                    found: e.entry.principal.to_string(),
                    expected: p.to_string(),
                }
                .to_string());
            }
            if e.entry.seq <= after_seq {
                continue;
            }
            if entries.len() == limit {
                reached_end = false;
                break;
            }
            entries.push(astrid_audit::entry_json(&e));
        }
        let head = if reached_end {
            export_head(&path, p).map_err(|e| e.to_string())?
        } else {
            None
        };
        Ok(AuditPage {
            entries,
            last_seq: log.last_seq(),
            head,
        })
    }

    /// Full verification against the runtime public key, as `astrid audit verify` does.
    pub(crate) fn audit_verify(
        &self,
        p: &PrincipalId,
        witness: Option<&str>,
    ) -> Result<AuditVerdict, String> {
        let witness = witness.map(|w| w.parse::<Witness>()).transpose()?;
        // Make sure the chain exists and any torn tail is cut, as for a page.
        self.audit_for(p).map_err(|e| e.to_string())?;
        let path = log_path(&self.home.principals_dir(), p);
        let key = self.key.public_key();
        let mut verdict = AuditVerdict {
            principal: p.to_string(),
            intact: false,
            problem: None,
            entries: 0,
            last_seq: 0,
            head_seq: 0,
            torn_tail_bytes: 0,
            witness: None,
            key_id: key.key_id().to_string(),
        };
        match astrid_audit::verify_against(&path, key, p, witness.as_ref()) {
            Ok(r) => {
                verdict.intact = true;
                verdict.entries = r.entries;
                verdict.last_seq = r.last_seq;
                verdict.head_seq = r.head_seq;
                verdict.torn_tail_bytes = r.torn_tail_bytes;
                verdict.witness = Some(r.witness().to_string());
            }
            Err(e) => verdict.problem = Some(e.to_string()),
        }
        Ok(verdict)
    }
}
