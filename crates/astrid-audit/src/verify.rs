//! Full verification of one chain: framing, decoding, sequence, links, signatures, and the
//! signed head. Reports the first bad entry.

use std::fmt;
use std::io::ErrorKind;
use std::path::Path;
use std::str::FromStr;

use astrid_crypto::PublicKey;
use astrid_types::PrincipalId;

use crate::chain::{fail, trusted_head, Linker};
use crate::entry::signing_message;
use crate::frame::{Frame, FrameReader, HEADER_LEN};
use crate::head::head_path;

/// Entries decoded and linked before their signatures are checked in parallel.
const CHUNK: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked (all of them).
    pub entries: u64,
    pub last_seq: u64,
    pub last_hash: [u8; 32],
    /// The principal every entry and the head name (the one asked for).
    pub principal: PrincipalId,
    /// Seq the signed head vouches for (it may lag the log after a power loss).
    pub head_seq: u64,
    /// Bytes of an unacknowledged torn tail after the head (a crash mid-append, not yet
    /// cut off by reopening the log). Not an error.
    pub torn_tail_bytes: u64,
}

impl VerifyReport {
    /// The last entry as a [`Witness`], to keep somewhere else and check against later.
    pub fn witness(&self) -> Witness {
        Witness {
            seq: self.last_seq,
            entry_hash: self.last_hash,
        }
    }
}

/// One entry of a chain as recorded at some moment (`SEQ:HASH`, the hash in hex): kept
/// outside the machine, it detects a later rollback or replacement of the whole chain,
/// which no check of the two files alone can (see docs/AUDIT-FORMAT.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Witness {
    pub seq: u64,
    pub entry_hash: [u8; 32],
}

impl fmt::Display for Witness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, hex::encode(self.entry_hash))
    }
}

impl FromStr for Witness {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("witness `{s}`: expected SEQ:HASH (64 hex characters)");
        let (seq, hash) = s.trim().split_once(':').ok_or_else(bad)?;
        let seq = seq.parse().map_err(|_| bad())?;
        let entry_hash = hex::decode(hash)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(bad)?;
        Ok(Witness { seq, entry_hash })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyFailure {
    Io(String),
    NotALog(String),
    HeadMissing,
    HeadInvalid(String),
    /// The head names another principal than the one asked for.
    HeadPrincipal {
        found: String,
        expected: String,
    },
    /// The two head slots contradict each other (see [`Slot`](crate::Slot)).
    HeadSlots(String),
    /// The record's bytes are damaged (length or checksum).
    Damaged(String),
    Undecodable(String),
    /// Another seq where this one was expected: an entry was deleted, swapped or inserted.
    OutOfOrder {
        found: u64,
    },
    /// The entry names another principal than the one asked for: a transplanted chain.
    WrongPrincipal {
        found: String,
        expected: String,
    },
    /// `prev_hash` is not the hash of the entry before.
    BrokenLink,
    BadSignature,
    /// The log ends before the entry the signed head vouches for.
    Truncated {
        head_seq: u64,
        last_seq: u64,
    },
    /// The entry the head vouches for has another hash.
    HeadMismatch,
    /// The entry the head vouches for does not end at the head's `end_offset`.
    HeadOffset {
        head_end: u64,
        actual: u64,
    },
    /// The newest head slot is damaged and the log ends exactly at the older head.
    RollbackSuspected {
        generation: u64,
        head_seq: u64,
    },
    /// The chain ends before the entry the witness recorded.
    WitnessAhead {
        witness_seq: u64,
        last_seq: u64,
    },
    /// The entry at the witness's seq has another hash.
    WitnessMismatch,
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyFailure::Io(e) => write!(f, "cannot read: {e}"),
            VerifyFailure::NotALog(e) => write!(f, "not an audit log: {e}"),
            VerifyFailure::HeadMissing => f.write_str("the head file is missing"),
            VerifyFailure::HeadInvalid(e) => write!(f, "the head file is invalid: {e}"),
            VerifyFailure::HeadPrincipal { found, expected } => write!(
                f,
                "the signed head belongs to principal `{found}`, not `{expected}` \
                 (a chain copied from another principal?)"
            ),
            VerifyFailure::HeadSlots(e) => write!(f, "the head file is inconsistent: {e}"),
            VerifyFailure::Damaged(e) => write!(f, "record damaged: {e}"),
            VerifyFailure::Undecodable(e) => write!(f, "record undecodable: {e}"),
            VerifyFailure::OutOfOrder { found } => {
                write!(
                    f,
                    "found entry {found} in its place (deleted, reordered or inserted)"
                )
            }
            VerifyFailure::WrongPrincipal { found, expected } => write!(
                f,
                "entry belongs to principal `{found}`, not `{expected}` \
                 (a chain copied from another principal?)"
            ),
            VerifyFailure::BrokenLink => f.write_str("prev_hash does not match the previous entry"),
            VerifyFailure::BadSignature => f.write_str("signature does not verify"),
            VerifyFailure::Truncated { head_seq, last_seq } => write!(
                f,
                "missing: the log ends at entry {last_seq} but the signed head records {head_seq}"
            ),
            VerifyFailure::HeadMismatch => f.write_str("does not match the signed head"),
            VerifyFailure::HeadOffset { head_end, actual } => write!(
                f,
                "ends at byte {actual} but the signed head records byte {head_end}"
            ),
            VerifyFailure::RollbackSuspected {
                generation,
                head_seq,
            } => write!(
                f,
                "the newest head slot is damaged and the log ends exactly at the older head \
                 (generation {generation}, entry {head_seq}): the newest head and the entries \
                 after it may have been removed"
            ),
            VerifyFailure::WitnessAhead {
                witness_seq,
                last_seq,
            } => write!(
                f,
                "the witness recorded entry {witness_seq} but the chain ends at entry \
                 {last_seq}: rolled back or replaced"
            ),
            VerifyFailure::WitnessMismatch => {
                f.write_str("is not the entry the witness recorded: the chain was replaced")
            }
        }
    }
}

