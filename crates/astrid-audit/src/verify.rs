//! Full verification of one chain: framing, decoding, sequence, links, signatures, and the
//! signed head. Reports the first bad entry.

use std::fmt;
use std::io::ErrorKind;
use std::path::Path;

use astrid_crypto::PublicKey;
use astrid_types::PrincipalId;

use crate::entry::{entry_hash, signing_message, AuditEntry};
use crate::frame::{Frame, FrameReader};
use crate::head::{head_path, read_head};

/// Entries decoded and linked before their signatures are checked in parallel.
const CHUNK: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked (all of them).
    pub entries: u64,
    pub last_seq: u64,
    pub last_hash: [u8; 32],
    pub principal: Option<PrincipalId>,
    /// Seq the signed head vouches for (it may lag the log after a power loss).
    pub head_seq: u64,
    /// Bytes of an unacknowledged torn tail after the head (a crash mid-append, not yet
    /// cut off by reopening the log). Not an error.
    pub torn_tail_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyFailure {
    Io(String),
    NotALog(String),
    HeadMissing,
    HeadInvalid(String),
    /// The record's bytes are damaged (length or checksum).
    Damaged(String),
    Undecodable(String),
    /// Another seq where this one was expected: an entry was deleted, swapped or inserted.
    OutOfOrder {
        found: u64,
    },
    WrongPrincipal(String),
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
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyFailure::Io(e) => write!(f, "cannot read: {e}"),
            VerifyFailure::NotALog(e) => write!(f, "not an audit log: {e}"),
            VerifyFailure::HeadMissing => f.write_str("the head file is missing"),
            VerifyFailure::HeadInvalid(e) => write!(f, "the head file is invalid: {e}"),
            VerifyFailure::Damaged(e) => write!(f, "record damaged: {e}"),
            VerifyFailure::Undecodable(e) => write!(f, "record undecodable: {e}"),
            VerifyFailure::OutOfOrder { found } => {
                write!(
                    f,
                    "found entry {found} in its place (deleted, reordered or inserted)"
                )
            }
            VerifyFailure::WrongPrincipal(p) => write!(f, "entry belongs to principal {p}"),
            VerifyFailure::BrokenLink => f.write_str("prev_hash does not match the previous entry"),
            VerifyFailure::BadSignature => f.write_str("signature does not verify"),
            VerifyFailure::Truncated { head_seq, last_seq } => write!(
                f,
                "missing: the log ends at entry {last_seq} but the signed head records {head_seq}"
            ),
            VerifyFailure::HeadMismatch => f.write_str("does not match the signed head"),
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

fn fail(seq: Option<u64>, offset: Option<u64>, reason: VerifyFailure) -> VerifyError {
    VerifyError {
        seq,
        offset,
        reason,
    }
}

struct Pending {
    seq: u64,
    offset: u64,
    message: Vec<u8>,
    signature: [u8; 64],
}

/// Verifies the chain at `path` (and its head beside it) against `key`.
pub fn verify(path: &Path, key: &PublicKey) -> Result<VerifyReport, VerifyError> {
    let head = match read_head(&head_path(path)) {
        Ok(Some(h)) => match h.verify(key) {
            Ok(()) => Ok(h),
            Err(_) => Err(VerifyFailure::HeadInvalid(
                "signature does not verify with this key".into(),
            )),
        },
        Ok(None) => Err(VerifyFailure::HeadInvalid("no intact slot".into())),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(VerifyFailure::HeadMissing),
        Err(e) => Err(VerifyFailure::Io(e.to_string())),
    };
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
    let mut chain = Chain {
        expected: 1,
        prev_hash: [0; 32],
        principal: head.as_ref().ok().map(|h| h.principal.clone()),
        head_seq: head.as_ref().map_or(0, |h| h.seq),
        hash_at_head_seq: None,
        torn_tail_bytes: 0,
    };
    let acknowledged_end = head.as_ref().map_or(u64::MAX, |h| h.end_offset);
    let mut chunk = Vec::with_capacity(CHUNK);
    loop {
        let (stop, link_error) = chain.read_chunk(&mut reader, &mut chunk, acknowledged_end);
        if let Some(bad) = first_bad_signature(&chunk, key) {
            return Err(fail(
                Some(bad.seq),
                Some(bad.offset),
                VerifyFailure::BadSignature,
            ));
        }
        if let Some(e) = link_error {
            return Err(e);
        }
        chunk.clear();
        if stop {
            break;
        }
    }
    let head = head.map_err(|reason| fail(None, None, reason))?;
    let last_seq = chain.expected - 1;
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
    if head.seq > 0 && chain.hash_at_head_seq != Some(head.entry_hash) {
        return Err(fail(Some(head.seq), None, VerifyFailure::HeadMismatch));
    }
    Ok(VerifyReport {
        entries: last_seq,
        last_seq,
        last_hash: chain.prev_hash,
        principal: chain.principal,
        head_seq: head.seq,
        torn_tail_bytes: chain.torn_tail_bytes,
    })
}

struct Chain {
    expected: u64,
    prev_hash: [u8; 32],
    principal: Option<PrincipalId>,
    head_seq: u64,
    hash_at_head_seq: Option<[u8; 32]>,
    torn_tail_bytes: u64,
}

impl Chain {
    /// Fills `chunk` with linked entries; returns (end reached, first link error).
    fn read_chunk(
        &mut self,
        reader: &mut FrameReader,
        chunk: &mut Vec<Pending>,
        acknowledged_end: u64,
    ) -> (bool, Option<VerifyError>) {
        while chunk.len() < CHUNK {
            let frame = match reader.next_frame() {
                Ok(f) => f,
                Err(e) => {
                    return (
                        true,
                        Some(fail(
                            Some(self.expected),
                            None,
                            VerifyFailure::Io(e.to_string()),
                        )),
                    )
                }
            };
            match frame {
                Frame::End => return (true, None),
                Frame::Bad { offset, reason } => {
                    if offset >= acknowledged_end {
                        self.torn_tail_bytes = reader.file_len() - offset;
                        return (true, None);
                    }
                    let e = fail(
                        Some(self.expected),
                        Some(offset),
                        VerifyFailure::Damaged(reason.into()),
                    );
                    return (true, Some(e));
                }
                Frame::Record {
                    offset,
                    canonical,
                    signature,
                } => match self.link(offset, canonical) {
                    Ok((seq, message)) => chunk.push(Pending {
                        seq,
                        offset,
                        message,
                        signature,
                    }),
                    Err(e) => return (true, Some(e)),
                },
            }
        }
        (false, None)
    }

    fn link(&mut self, offset: u64, canonical: Vec<u8>) -> Result<(u64, Vec<u8>), VerifyError> {
        let here = |reason| fail(Some(self.expected), Some(offset), reason);
        let entry = AuditEntry::from_canonical(&canonical)
            .map_err(|e| here(VerifyFailure::Undecodable(e.to_string())))?;
        if entry.seq != self.expected {
            return Err(here(VerifyFailure::OutOfOrder { found: entry.seq }));
        }
        match &self.principal {
            Some(p) if *p != entry.principal => {
                return Err(here(VerifyFailure::WrongPrincipal(
                    entry.principal.to_string(),
                )))
            }
            Some(_) => {}
            None => self.principal = Some(entry.principal.clone()),
        }
        if entry.prev_hash != self.prev_hash {
            return Err(here(VerifyFailure::BrokenLink));
        }
        let hash = entry_hash(&canonical);
        if entry.seq == self.head_seq {
            self.hash_at_head_seq = Some(hash);
        }
        self.prev_hash = hash;
        self.expected += 1;
        Ok((entry.seq, signing_message(&canonical, &hash)))
    }
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
