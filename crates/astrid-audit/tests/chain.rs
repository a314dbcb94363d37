//! Appending, reading back, exporting, and every kind of tampering `verify` must catch.

mod common;

use std::fs;
use std::sync::Arc;

use astrid_audit::{
    entry_hash, export, head_path, read_entries, verify, AuditEntry, AuditError, AuditLog,
    Decision, NewEntry, SealedEntry, VerifyFailure, MAX_TEXT_FIELD,
};
use astrid_crypto::KeyPair;
use astrid_types::PrincipalId;
use common::{alice, entry, fix_crc, key, log_with, records};

fn verify_err(path: &std::path::Path) -> (Option<u64>, VerifyFailure) {
    let e = verify(path, key().public_key(), &alice()).unwrap_err();
    (e.seq, e.reason)
}

#[test]
fn append_read_back_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 10);
    let report = verify(&path, key().public_key(), &alice()).unwrap();
    assert_eq!(report.entries, 10);
    assert_eq!(report.head_seq, 10);
    assert_eq!(report.principal, alice());
    assert_eq!(report.torn_tail_bytes, 0);

    let entries: Vec<SealedEntry> = read_entries(&path).unwrap().map(Result::unwrap).collect();
    assert_eq!(entries.len(), 10);
    let mut prev = [0u8; 32];
    for (i, e) in (1..).zip(&entries) {
        let expected = entry(i);
        assert_eq!(e.entry.seq, i);
        assert_eq!(e.entry.principal, alice());
        assert_eq!(e.entry.resource, expected.resource);
        assert_eq!(e.entry.outcome, expected.outcome);
        assert_eq!(e.entry.decision, expected.decision);
        assert_eq!(e.entry.prev_hash, prev);
        assert_eq!(e.hash, entry_hash(&e.canonical));
        assert_eq!(AuditEntry::from_canonical(&e.canonical).unwrap(), e.entry);
        e.verify(key().public_key()).unwrap();
        prev = e.hash;
    }
    assert_eq!(report.last_hash, prev);

    // Reopening continues the same chain.
    let log = AuditLog::open(&path, alice(), key()).unwrap();
    assert_eq!(log.last_seq(), 10);
    assert_eq!(log.recovered_bytes(), 0);
    assert_eq!(log.append(entry(11)).unwrap(), 11);
    drop(log);
    assert_eq!(
        verify(&path, key().public_key(), &alice()).unwrap().entries,
        11
    );
}

#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 1);
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&head_path(&path)), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
}

#[test]
fn concurrent_appends_get_unique_contiguous_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = Arc::new(AuditLog::open(&path, alice(), key()).unwrap());
    let mut seqs: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let log = log.clone();
                s.spawn(move || {
                    (0..50)
                        .map(|i| log.append(entry(t * 100 + i)).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=400).collect::<Vec<_>>());
    let stats = log.stats();
    assert_eq!(stats.entries, 400);
    assert!(stats.batches >= 1 && stats.batches <= 400, "{stats:?}");
    drop(log);
    assert_eq!(
        verify(&path, key().public_key(), &alice()).unwrap().entries,
        400
    );
}

#[test]
fn one_byte_changed_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 10);
    let original = fs::read(&path).unwrap();
    let rec = records(&original)[4].clone();

    // Raw flip: the record checksum catches it.
    let mut bytes = original.clone();
    bytes[rec.start + 60] ^= 0x20;
    fs::write(&path, &bytes).unwrap();
    let (seq, reason) = verify_err(&path);
    assert_eq!(seq, Some(5));
    assert!(matches!(reason, VerifyFailure::Damaged(_)), "{reason}");

    // Flip with the checksum recomputed (it is not a MAC): the signature catches it.
    let mut bytes = original.clone();
    let outcome_at = rec.end - 4 - 64 - 4 - 32 - 10;
    bytes[outcome_at] ^= 0x01;
    fix_crc(&mut bytes, rec.clone());
    fs::write(&path, &bytes).unwrap();
    assert_eq!(verify_err(&path), (Some(5), VerifyFailure::BadSignature));

    // Flip inside the signature itself.
    let mut bytes = original;
    bytes[rec.end - 10] ^= 0x80;
    fix_crc(&mut bytes, rec);
    fs::write(&path, &bytes).unwrap();
    assert_eq!(verify_err(&path), (Some(5), VerifyFailure::BadSignature));
}

#[test]
fn deleted_entry_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 10);
    let mut bytes = fs::read(&path).unwrap();
    let rec = records(&bytes)[4].clone();
    bytes.drain(rec);
    fs::write(&path, &bytes).unwrap();
    let e = verify(&path, key().public_key(), &alice()).unwrap_err();
    assert_eq!(
        (e.seq, e.reason.clone()),
        (Some(5), VerifyFailure::OutOfOrder { found: 6 })
    );
    assert!(e.to_string().starts_with("entry 5 (byte "), "{e}");
}

