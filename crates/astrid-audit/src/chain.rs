//! The checks `AuditLog::open` and `verify` share: which head to trust, and how each record
//! must follow the one before (seq, principal, link), and what the log must look like
//! against the trusted head once it has been read to the end.
//!
//! Open and verify differ only in what they do with signatures (verify checks every one;
//! open checks those the head does not vouch for, see `log.rs`) and with a torn tail
//! (open cuts it; verify reports it).

use std::io::ErrorKind;
use std::path::Path;

use astrid_crypto::PublicKey;
use astrid_types::PrincipalId;

use crate::entry::{entry_hash, AuditEntry};
use crate::frame::{framed_len, HEADER_LEN};
use crate::head::{read_slots, Head, Slot};
use crate::verify::{VerifyError, VerifyFailure, Witness};

pub(crate) fn fail(seq: Option<u64>, offset: Option<u64>, reason: VerifyFailure) -> VerifyError {
    VerifyError {
        seq,
        offset,
        reason,
    }
}

/// The head a chain is checked against.
#[derive(Debug, Clone)]
pub(crate) struct Trusted {
    pub head: Head,
    /// The other slot is damaged: it may have held a newer head (a write torn by a crash,
    /// or an attacker's flipped byte). Legitimate only if the log goes on past `head`.
    pub other_damaged: bool,
}

/// Reads both head slots and decides which head to trust, or why none can be.
/// `Ok(None)`: no head file, or both slots blank (a chain whose first head write never
/// happened); acceptable only for a log without entries, which [`Linker::finish`] checks.
pub(crate) fn trusted_head(
    head_file: &Path,
    key: &PublicKey,
    principal: &PrincipalId,
) -> Result<Option<Trusted>, VerifyFailure> {
    let slots = match read_slots(head_file) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(VerifyFailure::Io(e.to_string())),
    };
    let newest = slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Slot::Intact(h) => Some((i, h)),
            _ => None,
        })
        .max_by_key(|(_, h)| h.generation);
    let Some((at, head)) = newest else {
        return if slots.iter().all(|s| *s == Slot::Blank) {
            Ok(None)
        } else {
            Err(VerifyFailure::HeadInvalid("no intact slot".into()))
        };
    };
    check_slot_head(head, key, principal)?;
    let other_damaged = match &slots[1 - at] {
        Slot::Intact(older) => {
            check_slot_head(older, key, principal)?;
            if older.generation + 1 != head.generation {
                return Err(VerifyFailure::HeadSlots(format!(
                    "the slots hold generations {} and {}, which are not consecutive",
                    older.generation, head.generation
                )));
            }
            false
        }
        // Generation 1 is the first head ever written (into slot 1); slot 0 stays blank
        // until generation 2. A blank slot beside any later head was erased.
        Slot::Blank if head.generation == 1 => false,
        Slot::Blank => {
            return Err(VerifyFailure::HeadSlots(format!(
                "slot {} is blank beside generation {}: a newer head was erased",
                1 - at,
                head.generation
            )))
        }
        Slot::Damaged => true,
    };
    Ok(Some(Trusted {
        head: head.clone(),
        other_damaged,
    }))
}

fn check_slot_head(
    h: &Head,
    key: &PublicKey,
    principal: &PrincipalId,
) -> Result<(), VerifyFailure> {
    h.verify(key).map_err(|_| {
        VerifyFailure::HeadInvalid(format!(
            "generation {}: signature does not verify with this key",
            h.generation
        ))
    })?;
    if h.principal != *principal {
        return Err(VerifyFailure::HeadPrincipal {
            found: h.principal.to_string(),
            expected: principal.to_string(),
        });
    }
    Ok(())
}

/// Follows the records of one log in file order.
pub(crate) struct Linker<'a> {
    principal: &'a PrincipalId,
    head_seq: u64,
    witness_seq: Option<u64>,
    /// The seq the next record must have.
    pub expected: u64,
    /// Hash of the last linked entry (zeros before the first).
    pub prev_hash: [u8; 32],
    /// Offset just after the last linked record.
    pub end: u64,
    /// Hash and end offset of entry `head_seq`.
    at_head: Option<([u8; 32], u64)>,
    at_witness: Option<[u8; 32]>,
}

