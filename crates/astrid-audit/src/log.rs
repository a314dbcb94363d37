//! The append side: one writer thread per log, group commit, durable before acknowledged.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use astrid_crypto::{now_ms, KeyPair};
use astrid_types::PrincipalId;
use crossbeam_channel::{Receiver, Sender};

use crate::chain::{fail, trusted_head, Linker, Trusted};
use crate::entry::{entry_hash, signing_message, AuditEntry, NewEntry, SealedEntry};
use crate::error::AuditError;
use crate::frame::{encode_record, Frame, FrameReader, FILE_MAGIC, HEADER_LEN};
use crate::head::{head_path, HeadWriter};
use crate::verify::{VerifyError, VerifyFailure};

/// Most entries one fsync covers, and the payload bytes after which a batch is cut.
const MAX_BATCH: usize = 4096;
const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// `principals/<id>/audit.log` under `principals_dir`.
pub fn log_path(principals_dir: &Path, principal: &PrincipalId) -> PathBuf {
    principals_dir.join(principal.as_str()).join("audit.log")
}

/// Counters for measuring group commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppendStats {
    pub entries: u64,
    /// Write + fsync rounds; `entries / batches` is the group-commit factor.
    pub batches: u64,
}

#[derive(Default)]
struct Shared {
    last_seq: AtomicU64,
    entries: AtomicU64,
    batches: AtomicU64,
}

struct Request {
    entry: NewEntry,
    reply: Sender<Result<u64, AuditError>>,
}

/// An open, exclusively locked per-principal audit log. Cheap to share (`&self` appends
/// from any thread).
pub struct AuditLog {
    path: PathBuf,
    principal: PrincipalId,
    tx: Option<Sender<Request>>,
    worker: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    recovered_bytes: u64,
}

