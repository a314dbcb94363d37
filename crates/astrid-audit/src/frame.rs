//! On-disk framing of the log file: a 16-byte magic, then records
//! `u32 BE payload length || payload || u32 BE CRC-32 of (length || payload)`, where the
//! payload is an entry's canonical bytes followed by its 64-byte signature.
//!
//! The CRC is not security (the signature is); it tells a torn tail (a crash mid-append)
//! from a complete record, so recovery can cut exactly the unacknowledged bytes.

use std::fs::File;
use std::io::{self, BufReader, ErrorKind, Read};
use std::path::Path;

use crate::entry::{ENTRY_DOMAIN, MAX_OUTCOME, MAX_TEXT_FIELD};

pub(crate) const FILE_MAGIC: &[u8; 16] = b"ASTRID-AUDIT-v1\n";
pub(crate) const HEADER_LEN: u64 = FILE_MAGIC.len() as u64;
/// Canonical fields: 9 length prefixes, 8+8+1+32 fixed bytes, the text fields.
const MAX_PAYLOAD: usize =
    ENTRY_DOMAIN.len() + 9 * 4 + 49 + 64 + 3 * MAX_TEXT_FIELD + MAX_OUTCOME + 64;
const MIN_PAYLOAD: usize = ENTRY_DOMAIN.len() + 64;

pub(crate) fn crc(len_bytes: &[u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_bytes);
    h.update(payload);
    h.finalize()
}

/// Appends one framed record to `out`.
pub(crate) fn encode_record(out: &mut Vec<u8>, canonical: &[u8], signature: &[u8; 64]) {
    let len = u32::try_from(canonical.len() + 64).expect("entry sizes are capped far below 4 GiB");
    let len_bytes = len.to_be_bytes();
    let start = out.len();
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(canonical);
    out.extend_from_slice(signature);
    let sum = crc(&len_bytes, &out[start + 4..]);
    out.extend_from_slice(&sum.to_be_bytes());
}

pub(crate) fn framed_len(payload_len: usize) -> u64 {
    payload_len as u64 + 8
}

#[derive(Debug)]
pub(crate) enum Frame {
    Record {
        offset: u64,
        canonical: Vec<u8>,
        signature: [u8; 64],
    },
    /// Clean end of file.
    End,
    /// The bytes from `offset` on are not a complete, intact record.
    Bad { offset: u64, reason: &'static str },
}

pub(crate) struct FrameReader {
    reader: BufReader<File>,
    offset: u64,
    file_len: u64,
    stopped: bool,
}

impl FrameReader {
    /// Opens `path` and checks the magic. `Ok(None)` when the file is shorter than the
    /// magic (a log whose creation never finished).
    pub(crate) fn open(path: &Path) -> io::Result<Option<FrameReader>> {
        let file = File::open(path)?;
        Self::from_file(file)
    }

    pub(crate) fn from_file(file: File) -> io::Result<Option<FrameReader>> {
        let file_len = file.metadata()?.len();
        if file_len < HEADER_LEN {
            return Ok(None);
        }
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut magic = [0u8; 16];
        reader.read_exact(&mut magic)?;
        if &magic != FILE_MAGIC {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                "not an Astrid audit log (bad magic)",
            ));
        }
        Ok(Some(FrameReader {
            reader,
            offset: HEADER_LEN,
            file_len,
            stopped: false,
        }))
    }

    pub(crate) fn file_len(&self) -> u64 {
        self.file_len
    }

    pub(crate) fn next_frame(&mut self) -> io::Result<Frame> {
        if self.stopped || self.offset == self.file_len {
            return Ok(Frame::End);
        }
        let offset = self.offset;
        let remaining = self.file_len - offset;
        let bad = |this: &mut Self, reason| {
            this.stopped = true;
            Ok(Frame::Bad { offset, reason })
        };
        if remaining < 4 {
            return bad(self, "incomplete length prefix");
        }
        let mut len_bytes = [0u8; 4];
        self.reader.read_exact(&mut len_bytes)?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&len) {
            return bad(self, "implausible record length");
        }
        if remaining < framed_len(len) {
            return bad(self, "record extends past the end of the file");
        }
        let mut payload = vec![0u8; len];
        self.reader.read_exact(&mut payload)?;
        let mut sum = [0u8; 4];
        self.reader.read_exact(&mut sum)?;
        if u32::from_be_bytes(sum) != crc(&len_bytes, &payload) {
            return bad(self, "record checksum mismatch");
        }
        self.offset += framed_len(len);
        let sig_at = len - 64;
        let signature: [u8; 64] = payload[sig_at..].try_into().expect("64 bytes");
        payload.truncate(sig_at);
        Ok(Frame::Record {
            offset,
            canonical: payload,
            signature,
        })
    }
}
