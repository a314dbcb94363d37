//! The open path fails closed: the attacks an outside review tried on the files (a record
//! deleted from the middle, a record altered with its CRC recomputed, a rollback through the
//! head slots) make `AuditLog::open` refuse, name the problem, and leave the files as they
//! were found; `verify` agrees. Legitimate crash states still open.

mod common;

use std::fs;
use std::path::Path;

use astrid_audit::{
    head_path, read_slots, verify, verify_against, AuditEntry, AuditError, AuditLog, Decision,
    SealedEntry, Slot, VerifyFailure, Witness,
};
use astrid_crypto::KeyPair;
use common::{alice, entry, fix_crc, key, log_with, records};

const SLOT: usize = 4096;

/// Opens as alice and expects a refusal; the log must be byte for byte unchanged.
fn open_refused(path: &Path) -> AuditError {
    let before = fs::read(path).unwrap();
    let err = AuditLog::open(path, alice(), key()).expect_err("open extended a bad chain");
    assert_eq!(
        fs::read(path).unwrap(),
        before,
        "a refused open changed the log"
    );
    err
}

/// The verifier's reason inside an open error.
fn chain_reason(err: &AuditError) -> (Option<u64>, VerifyFailure) {
    match err {
        AuditError::Chain { source, .. } => (source.seq, source.reason.clone()),
        other => panic!("expected a chain error, got {other}"),
    }
}

fn verify_err(path: &Path) -> (Option<u64>, VerifyFailure) {
    let e = verify(path, key().public_key(), &alice()).unwrap_err();
    (e.seq, e.reason)
}

#[test]
fn middle_record_deleted_makes_open_fail() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 10);
    let mut bytes = fs::read(&path).unwrap();
    let rec = records(&bytes)[4].clone();
    bytes.drain(rec);
    fs::write(&path, &bytes).unwrap();

    let err = open_refused(&path);
    assert_eq!(
        chain_reason(&err),
        (Some(5), VerifyFailure::OutOfOrder { found: 6 })
    );
    let text = err.to_string();
    assert!(
        text.contains("entry 5") && text.contains("refusing to extend"),
        "{text}"
    );
    assert_eq!(
        verify_err(&path),
        (Some(5), VerifyFailure::OutOfOrder { found: 6 })
    );
}

#[test]
fn altered_record_with_recomputed_crc_makes_open_fail() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 10);
    let original = fs::read(&path).unwrap();
    let recs = records(&original);
    // One byte of the outcome: 4 (crc) + 64 (signature) + 4 + 32 (prev_hash field) before
    // the end, then a few bytes into the outcome.
    let outcome_byte = |r: &std::ops::Range<usize>| r.end - 4 - 64 - 4 - 32 - 10;

    // In the middle: the next entry's link no longer matches.
    let mut bytes = original.clone();
    bytes[outcome_byte(&recs[4])] ^= 0x01;
    fix_crc(&mut bytes, recs[4].clone());
    fs::write(&path, &bytes).unwrap();
    assert_eq!(
        chain_reason(&open_refused(&path)),
        (Some(6), VerifyFailure::BrokenLink)
    );
    assert_eq!(verify_err(&path), (Some(5), VerifyFailure::BadSignature));

    // The last entry (the one the head names): its signature no longer verifies.
    let mut bytes = original.clone();
    bytes[outcome_byte(&recs[9])] ^= 0x01;
    fix_crc(&mut bytes, recs[9].clone());
    fs::write(&path, &bytes).unwrap();
    assert_eq!(
        chain_reason(&open_refused(&path)),
        (Some(10), VerifyFailure::BadSignature)
    );

    // The last entry's signature bytes themselves.
    let mut bytes = original.clone();
    bytes[recs[9].end - 10] ^= 0x80;
    fix_crc(&mut bytes, recs[9].clone());
    fs::write(&path, &bytes).unwrap();
    assert_eq!(
        chain_reason(&open_refused(&path)),
        (Some(10), VerifyFailure::BadSignature)
    );

    // An entry after the head (what a lagging head leaves) forged with another key: the head
    // does not vouch for it, so open checks its signature.
    fs::write(&path, &original).unwrap();
    let last = astrid_audit::read_entries(&path)
        .unwrap()
        .last()
        .unwrap()
        .unwrap();
    let forged = SealedEntry::seal(
        AuditEntry {
            seq: 11,
            time_ms: last.entry.time_ms,
            principal: alice(),
            capsule: "kernel".into(),
            action: "capability.mint".into(),
            resource: "fs:write:/**".into(),
            decision: Decision::Recorded,
            outcome: "granted".into(),
            prev_hash: last.hash,
        },
        &KeyPair::from_seed(&[99; 32]),
    );
    let mut record = Vec::new();
    record.extend_from_slice(&((forged.canonical.len() + 64) as u32).to_be_bytes());
    record.extend_from_slice(&forged.canonical);
    record.extend_from_slice(&forged.signature);
    record.extend_from_slice(&crc32fast::hash(&record).to_be_bytes());
    let mut bytes = original;
    bytes.extend_from_slice(&record);
    fs::write(&path, &bytes).unwrap();
    assert_eq!(
        chain_reason(&open_refused(&path)),
        (Some(11), VerifyFailure::BadSignature)
    );
}

