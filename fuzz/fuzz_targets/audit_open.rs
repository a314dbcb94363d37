//! The audit chain's open path (`AuditLog::open`) and its verifier, over a log and a head the
//! fuzzer writes (seeded with real chains). Holds: no panic; open never extends a chain that
//! then fails to verify; open accepts every chain the verifier accepts and adds exactly the
//! one entry appended; a chain open refuses is left byte for byte as it was found.
#![no_main]

use std::sync::{Arc, OnceLock};

use astrid_audit::{head_path, verify, AuditLog, Decision, NewEntry};
use astrid_crypto::KeyPair;
use astrid_fuzz::{seed_key, split2};
use astrid_types::PrincipalId;
use libfuzzer_sys::fuzz_target;

fn key() -> &'static Arc<KeyPair> {
    static KEY: OnceLock<Arc<KeyPair>> = OnceLock::new();
    KEY.get_or_init(|| Arc::new(seed_key()))
}

fuzz_target!(|data: &[u8]| {
    let (log, head) = split2(data);
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("audit.log");
    std::fs::write(&path, log).expect("write the log");
    std::fs::write(head_path(&path), head).expect("write the head");
    let principal = PrincipalId::new("fuzz").expect("a principal");
    let public = key().public_key();

    let before = verify(&path, public, &principal);
    match AuditLog::open(&path, principal.clone(), key().clone()) {
        Ok(opened) => {
            opened
                .append(NewEntry::new(
                    "fuzz",
                    "fuzz.append",
                    "r",
                    Decision::Allowed,
                    "ok",
                ))
                .expect("an opened chain takes an entry");
            drop(opened);
            let after = verify(&path, public, &principal)
                .unwrap_or_else(|e| panic!("open extended a chain that does not verify: {e}"));
            if let Ok(before) = before {
                assert_eq!(after.last_seq, before.last_seq + 1);
            }
        }
        Err(e) => {
            assert!(
                before.is_err(),
                "open refused a chain the verifier accepts: {e}"
            );
            assert_eq!(
                std::fs::read(&path).expect("the log"),
                log,
                "a refused log changed"
            );
            assert_eq!(
                std::fs::read(head_path(&path)).expect("the head"),
                head,
                "a refused head changed"
            );
        }
    }
});