#[test]
fn swapped_entries_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 10);
    let bytes = fs::read(&path).unwrap();
    let recs = records(&bytes);
    let mut swapped = bytes[..recs[3].start].to_vec();
    swapped.extend_from_slice(&bytes[recs[4].clone()]);
    swapped.extend_from_slice(&bytes[recs[3].clone()]);
    swapped.extend_from_slice(&bytes[recs[5].start..]);
    assert_eq!(swapped.len(), bytes.len());
    fs::write(&path, &swapped).unwrap();
    assert_eq!(
        verify_err(&path),
        (Some(4), VerifyFailure::OutOfOrder { found: 5 })
    );
}

#[test]
fn re_signed_entry_with_broken_link_is_named() {
    // An attacker holding the key could re-sign, but without it a rewritten entry that keeps
    // its seq still breaks the next entry's link: here entry 3 is replaced by a validly
    // signed entry with another outcome, and entry 4 no longer links to it.
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 5);
    let bytes = fs::read(&path).unwrap();
    let recs = records(&bytes);
    let old = read_entries(&path).unwrap().nth(2).unwrap().unwrap();
    let mut forged = old.entry.clone();
    forged.outcome = "{\"bytes\":0}".into();
    let sealed = SealedEntry::seal(forged, &key());
    let mut record = Vec::new();
    let len = (sealed.canonical.len() + 64) as u32;
    record.extend_from_slice(&len.to_be_bytes());
    record.extend_from_slice(&sealed.canonical);
    record.extend_from_slice(&sealed.signature);
    record.extend_from_slice(&crc32fast::hash(&record).to_be_bytes());
    let mut out = bytes[..recs[2].start].to_vec();
    out.extend_from_slice(&record);
    out.extend_from_slice(&bytes[recs[2].end..]);
    fs::write(&path, &out).unwrap();
    assert_eq!(verify_err(&path), (Some(4), VerifyFailure::BrokenLink));
}

#[test]
fn truncated_tail_is_detected_through_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 10);
    let bytes = fs::read(&path).unwrap();
    let recs = records(&bytes);
    fs::write(&path, &bytes[..recs[6].end]).unwrap();
    assert_eq!(
        verify_err(&path),
        (
            Some(8),
            VerifyFailure::Truncated {
                head_seq: 10,
                last_seq: 7
            }
        )
    );
    let err = AuditLog::open(&path, alice(), key()).unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::Truncated {
                head_seq: 10,
                last_seq: 7,
                ..
            }
        ),
        "{err}"
    );

    // Cutting in the middle of an acknowledged record is damage, not a torn tail.
    fs::write(&path, &bytes[..recs[8].start + 20]).unwrap();
    let (seq, reason) = verify_err(&path);
    assert_eq!(seq, Some(9));
    assert!(matches!(reason, VerifyFailure::Damaged(_)), "{reason}");
    assert!(matches!(
        AuditLog::open(&path, alice(), key()).unwrap_err(),
        AuditError::Corrupt { .. }
    ));

    // Emptying the log entirely is caught as well.
    fs::write(&path, b"").unwrap();
    assert!(matches!(
        AuditLog::open(&path, alice(), key()).unwrap_err(),
        AuditError::Truncated {
            head_seq: 10,
            last_seq: 0,
            ..
        }
    ));
}

#[test]
fn entry_appended_with_another_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 10);
    let last = read_entries(&path).unwrap().last().unwrap().unwrap();
    let intruder = KeyPair::from_seed(&[99; 32]);
    let forged = AuditEntry {
        seq: 11,
        time_ms: last.entry.time_ms + 1,
        principal: alice(),
        capsule: "kernel".into(),
        action: "capability.mint".into(),
        resource: "fs:write:/**".into(),
        decision: Decision::Recorded,
        outcome: "granted".into(),
        prev_hash: last.hash,
    };
    let sealed = SealedEntry::seal(forged, &intruder);
    let mut record = Vec::new();
    record.extend_from_slice(&((sealed.canonical.len() + 64) as u32).to_be_bytes());
    record.extend_from_slice(&sealed.canonical);
    record.extend_from_slice(&sealed.signature);
    record.extend_from_slice(&crc32fast::hash(&record).to_be_bytes());
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&record);
    fs::write(&path, &bytes).unwrap();
    assert_eq!(verify_err(&path), (Some(11), VerifyFailure::BadSignature));
}