#[test]
fn torn_tail_is_reported_by_verify_and_cut_by_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 4);
    let clean = fs::read(&path).unwrap();
    let mut bytes = clean.clone();
    let recs = records(&bytes);
    bytes.extend_from_slice(&clean[recs[1].start..recs[1].start + 50]);
    fs::write(&path, &bytes).unwrap();
    let report = verify(&path, key().public_key(), &alice()).unwrap();
    assert_eq!((report.entries, report.torn_tail_bytes), (4, 50));
    let log = AuditLog::open(&path, alice(), key()).unwrap();
    assert_eq!(log.recovered_bytes(), 50);
    drop(log);
    assert_eq!(fs::read(&path).unwrap(), clean);
}

/// A chain of 10 single-entry batches: generation 1 is the empty chain written by the first
/// open (slot 1), then one head per append, so generation 11 (slot 1) names entry 10 and
/// generation 10 (slot 0) names entry 9.
fn ten_batches(dir: &Path) -> std::path::PathBuf {
    let path = log_with(dir, 10);
    let slots = read_slots(&head_path(&path)).unwrap();
    match &slots {
        [Slot::Intact(older), Slot::Intact(newest)] => {
            assert_eq!((older.generation, older.seq), (10, 9));
            assert_eq!((newest.generation, newest.seq), (11, 10));
        }
        other => panic!("unexpected slots {other:?}"),
    }
    path
}

#[test]
fn rollback_through_a_damaged_newest_slot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = ten_batches(dir.path());
    let log = fs::read(&path).unwrap();
    let recs = records(&log);
    let mut head = fs::read(head_path(&path)).unwrap();
    head[SLOT + 40] ^= 0x01; // inside generation 11's body: its CRC no longer matches
    fs::write(head_path(&path), &head).unwrap();
    fs::write(&path, &log[..recs[8].end]).unwrap(); // entry 10 (the last batch) cut

    assert_eq!(
        read_slots(&head_path(&path)).unwrap()[1],
        Slot::Damaged,
        "the flipped slot is no longer intact"
    );
    let expected = VerifyFailure::RollbackSuspected {
        generation: 10,
        head_seq: 9,
    };
    assert_eq!(chain_reason(&open_refused(&path)), (None, expected.clone()));
    assert_eq!(verify_err(&path), (None, expected));
    let err = verify(&path, key().public_key(), &alice()).unwrap_err();
    assert!(err.to_string().contains("may have been removed"), "{err}");
}