impl<'a> Linker<'a> {
    pub(crate) fn new(
        principal: &'a PrincipalId,
        head: Option<&Head>,
        witness: Option<&Witness>,
    ) -> Self {
        Linker {
            principal,
            head_seq: head.map_or(0, |h| h.seq),
            witness_seq: witness.map(|w| w.seq),
            expected: 1,
            prev_hash: [0; 32],
            end: HEADER_LEN,
            at_head: None,
            at_witness: None,
        }
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.expected - 1
    }

    /// Checks that the record at `offset` is the next entry of this principal's chain;
    /// returns its seq and hash.
    pub(crate) fn link(
        &mut self,
        offset: u64,
        canonical: &[u8],
    ) -> Result<(u64, [u8; 32]), VerifyError> {
        let here = |reason| fail(Some(self.expected), Some(offset), reason);
        let entry = AuditEntry::from_canonical(canonical)
            .map_err(|e| here(VerifyFailure::Undecodable(e.to_string())))?;
        if entry.seq != self.expected {
            return Err(here(VerifyFailure::OutOfOrder { found: entry.seq }));
        }
        if entry.principal != *self.principal {
            return Err(here(VerifyFailure::WrongPrincipal {
                found: entry.principal.to_string(),
                expected: self.principal.to_string(),
            }));
        }
        if entry.prev_hash != self.prev_hash {
            return Err(here(VerifyFailure::BrokenLink));
        }
        let hash = entry_hash(canonical);
        self.end = offset + framed_len(canonical.len() + 64);
        if entry.seq == self.head_seq {
            self.at_head = Some((hash, self.end));
        }
        if Some(entry.seq) == self.witness_seq {
            self.at_witness = Some(hash);
        }
        self.prev_hash = hash;
        self.expected += 1;
        Ok((entry.seq, hash))
    }

    /// After the last record: the log against the trusted head (and the witness, if any).
    pub(crate) fn finish(
        &self,
        trusted: Option<&Trusted>,
        witness: Option<&Witness>,
    ) -> Result<(), VerifyError> {
        let last_seq = self.last_seq();
        let Some(t) = trusted else {
            if last_seq > 0 {
                return Err(fail(None, None, VerifyFailure::HeadMissing));
            }
            return self.check_witness(witness);
        };
        let head = &t.head;
        if head.seq > last_seq {
            return Err(fail(
                Some(last_seq + 1),
                None,
                VerifyFailure::Truncated {
                    head_seq: head.seq,
                    last_seq,
                },
            ));
        }
        let (hash, end) = match self.at_head {
            Some(at) => at,
            None => ([0; 32], HEADER_LEN),
        };
        if hash != head.entry_hash {
            return Err(fail(Some(head.seq), None, VerifyFailure::HeadMismatch));
        }
        if end != head.end_offset {
            return Err(fail(
                Some(head.seq),
                None,
                VerifyFailure::HeadOffset {
                    head_end: head.end_offset,
                    actual: end,
                },
            ));
        }
        // The newest slot is damaged and nothing in the log is newer than the older head:
        // exactly what flipping a byte of the newest head and cutting its batch leaves. A
        // crash cannot produce it (a head is written only after its batch is durable).
        if t.other_damaged && last_seq == head.seq {
            return Err(fail(
                None,
                None,
                VerifyFailure::RollbackSuspected {
                    generation: head.generation,
                    head_seq: head.seq,
                },
            ));
        }
        self.check_witness(witness)
    }

    fn check_witness(&self, witness: Option<&Witness>) -> Result<(), VerifyError> {
        let Some(w) = witness else { return Ok(()) };
        let last_seq = self.last_seq();
        if w.seq > last_seq {
            return Err(fail(
                Some(w.seq),
                None,
                VerifyFailure::WitnessAhead {
                    witness_seq: w.seq,
                    last_seq,
                },
            ));
        }
        let found = if w.seq == 0 {
            Some([0; 32])
        } else {
            self.at_witness
        };
        if found != Some(w.entry_hash) {
            return Err(fail(Some(w.seq), None, VerifyFailure::WitnessMismatch));
        }
        Ok(())
    }
}