#[test]
fn head_signed_by_another_key_or_missing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 3);
    let other = Arc::new(KeyPair::from_seed(&[98; 32]));
    let err = AuditLog::open(&path, alice(), other.clone()).unwrap_err();
    assert!(matches!(err, AuditError::HeadInvalid { .. }), "{err}");
    let (seq, reason) = (
        verify(&path, other.public_key(), &alice()).unwrap_err().seq,
        verify(&path, other.public_key(), &alice())
            .unwrap_err()
            .reason,
    );
    assert_eq!((seq, reason), (Some(1), VerifyFailure::BadSignature));

    let bob = PrincipalId::new("bob").unwrap();
    let err = AuditLog::open(&path, bob, key()).unwrap_err();
    assert!(
        matches!(
            &err,
            AuditError::Chain { source, .. }
                if matches!(source.reason, VerifyFailure::HeadPrincipal { .. })
        ),
        "{err}"
    );

    fs::remove_file(head_path(&path)).unwrap();
    assert_eq!(verify_err(&path), (None, VerifyFailure::HeadMissing));
    assert!(matches!(
        AuditLog::open(&path, alice(), key()).unwrap_err(),
        AuditError::HeadMissing(_)
    ));
}

#[test]
fn torn_tail_is_cut_on_open_and_chain_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 10);
    let bytes = fs::read(&path).unwrap();
    let recs = records(&bytes);
    // A record that was being appended when the process died: half of a real one.
    let partial = bytes[recs[9].start..recs[9].start + 37].to_vec();
    let mut torn = bytes.clone();
    torn.extend_from_slice(&partial);
    fs::write(&path, &torn).unwrap();
    // Not acknowledged, so not an error; verify reports it.
    let report = verify(&path, key().public_key(), &alice()).unwrap();
    assert_eq!((report.entries, report.torn_tail_bytes), (10, 37));

    let log = AuditLog::open(&path, alice(), key()).unwrap();
    assert_eq!(log.recovered_bytes(), 37);
    assert_eq!(fs::metadata(&path).unwrap().len(), bytes.len() as u64);
    assert_eq!(log.append(entry(11)).unwrap(), 11);
    drop(log);
    let report = verify(&path, key().public_key(), &alice()).unwrap();
    assert_eq!((report.entries, report.torn_tail_bytes), (11, 0));

    // Garbage (not a prefix of a record) after the head is cut the same way.
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0xff; 5]);
    fs::write(&path, &bytes).unwrap();
    let log = AuditLog::open(&path, alice(), key()).unwrap();
    assert_eq!(log.recovered_bytes(), 5);
}

#[test]
fn second_handle_is_refused_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path, alice(), key()).unwrap();
    assert!(matches!(
        AuditLog::open(&path, alice(), key()).unwrap_err(),
        AuditError::Locked(_)
    ));
    // Reading and verifying while it is open is fine.
    log.append(entry(1)).unwrap();
    assert_eq!(
        verify(&path, key().public_key(), &alice()).unwrap().entries,
        1
    );
    drop(log);
    AuditLog::open(&path, alice(), key()).unwrap();
}

#[test]
fn oversized_fields_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path, alice(), key()).unwrap();
    let big = NewEntry::new(
        "x",
        "a".repeat(MAX_TEXT_FIELD + 1),
        "r",
        Decision::Denied,
        "",
    );
    assert!(matches!(
        log.append(big).unwrap_err(),
        AuditError::FieldTooLong {
            field: "action",
            ..
        }
    ));
    assert_eq!(log.last_seq(), 0);
    assert_eq!(log.append(entry(1)).unwrap(), 1);
}

#[test]
fn export_has_every_field_and_the_signed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 4);
    let lines: Vec<String> = export(&path, &alice())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(lines.len(), 5);
    let pk = key().public_key().clone();
    let mut prev = "0".repeat(64);
    for (i, line) in (1..).zip(&lines[..4]) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let expected = entry(i);
        assert_eq!(v["type"], "entry");
        assert_eq!(v["seq"], i);
        assert_eq!(v["principal"], "alice");
        assert_eq!(v["capsule"], expected.capsule);
        assert_eq!(v["action"], expected.action);
        assert_eq!(v["resource"], expected.resource);
        assert_eq!(v["decision"], expected.decision.as_str());
        assert_eq!(v["decision_code"], expected.decision.code());
        assert_eq!(v["outcome"], expected.outcome);
        assert_eq!(v["prev_hash"], prev);
        let canonical = hex::decode(v["canonical"].as_str().unwrap()).unwrap();
        let hash = hex::decode(v["hash"].as_str().unwrap()).unwrap();
        assert_eq!(hash, blake3::hash(&canonical).as_bytes());
        let sig: [u8; 64] = hex::decode(v["signature"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let mut msg = canonical.clone();
        msg.extend_from_slice(&hash);
        pk.verify(&msg, &sig).unwrap();
        let decoded = AuditEntry::from_canonical(&canonical).unwrap();
        assert_eq!(decoded.time_ms, v["time_ms"].as_u64().unwrap());
        prev = hex::encode(&hash);
    }
    let head: serde_json::Value = serde_json::from_str(&lines[4]).unwrap();
    assert_eq!(head["type"], "head");
    assert_eq!(head["seq"], 4);
    assert_eq!(head["entry_hash"], prev);
    assert_eq!(head["public_key"], pk.to_string());
}
