//! Reading a chain back: typed entries for display, JSON lines for external verifiers.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use astrid_types::PrincipalId;
use serde_json::json;

use crate::entry::SealedEntry;
use crate::error::AuditError;
use crate::frame::{Frame, FrameReader};
use crate::head::{head_path, read_head, read_slots, Head, Slot};

/// Iterates the entries of a log in order, without verifying signatures. A torn tail after
/// the signed head (an unacknowledged crash leftover) ends the iteration quietly; damage
/// before it is an error item.
pub struct Entries {
    path: PathBuf,
    reader: Option<FrameReader>,
    acknowledged_end: u64,
}

/// Opens `path` for reading. Works on a log another handle has open for appending.
pub fn read_entries(path: &Path) -> Result<Entries, AuditError> {
    let reader = FrameReader::open(path).map_err(|e| AuditError::io(path, e))?;
    let head = read_head(&head_path(path)).ok().flatten();
    Ok(Entries {
        path: path.to_owned(),
        reader,
        acknowledged_end: head.map_or(0, |h| h.end_offset),
    })
}

impl Iterator for Entries {
    type Item = Result<SealedEntry, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        let reader = self.reader.as_mut()?;
        let frame = match reader.next_frame() {
            Ok(f) => f,
            Err(e) => {
                self.reader = None;
                return Some(Err(AuditError::io(&self.path, e)));
            }
        };
        match frame {
            Frame::End => None,
            Frame::Bad { offset, .. } if offset >= self.acknowledged_end => None,
            Frame::Bad { offset, reason } => {
                self.reader = None;
                Some(Err(AuditError::Corrupt {
                    path: self.path.clone(),
                    offset,
                    reason: reason.to_owned(),
                }))
            }
            Frame::Record {
                offset,
                canonical,
                signature,
            } => Some(SealedEntry::from_parts(canonical, signature).map_err(|e| {
                AuditError::Corrupt {
                    path: self.path.clone(),
                    offset,
                    reason: e.to_string(),
                }
            })),
        }
    }
}

/// One JSON object per entry (`"type":"entry"`), then one for the signed head
/// (`"type":"head"`), each with every field and the exact bytes (hex) that were hashed and
/// signed, so that a verifier without our code can check them. See docs/AUDIT-FORMAT.md.
///
/// Export does not verify signatures (that is the reader's job), but it refuses to hand
/// out a chain as `principal`'s when its head or any entry names another principal.
pub fn export(
    path: &Path,
    principal: &PrincipalId,
) -> Result<impl Iterator<Item = Result<String, AuditError>>, AuditError> {
    let head_line = export_head(path, principal)?;
    let (owned_path, expected) = (path.to_owned(), principal.clone());
    let wrong = move |found: &PrincipalId| AuditError::WrongPrincipal {
        path: owned_path.clone(),
        found: found.to_string(),
        expected: expected.to_string(),
    };
    let e_principal = principal.clone();
    let mut failed = false;
    let entries = read_entries(path)?.map(move |r| match r {
        Ok(e) if e.entry.principal != e_principal => Err(wrong(&e.entry.principal)),
        Ok(e) => Ok(entry_json(&e)),
        Err(e) => Err(e),
    });
    // Nothing after the first error: a reader must not take a partial export as whole.
    Ok(entries
        .chain(head_line.map(Ok))
        .take_while(move |r| !std::mem::replace(&mut failed, r.is_err())))
}

/// The last line of [`export`]: the newest intact head (`"type":"head"`) with the state of
/// the other slot, or `None` while the chain has no head. Refuses a head naming another
/// principal. For readers that page through the entries themselves (the kernel's
/// `AuditPage`).
pub fn export_head(path: &Path, principal: &PrincipalId) -> Result<Option<String>, AuditError> {
    let slots = match read_slots(&head_path(path)) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuditError::io(head_path(path), e)),
    };
    let Some((h, other)) = newest_with_other(&slots) else {
        return Ok(None);
    };
    if h.principal != *principal {
        return Err(AuditError::WrongPrincipal {
            path: path.to_owned(),
            found: h.principal.to_string(),
            expected: principal.to_string(),
        });
    }
    let mut v = head_value(&h);
    // The rollback rule of docs/AUDIT-FORMAT.md needs the state of the other slot.
    let (state, generation) = match other {
        Slot::Blank => ("blank", None),
        Slot::Intact(o) => ("intact", Some(o.generation)),
        Slot::Damaged => ("damaged", None),
    };
    v["other_slot"] = state.into();
    if let Some(g) = generation {
        v["other_generation"] = g.into();
    }
    Ok(Some(v.to_string()))
}

/// The newest intact slot's head and the state of the other slot.
fn newest_with_other(slots: &[Slot; 2]) -> Option<(Head, Slot)> {
    let generation = |s: &Slot| match s {
        Slot::Intact(h) => Some(h.generation),
        _ => None,
    };
    let newest = if generation(&slots[0]) > generation(&slots[1]) {
        0
    } else {
        1
    };
    match &slots[newest] {
        Slot::Intact(h) => Some((h.clone(), slots[1 - newest].clone())),
        _ => None,
    }
}

pub fn entry_json(e: &SealedEntry) -> String {
    let en = &e.entry;
    json!({
        "type": "entry",
        "seq": en.seq,
        "time_ms": en.time_ms,
        "principal": en.principal.as_str(),
        "capsule": en.capsule,
        "action": en.action,
        "resource": en.resource,
        "decision": en.decision.as_str(),
        "decision_code": en.decision.code(),
        "outcome": en.outcome,
        "prev_hash": hex::encode(en.prev_hash),
        "hash": hex::encode(e.hash),
        "signature": hex::encode(e.signature),
        "canonical": hex::encode(&e.canonical),
    })
    .to_string()
}

pub fn head_json(h: &Head) -> String {
    head_value(h).to_string()
}

fn head_value(h: &Head) -> serde_json::Value {
    json!({
        "type": "head",
        "generation": h.generation,
        "principal": h.principal.as_str(),
        "public_key": hex::encode(h.public_key),
        "seq": h.seq,
        "entry_hash": hex::encode(h.entry_hash),
        "end_offset": h.end_offset,
        "signature": hex::encode(h.signature),
        "canonical": hex::encode(h.signing_bytes()),
    })
}