impl AuditLog {
    /// Opens (creating if needed) the log at `path` for `principal`, signing with `key`.
    ///
    /// Fails closed: open appends only to a chain it can vouch for (see `scan` for exactly
    /// what it checks: every link and seq, the principal of every entry and of the head,
    /// the head against the log, and the signatures the head does not cover). A damaged
    /// tail that starts after the head's `end_offset` is a crash mid-append (never
    /// acknowledged) and is cut off; anything else wrong is an error, and the file is left
    /// as it was found.
    pub fn open(
        path: &Path,
        principal: PrincipalId,
        key: Arc<KeyPair>,
    ) -> Result<Self, AuditError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| AuditError::io(dir, e))?;
        }
        let io = |e| AuditError::io(path, e);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        file.try_lock().map_err(|e| match e {
            fs::TryLockError::WouldBlock => AuditError::Locked(path.to_owned()),
            fs::TryLockError::Error(e) => io(e),
        })?;

        let head_file = head_path(path);
        let trusted = trusted_head(&head_file, key.public_key(), &principal)
            .map_err(|reason| chain_error(path, fail(None, None, reason)))?;
        let head = trusted.as_ref().map(|t| &t.head);
        if file.metadata().map_err(io)?.len() < HEADER_LEN {
            if let Some(h) = head.filter(|h| h.seq > 0) {
                return Err(AuditError::Truncated {
                    path: path.to_owned(),
                    head_seq: h.seq,
                    last_seq: 0,
                });
            }
            file.set_len(0).map_err(io)?;
            file.write_all_at(FILE_MAGIC, 0).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let tail = scan(path, &file, &principal, trusted.as_ref(), &key)?;
        if let Some(torn_at) = tail.torn_at {
            // Checked first, cut second: a log open refuses is left as it was found.
            file.set_len(torn_at)
                .and_then(|()| file.sync_all())
                .map_err(io)?;
        }

        let mut head_writer = HeadWriter::open(
            &head_file,
            head.map_or(0, |h| h.generation),
            key.clone(),
            principal.clone(),
        )
        .map_err(|e| AuditError::io(&head_file, e))?;
        let head_current = trusted.is_some_and(|t| t.head.seq == tail.last_seq && !t.other_damaged);
        if !head_current {
            head_writer
                .write(tail.last_seq, tail.last_hash, tail.end)
                .and_then(|()| head_writer.sync())
                .map_err(|e| AuditError::io(&head_file, e))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| AuditError::io(dir, e))?;
            }
        }

        let shared = Arc::new(Shared::default());
        shared.last_seq.store(tail.last_seq, Ordering::SeqCst);
        let writer = Writer {
            file,
            head: head_writer,
            key,
            principal: principal.clone(),
            next_seq: tail.last_seq + 1,
            prev_hash: tail.last_hash,
            end: tail.end,
            failed: None,
            head_stale: false,
            shared: shared.clone(),
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        let worker = std::thread::Builder::new()
            .name(format!("audit-{principal}"))
            .spawn(move || writer.run(rx))
            .map_err(io)?;
        Ok(AuditLog {
            path: path.to_owned(),
            principal,
            tx: Some(tx),
            worker: Some(worker),
            shared,
            recovered_bytes: tail.recovered_bytes,
        })
    }

    /// Appends an entry and returns its seq once it is on disk (written and fsynced).
    /// Concurrent callers share fsyncs. An effect whose audit entry cannot be made durable
    /// must not be acknowledged, so an error here means "refuse the effect":
    ///
    /// - a failed *write* (a full disk) refuses only its batch
    ///   ([`AuditError::NotWritten`]): the log is cut back to where it was and the next
    ///   append tries again, so the caller recovers when space returns;
    /// - a failed *fsync*, or a failed cut after a failed write, stops the log: every later
    ///   call fails ([`AuditError::Failed`]) until it is reopened, since the page cache can
    ///   no longer be trusted to match the disk.
    pub fn append(&self, entry: NewEntry) -> Result<u64, AuditError> {
        entry.check_sizes()?;
        let (reply, answer) = crossbeam_channel::bounded(1);
        let tx = self.tx.as_ref().ok_or(AuditError::Closed)?;
        tx.send(Request { entry, reply })
            .map_err(|_| AuditError::Closed)?;
        answer.recv().map_err(|_| AuditError::Closed)?
    }

    /// Seq of the last durable entry (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.shared.last_seq.load(Ordering::SeqCst)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn principal(&self) -> &PrincipalId {
        &self.principal
    }

    /// Bytes of an unacknowledged torn tail that `open` cut off.
    pub fn recovered_bytes(&self) -> u64 {
        self.recovered_bytes
    }

    pub fn stats(&self) -> AppendStats {
        AppendStats {
            entries: self.shared.entries.load(Ordering::Relaxed),
            batches: self.shared.batches.load(Ordering::Relaxed),
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("principal", &self.principal)
            .field("last_seq", &self.last_seq())
            .finish_non_exhaustive()
    }
}

/// A chain open refuses, as the error `open` returns. The old variants are kept for the
/// failures they always named; everything else carries the verifier's own reason.
fn chain_error(path: &Path, e: VerifyError) -> AuditError {
    match e.reason {
        VerifyFailure::Truncated { head_seq, last_seq } => AuditError::Truncated {
            path: path.to_owned(),
            head_seq,
            last_seq,
        },
        VerifyFailure::Damaged(reason) => AuditError::Corrupt {
            path: path.to_owned(),
            offset: e.offset.unwrap_or(0),
            reason,
        },
        VerifyFailure::HeadMissing => AuditError::HeadMissing(path.to_owned()),
        VerifyFailure::HeadInvalid(reason) => AuditError::HeadInvalid {
            path: head_path(path),
            reason,
        },
        _ => AuditError::Chain {
            path: path.to_owned(),
            source: e,
        },
    }
}

struct Tail {
    last_seq: u64,
    last_hash: [u8; 32],
    end: u64,
    /// Where an unacknowledged torn tail starts (cut once everything else checked out).
    torn_at: Option<u64>,
    recovered_bytes: u64,
}

