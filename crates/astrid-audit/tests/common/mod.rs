//! Helpers shared by the audit tests: a fixed key and raw access to the documented file
//! layout, to tamper with records the way an attacker with write access would.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use astrid_audit::{AuditLog, Decision, NewEntry};
use astrid_crypto::KeyPair;
use astrid_types::PrincipalId;

pub fn key() -> Arc<KeyPair> {
    Arc::new(KeyPair::from_seed(&[21; 32]))
}

pub fn alice() -> PrincipalId {
    PrincipalId::new("alice").unwrap()
}

pub fn entry(i: u64) -> NewEntry {
    let decision = [Decision::Allowed, Decision::Denied, Decision::Recorded][(i % 3) as usize];
    NewEntry::new(
        "astrid-capsule-fs",
        "fs.read",
        format!("fs:read:/home/alice/file-{i}.txt"),
        decision,
        format!("{{\"bytes\":{i},\"note\":\"entry number {i}\"}}"),
    )
}

pub fn log_with(dir: &Path, n: u64) -> PathBuf {
    let path = dir.join("principals/alice/audit.log");
    let log = AuditLog::open(&path, alice(), key()).unwrap();
    for i in 1..=n {
        assert_eq!(log.append(entry(i)).unwrap(), i);
    }
    path
}

/// Byte ranges of each record: 16-byte magic, then `len || payload || crc`.
pub fn records(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut at = 16;
    while at + 4 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let end = at + 4 + len + 4;
        if end > bytes.len() {
            break;
        }
        out.push(at..end);
        at = end;
    }
    out
}

/// Recomputes a record's CRC after tampering with its payload.
pub fn fix_crc(bytes: &mut [u8], record: std::ops::Range<usize>) {
    let body = &bytes[record.start..record.end - 4];
    let sum = crc32fast::hash(body);
    let end = record.end;
    bytes[end - 4..end].copy_from_slice(&sum.to_be_bytes());
}