/// The first problem found. `seq` names the entry (the one expected at that position when
/// the record itself is unreadable); `None` for problems not tied to one entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct VerifyError {
    pub seq: Option<u64>,
    pub offset: Option<u64>,
    pub reason: VerifyFailure,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.seq, self.offset) {
            (Some(seq), Some(off)) => write!(f, "entry {seq} (byte {off}): {}", self.reason),
            (Some(seq), None) => write!(f, "entry {seq}: {}", self.reason),
            _ => write!(f, "{}", self.reason),
        }
    }
}

struct Pending {
    seq: u64,
    offset: u64,
    message: Vec<u8>,
    signature: [u8; 64],
}

/// Verifies the chain at `path` (and its head beside it) against `key`, as the chain of
/// `principal`: every entry and the head must name it, so a chain copied over from another
/// principal (signed by the same runtime key) fails.
pub fn verify(
    path: &Path,
    key: &PublicKey,
    principal: &PrincipalId,
) -> Result<VerifyReport, VerifyError> {
    verify_against(path, key, principal, None)
}

/// [`verify`], and also that the chain still contains the entry `witness` recorded
/// earlier (kept outside the machine): a chain rolled back before it, or replaced, fails.
pub fn verify_against(
    path: &Path,
    key: &PublicKey,
    principal: &PrincipalId,
    witness: Option<&Witness>,
) -> Result<VerifyReport, VerifyError> {
    // A head problem is reported after the entries, so that a damaged entry is named even
    // when the head is unusable too.
    let trusted = trusted_head(&head_path(path), key, principal);
    let mut reader = match FrameReader::open(path) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Err(fail(
                None,
                None,
                VerifyFailure::NotALog("shorter than its header".into()),
            ))
        }
        Err(e) if e.kind() == ErrorKind::InvalidData => {
            return Err(fail(None, None, VerifyFailure::NotALog(e.to_string())))
        }
        Err(e) => return Err(fail(None, None, VerifyFailure::Io(e.to_string()))),
    };
    let head = trusted.as_ref().ok().and_then(|t| t.as_ref());
    let mut linker = Linker::new(principal, head.map(|t| &t.head), witness);
    // Without a usable head nothing is acknowledged for sure: any damage is an error.
    let acknowledged_end = match &trusted {
        Ok(Some(t)) => t.head.end_offset,
        Ok(None) => HEADER_LEN,
        Err(_) => u64::MAX,
    };
    let mut torn_tail_bytes = 0;
    let mut chunk = Vec::with_capacity(CHUNK);
    loop {
        let (stop, error) = read_chunk(
            &mut reader,
            &mut linker,
            &mut chunk,
            acknowledged_end,
            &mut torn_tail_bytes,
        );
        if let Some(bad) = first_bad_signature(&chunk, key) {
            return Err(fail(
                Some(bad.seq),
                Some(bad.offset),
                VerifyFailure::BadSignature,
            ));
        }
        if let Some(e) = error {
            return Err(e);
        }
        chunk.clear();
        if stop {
            break;
        }
    }
    let trusted = trusted.map_err(|reason| fail(None, None, reason))?;
    linker.finish(trusted.as_ref(), witness)?;
    let last_seq = linker.last_seq();
    Ok(VerifyReport {
        entries: last_seq,
        last_seq,
        last_hash: linker.prev_hash,
        principal: principal.clone(),
        head_seq: trusted.as_ref().map_or(0, |t| t.head.seq),
        torn_tail_bytes,
    })
}

/// Fills `chunk` with linked entries; returns (end reached, first error).
fn read_chunk(
    reader: &mut FrameReader,
    linker: &mut Linker<'_>,
    chunk: &mut Vec<Pending>,
    acknowledged_end: u64,
    torn_tail_bytes: &mut u64,
) -> (bool, Option<VerifyError>) {
    while chunk.len() < CHUNK {
        let frame = match reader.next_frame() {
            Ok(f) => f,
            Err(e) => {
                let e = fail(
                    Some(linker.expected),
                    None,
                    VerifyFailure::Io(e.to_string()),
                );
                return (true, Some(e));
            }
        };
        match frame {
            Frame::End => return (true, None),
            Frame::Bad { offset, reason } => {
                if offset >= acknowledged_end {
                    *torn_tail_bytes = reader.file_len() - offset;
                    return (true, None);
                }
                let e = fail(
                    Some(linker.expected),
                    Some(offset),
                    VerifyFailure::Damaged(reason.into()),
                );
                return (true, Some(e));
            }
            Frame::Record {
                offset,
                canonical,
                signature,
            } => match linker.link(offset, &canonical) {
                Ok((seq, hash)) => chunk.push(Pending {
                    seq,
                    offset,
                    message: signing_message(&canonical, &hash),
                    signature,
                }),
                Err(e) => return (true, Some(e)),
            },
        }
    }
    (false, None)
}

/// Checks the chunk's signatures on all cores; returns the earliest failure.
fn first_bad_signature<'a>(chunk: &'a [Pending], key: &PublicKey) -> Option<&'a Pending> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let check = |part: &'a [Pending]| {
        part.iter()
            .find(|p| key.verify(&p.message, &p.signature).is_err())
    };
    if threads < 2 || chunk.len() < 64 {
        return check(chunk);
    }
    let per = chunk.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = chunk
            .chunks(per)
            .map(|part| s.spawn(move || check(part)))
            .collect();
        handles
            .into_iter()
            .find_map(|h| h.join().expect("verify worker panicked"))
    })
}