/// What open vouches for before it appends: every record's framing, decoding, seq,
/// principal and link to the one before, all the way to the end; the head against the log
/// (its signature, the hash and end offset of the entry it names, the two slots against
/// each other); and the signatures of the entries the head does not vouch for (those after
/// it) and of the last entry. Entries up to the head need no signature check here: the
/// links fix their bytes, and the signed head fixes the last link. That keeps open at the
/// cost of hashing the file (docs/PERFORMANCE.md); `verify` checks every signature.
fn scan(
    path: &Path,
    file: &File,
    principal: &PrincipalId,
    trusted: Option<&Trusted>,
    key: &KeyPair,
) -> Result<Tail, AuditError> {
    let io = |e| AuditError::io(path, e);
    let mut reader = FrameReader::from_file(file.try_clone().map_err(io)?)
        .map_err(io)?
        .ok_or_else(|| io(ErrorKind::UnexpectedEof.into()))?;
    let head = trusted.map(|t| &t.head);
    let head_seq = head.map_or(0, |h| h.seq);
    let acknowledged_end = head.map_or(HEADER_LEN, |h| h.end_offset);
    let mut linker = Linker::new(principal, head, None);
    let mut last: Option<(u64, u64, Vec<u8>, [u8; 64])> = None;
    let check_signature = |(seq, offset, canonical, signature): (u64, u64, Vec<u8>, [u8; 64])| {
        let message = signing_message(&canonical, &entry_hash(&canonical));
        key.public_key()
            .verify(&message, &signature)
            .map_err(|_| fail(Some(seq), Some(offset), VerifyFailure::BadSignature))
    };
    let mut torn_at = None;
    let mut recovered_bytes = 0;
    loop {
        match reader.next_frame().map_err(io)? {
            Frame::End => break,
            Frame::Record {
                offset,
                canonical,
                signature,
            } => {
                let (seq, _) = linker
                    .link(offset, &canonical)
                    .map_err(|e| chain_error(path, e))?;
                if let Some(prev) = last.take().filter(|(s, ..)| *s > head_seq) {
                    check_signature(prev).map_err(|e| chain_error(path, e))?;
                }
                last = Some((seq, offset, canonical, signature));
            }
            Frame::Bad { offset, reason } => {
                if offset < acknowledged_end {
                    let e = fail(
                        Some(linker.expected),
                        Some(offset),
                        VerifyFailure::Damaged(reason.into()),
                    );
                    return Err(chain_error(path, e));
                }
                torn_at = Some(offset);
                recovered_bytes = reader.file_len() - offset;
                break;
            }
        }
    }
    if let Some(last) = last {
        check_signature(last).map_err(|e| chain_error(path, e))?;
    }
    linker
        .finish(trusted, None)
        .map_err(|e| chain_error(path, e))?;
    Ok(Tail {
        last_seq: linker.last_seq(),
        last_hash: linker.prev_hash,
        end: linker.end,
        torn_at,
        recovered_bytes,
    })
}

struct Writer {
    file: File,
    head: HeadWriter,
    key: Arc<KeyPair>,
    principal: PrincipalId,
    next_seq: u64,
    prev_hash: [u8; 32],
    end: u64,
    failed: Option<String>,
    /// The last durable batch is not covered by the head (its rewrite failed): rewritten
    /// before anything more is acknowledged.
    head_stale: bool,
    shared: Arc<Shared>,
}

/// Why a batch was not acknowledged.
#[derive(Clone)]
enum Refused {
    /// Nothing of the batch reached the log, which is as it was before it; the next batch
    /// may succeed.
    NotWritten(Arc<std::io::Error>),
    /// The log takes no more entries.
    Stopped(String),
}

impl From<&Refused> for AuditError {
    fn from(r: &Refused) -> Self {
        match r {
            Refused::NotWritten(e) => AuditError::NotWritten(e.clone()),
            Refused::Stopped(why) => AuditError::Failed(why.clone()),
        }
    }
}

