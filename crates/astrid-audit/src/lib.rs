//! The per-principal audit chain of Astrid: append-only, hash-linked, ed25519-signed,
//! durable before an append returns, independently verifiable.
//!
//! - [`AuditLog::open`] / [`AuditLog::append`]: a writer thread batches concurrent appends
//!   into one fsync (group commit); open fails closed on a chain it cannot vouch for and
//!   cuts a torn tail from a crash.
//! - [`verify`]: checks every record, link and signature plus the signed head, and names
//!   the first bad entry.
//! - [`export`]: JSON lines with the exact signed bytes, for verifiers in other languages
//!   (docs/AUDIT-FORMAT.md, docs/verify_audit.py).

mod chain;
mod entry;
mod error;
mod export;
mod frame;
mod head;
mod log;
mod verify;

pub use entry::{
    entry_hash, signing_message, AuditEntry, Decision, NewEntry, SealedEntry, ENTRY_DOMAIN,
    MAX_OUTCOME, MAX_TEXT_FIELD,
};
pub use error::AuditError;
pub use export::{entry_json, export, export_head, head_json, read_entries, Entries};
pub use head::{head_path, read_head, read_slots, Head, Slot, HEAD_DOMAIN};
pub use log::{log_path, AppendStats, AuditLog};
pub use verify::{verify, verify_against, VerifyError, VerifyFailure, VerifyReport, Witness};