#[test]
fn a_torn_newest_slot_after_a_durable_batch_still_opens_and_is_repaired() {
    // What a crash while writing the head leaves: the batch is durable (fsynced before the
    // head is written), the newest slot is torn. The log goes on past the older head.
    let dir = tempfile::tempdir().unwrap();
    let path = ten_batches(dir.path());
    let mut head = fs::read(head_path(&path)).unwrap();
    head[SLOT + 40] ^= 0x01;
    fs::write(head_path(&path), &head).unwrap();
    let report = verify(&path, key().public_key(), &alice()).unwrap();
    assert_eq!((report.entries, report.head_seq), (10, 9));

    let log = AuditLog::open(&path, alice(), key()).unwrap();
    assert_eq!(log.append(entry(11)).unwrap(), 11);
    drop(log);
    let slots = read_slots(&head_path(&path)).unwrap();
    assert!(
        slots.iter().all(|s| matches!(s, Slot::Intact(_))),
        "{slots:?}"
    );
    let report = verify(&path, key().public_key(), &alice()).unwrap();
    assert_eq!((report.entries, report.head_seq), (11, 11));
}

#[test]
fn an_erased_newest_slot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = ten_batches(dir.path());
    let log = fs::read(&path).unwrap();
    let recs = records(&log);
    let mut head = fs::read(head_path(&path)).unwrap();
    head[SLOT..].fill(0);
    fs::write(head_path(&path), &head).unwrap();
    fs::write(&path, &log[..recs[8].end]).unwrap();
    let (seq, reason) = chain_reason(&open_refused(&path));
    assert_eq!(seq, None);
    assert!(
        matches!(&reason, VerifyFailure::HeadSlots(why) if why.contains("erased")),
        "{reason}"
    );
    // Cutting the head file down to its first slot is the same erasure.
    fs::write(head_path(&path), &head[..SLOT]).unwrap();
    assert!(matches!(
        chain_reason(&open_refused(&path)).1,
        VerifyFailure::HeadSlots(_)
    ));
}

#[test]
fn a_rollback_of_both_files_is_caught_by_a_witness() {
    // The documented limit: someone who kept older copies of both files can put them back,
    // and nothing in the files tells. A witness recorded earlier (off the machine) does.
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 5);
    let old_log = fs::read(&path).unwrap();
    let old_head = fs::read(head_path(&path)).unwrap();
    let log = AuditLog::open(&path, alice(), key()).unwrap();
    for i in 6..=8 {
        log.append(entry(i)).unwrap();
    }
    drop(log);
    let witness = verify(&path, key().public_key(), &alice())
        .unwrap()
        .witness();
    assert_eq!(witness.seq, 8);
    let text = witness.to_string();
    assert_eq!(text.parse::<Witness>().unwrap(), witness);

    fs::write(&path, &old_log).unwrap();
    fs::write(head_path(&path), &old_head).unwrap();
    assert_eq!(
        verify(&path, key().public_key(), &alice())
            .unwrap()
            .last_seq,
        5,
        "the limit: the old files alone verify"
    );
    let err = verify_against(&path, key().public_key(), &alice(), Some(&witness)).unwrap_err();
    assert_eq!(
        (err.seq, err.reason),
        (
            Some(8),
            VerifyFailure::WitnessAhead {
                witness_seq: 8,
                last_seq: 5
            }
        )
    );

    // A chain of the same length but other content: the witnessed entry is not there.
    let other = tempfile::tempdir().unwrap();
    let other_path = log_with(other.path(), 9);
    let err =
        verify_against(&other_path, key().public_key(), &alice(), Some(&witness)).unwrap_err();
    assert_eq!(
        (err.seq, err.reason),
        (Some(8), VerifyFailure::WitnessMismatch)
    );
}

#[test]
fn a_chain_whose_first_head_write_never_happened_opens_empty() {
    // A crash during the very first open can leave a log with only its magic and a head file
    // that was created but never written.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("principals/alice/audit.log");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, b"ASTRID-AUDIT-v1\n").unwrap();
    fs::write(head_path(&path), vec![0u8; 2 * SLOT]).unwrap();
    let log = AuditLog::open(&path, alice(), key()).unwrap();
    assert_eq!(log.append(entry(1)).unwrap(), 1);
    drop(log);
    assert_eq!(
        verify(&path, key().public_key(), &alice()).unwrap().entries,
        1
    );
    // With entries in the log, a blank head file is a missing head.
    fs::write(head_path(&path), vec![0u8; 2 * SLOT]).unwrap();
    assert!(matches!(
        AuditLog::open(&path, alice(), key()).unwrap_err(),
        AuditError::HeadMissing(_)
    ));
}