impl Writer {
    /// Takes whatever has queued up while the previous fsync ran, writes it as one batch,
    /// fsyncs once, then answers every caller in the batch.
    fn run(mut self, rx: Receiver<Request>) {
        let mut batch: Vec<Request> = Vec::new();
        let mut buf = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut bytes = first.entry.outcome.len();
            batch.push(first);
            while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(r) => {
                        bytes += r.entry.outcome.len();
                        batch.push(r);
                    }
                    Err(_) => break,
                }
            }
            let result = self.commit(&mut batch, &mut buf);
            for (i, req) in batch.drain(..).enumerate() {
                let answer = match &result {
                    Ok(first_seq) => Ok(first_seq + i as u64),
                    Err(refused) => Err(refused.into()),
                };
                let _ = req.reply.send(answer);
            }
        }
    }

    fn commit(&mut self, batch: &mut [Request], buf: &mut Vec<u8>) -> Result<u64, Refused> {
        if let Some(why) = &self.failed {
            return Err(Refused::Stopped(why.clone()));
        }
        if self.head_stale {
            // The head could not be rewritten after the last batch (durable, and already
            // acknowledged). Nothing more is acknowledged until the head covers it.
            self.head
                .write(self.next_seq - 1, self.prev_hash, self.end)
                .map_err(|e| Refused::NotWritten(Arc::new(e)))?;
            self.head_stale = false;
        }
        buf.clear();
        let first_seq = self.next_seq;
        let mut prev_hash = self.prev_hash;
        let time_ms = now_ms();
        for (seq, req) in (first_seq..).zip(batch.iter_mut()) {
            let e = &mut req.entry;
            let entry = AuditEntry {
                seq,
                time_ms,
                principal: self.principal.clone(),
                capsule: std::mem::take(&mut e.capsule),
                action: std::mem::take(&mut e.action),
                resource: std::mem::take(&mut e.resource),
                decision: e.decision,
                outcome: std::mem::take(&mut e.outcome),
                prev_hash,
            };
            let sealed = SealedEntry::seal(entry, &self.key);
            encode_record(buf, &sealed.canonical, &sealed.signature);
            prev_hash = sealed.hash;
        }
        if let Err(e) = self.file.write_all_at(buf, self.end) {
            // The write itself failed, typically ENOSPC on a full disk: nothing of this
            // batch is acknowledged, so its effects are refused. Cut whatever part of it
            // reached the file; after the cut the log is exactly as it was before the
            // batch, so the next batch may try again and the daemon recovers when space
            // returns. (A crash before the cut is on disk can leave at most a torn record,
            // which open cuts, or whole records of this batch after the head: entries for
            // effects that were refused, never an effect without its entry.) If the cut
            // fails, the log stops as after a failed fsync.
            if let Err(cut) = self
                .file
                .set_len(self.end)
                .and_then(|()| self.file.sync_data())
            {
                let why = format!("write failed ({e}) and the partial batch was not cut: {cut}");
                self.failed = Some(why.clone());
                return Err(Refused::Stopped(why));
            }
            return Err(Refused::NotWritten(Arc::new(e)));
        }
        if let Err(e) = self.file.sync_data() {
            // After a failed fsync the page cache cannot be trusted (the kernel may have
            // dropped pages it could not write), so the log takes no more entries until
            // reopened.
            let _ = self.file.set_len(self.end);
            let why = format!("fsync failed: {e}");
            self.failed = Some(why.clone());
            return Err(Refused::Stopped(why));
        }
        let count = batch.len() as u64;
        self.end += buf.len() as u64;
        self.next_seq += count;
        self.prev_hash = prev_hash;
        let last_seq = self.next_seq - 1;
        self.shared.last_seq.store(last_seq, Ordering::SeqCst);
        self.shared.entries.fetch_add(count, Ordering::Relaxed);
        self.shared.batches.fetch_add(1, Ordering::Relaxed);
        if self.head.write(last_seq, prev_hash, self.end).is_err() {
            // This batch is durable and is acknowledged; the next ones are not until a head
            // covers it (retried at the next batch, which is refused while that fails).
            self.head_stale = true;
        }
        Ok(first_seq)
    }
}
