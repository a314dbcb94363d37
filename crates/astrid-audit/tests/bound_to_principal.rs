//! A chain is bound to its principal: one runtime key signs every principal's chain, so
//! another principal's intact chain copied over this one's must fail on the principal, in
//! verify, open and export, naming both.

mod common;

use std::fs;

use astrid_audit::{export, head_path, log_path, verify, AuditError, AuditLog, VerifyFailure};
use astrid_types::PrincipalId;
use common::{entry, key};

fn principal(name: &str) -> PrincipalId {
    PrincipalId::new(name).unwrap()
}

#[test]
fn a_transplanted_chain_fails_verify_open_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let (default, bob) = (principal("default"), principal("bob"));
    let mut paths = Vec::new();
    for (p, n) in [(&default, 3), (&bob, 6)] {
        let path = log_path(dir.path(), p);
        let log = AuditLog::open(&path, p.clone(), key()).unwrap();
        for i in 1..=n {
            log.append(entry(i)).unwrap();
        }
        paths.push(path);
    }
    let (default_log, bob_log) = (&paths[0], &paths[1]);
    verify(default_log, key().public_key(), &default).unwrap();

    fs::copy(bob_log, default_log).unwrap();
    fs::copy(head_path(bob_log), head_path(default_log)).unwrap();
    let before = fs::read(default_log).unwrap();

    let err = verify(default_log, key().public_key(), &default).unwrap_err();
    assert_eq!(
        (err.seq, err.reason.clone()),
        (
            Some(1),
            VerifyFailure::WrongPrincipal {
                found: "bob".into(),
                expected: "default".into()
            }
        )
    );
    let text = err.to_string();
    assert!(
        text.contains("`bob`") && text.contains("`default`"),
        "{text}"
    );
    // Still bob's chain when asked as bob.
    assert_eq!(
        verify(default_log, key().public_key(), &bob)
            .unwrap()
            .entries,
        6
    );

    let err = AuditLog::open(default_log, default.clone(), key()).unwrap_err();
    match &err {
        AuditError::Chain { source, .. } => assert_eq!(
            source.reason,
            VerifyFailure::HeadPrincipal {
                found: "bob".into(),
                expected: "default".into()
            }
        ),
        other => panic!("expected a chain error, got {other}"),
    }
    assert!(err.to_string().contains("`bob`"), "{err}");
    assert_eq!(
        fs::read(default_log).unwrap(),
        before,
        "open changed the log"
    );

    let err = match export(default_log, &default) {
        Err(e) => e,
        Ok(_) => panic!("export handed out bob's chain as default's"),
    };
    assert!(
        matches!(&err, AuditError::WrongPrincipal { found, expected, .. }
            if found == "bob" && expected == "default"),
        "{err}"
    );
}

#[test]
fn export_stops_at_an_entry_of_another_principal() {
    // Only the log copied (the head left alone): export must still not hand out bob's
    // entries as default's, and verify names the first one.
    let dir = tempfile::tempdir().unwrap();
    let (default, bob) = (principal("default"), principal("bob"));
    let default_log = log_path(dir.path(), &default);
    let bob_log = log_path(dir.path(), &bob);
    drop(AuditLog::open(&default_log, default.clone(), key()).unwrap());
    let log = AuditLog::open(&bob_log, bob, key()).unwrap();
    log.append(entry(1)).unwrap();
    drop(log);
    fs::copy(&bob_log, &default_log).unwrap();

    let lines: Vec<_> = export(&default_log, &default).unwrap().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        matches!(&lines[0], Err(AuditError::WrongPrincipal { found, .. }) if found == "bob"),
        "{lines:?}"
    );
    let err = verify(&default_log, key().public_key(), &default).unwrap_err();
    assert!(
        matches!(err.reason, VerifyFailure::WrongPrincipal { .. }),
        "{err}"
    );
}
