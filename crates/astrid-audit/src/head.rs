//! The signed head: a small file beside the log naming its last entry (seq, hash, end
//! offset). Deleting whole entries from the end of a hash chain leaves a valid shorter
//! chain; the head is what makes that visible.
//!
//! The file has two 4 KiB slots written alternately (by generation parity), each
//! `u32 BE length || body || u32 BE CRC-32`. A write torn by a crash damages at most the slot
//! being written; the other still holds the previous head. The head is rewritten after each
//! durable batch of the log and is itself not fsynced: after a power loss it may lag the log,
//! which verification accepts (entries past the head are checked like any others).
//! Which slot is trusted, and when a damaged slot means a rollback rather than a crash, is
//! decided in `chain.rs`. Limit: someone who kept older copies of both files can put them
//! back; only a witness kept off the machine (`verify_against`) catches that.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use astrid_crypto::canonical::{CanonicalReader, CanonicalWriter};
use astrid_crypto::{CryptoError, DecodeError, KeyPair, PublicKey};
use astrid_types::PrincipalId;

use crate::frame::crc;

pub const HEAD_DOMAIN: &[u8] = b"astrid-audit-head-v1\0";
const SLOT: u64 = 4096;

/// `audit.log` → `audit.head`.
pub fn head_path(log_path: &Path) -> PathBuf {
    log_path.with_extension("head")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Incremented on each rewrite; the valid slot with the higher one wins.
    pub generation: u64,
    pub principal: PrincipalId,
    /// The signer's public key (informational: verifiers bring their own trusted key).
    pub public_key: [u8; 32],
    /// Last entry's seq (0: no entries yet).
    pub seq: u64,
    /// Last entry's hash (zeros when there is none).
    pub entry_hash: [u8; 32],
    /// Byte length of the log file after that entry.
    pub end_offset: u64,
    pub signature: [u8; 64],
}

impl Head {
    pub(crate) fn signed(
        key: &KeyPair,
        generation: u64,
        principal: &PrincipalId,
        seq: u64,
        entry_hash: [u8; 32],
        end_offset: u64,
    ) -> Self {
        let mut head = Head {
            generation,
            principal: principal.clone(),
            public_key: key.public_key().to_bytes(),
            seq,
            entry_hash,
            end_offset,
            signature: [0; 64],
        };
        head.signature = key.sign(&head.signing_bytes());
        head
    }

    /// [`HEAD_DOMAIN`], then generation, principal, public_key, seq, entry_hash,
    /// end_offset as length-prefixed fields.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut w = CanonicalWriter::new(HEAD_DOMAIN);
        w.u64(self.generation)
            .str(self.principal.as_str())
            .bytes(&self.public_key)
            .u64(self.seq)
            .bytes(&self.entry_hash)
            .u64(self.end_offset);
        w.finish()
    }

    pub fn verify(&self, key: &PublicKey) -> Result<(), CryptoError> {
        key.verify(&self.signing_bytes(), &self.signature)
    }

    fn encode_slot(&self) -> Vec<u8> {
        let mut body = self.signing_bytes();
        let len = u32::try_from(body.len() + 68).expect("head is small");
        let mut w = CanonicalWriter::new(&[]);
        w.bytes(&self.signature);
        body.extend_from_slice(w.as_slice());
        let len_bytes = len.to_be_bytes();
        let mut slot = Vec::with_capacity(body.len() + 8);
        slot.extend_from_slice(&len_bytes);
        slot.extend_from_slice(&body);
        slot.extend_from_slice(&crc(&len_bytes, &body).to_be_bytes());
        slot
    }

    fn decode_slot(slot: &[u8]) -> Option<Head> {
        let (len_bytes, rest) = slot.split_first_chunk::<4>()?;
        let len = u32::from_be_bytes(*len_bytes) as usize;
        if len + 8 > SLOT as usize || rest.len() < len + 4 {
            return None;
        }
        let (body, rest) = rest.split_at(len);
        if rest[..4] != crc(len_bytes, body).to_be_bytes() {
            return None;
        }
        Self::decode_body(body).ok()
    }

    fn decode_body(body: &[u8]) -> Result<Head, DecodeError> {
        let mut r = CanonicalReader::new(body, HEAD_DOMAIN)?;
        let generation = r.u64("generation")?;
        let principal =
            PrincipalId::new(r.str("principal")?).map_err(|e| DecodeError::Invalid {
                field: "principal",
                reason: e.to_string(),
            })?;
        let public_key = r.fixed::<32>("public_key")?;
        let seq = r.u64("seq")?;
        let entry_hash = r.fixed::<32>("entry_hash")?;
        let end_offset = r.u64("end_offset")?;
        let signature = r.fixed::<64>("signature")?;
        r.finish()?;
        Ok(Head {
            generation,
            principal,
            public_key,
            seq,
            entry_hash,
            end_offset,
            signature,
        })
    }
}

/// What one 4 KiB slot of the head file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// Never written: every byte is zero, or the file ends before the slot starts.
    Blank,
    /// Intact: `len` is plausible, the CRC matches, the body decodes strictly as a head,
    /// and the head's generation has the slot's parity (generation g lives in slot g mod 2).
    /// Its signature is checked separately, against a key the caller trusts.
    Intact(Head),
    /// Anything else: a write torn by a crash, damage, or tampering.
    Damaged,
}

/// Both slots of the head file at `path`.
pub fn read_slots(path: &Path) -> io::Result<[Slot; 2]> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    Ok([0u64, 1].map(|i| {
        let start = (i * SLOT) as usize;
        let Some(rest) = bytes.get(start..) else {
            return Slot::Blank;
        };
        let slot = &rest[..rest.len().min(SLOT as usize)];
        if slot.iter().all(|&b| b == 0) {
            return Slot::Blank;
        }
        match Head::decode_slot(slot) {
            Some(h) if h.generation % 2 == i => Slot::Intact(h),
            _ => Slot::Damaged,
        }
    }))
}

/// The newest intact slot (no signature check). `Ok(None)`: no slot is intact.
pub fn read_head(path: &Path) -> io::Result<Option<Head>> {
    let slots = read_slots(path)?;
    Ok(slots
        .into_iter()
        .filter_map(|s| match s {
            Slot::Intact(h) => Some(h),
            _ => None,
        })
        .max_by_key(|h| h.generation))
}

/// Rewrites the head after each durable batch.
pub(crate) struct HeadWriter {
    file: File,
    generation: u64,
    key: Arc<KeyPair>,
    principal: PrincipalId,
}

impl HeadWriter {
    /// `generation`: that of the newest head on disk (0 when there is none).
    pub(crate) fn open(
        path: &Path,
        generation: u64,
        key: Arc<KeyPair>,
        principal: PrincipalId,
    ) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        if file.metadata()?.len() < 2 * SLOT {
            file.set_len(2 * SLOT)?;
        }
        Ok(HeadWriter {
            file,
            generation,
            key,
            principal,
        })
    }

    /// Writes the next generation into the slot not holding the current one.
    pub(crate) fn write(
        &mut self,
        seq: u64,
        entry_hash: [u8; 32],
        end_offset: u64,
    ) -> io::Result<()> {
        let generation = self.generation + 1;
        let head = Head::signed(
            &self.key,
            generation,
            &self.principal,
            seq,
            entry_hash,
            end_offset,
        );
        self.file
            .write_all_at(&head.encode_slot(), (generation % 2) * SLOT)?;
        self.generation = generation;
        Ok(())
    }

    pub(crate) fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }
}
