//! The per-principal store on real SQLite files.

use std::path::Path;
use std::sync::Arc;
use std::thread;

use astrid_store::{PrincipalStore, StoreError, StoreLimits};

fn open(dir: &Path, name: &str) -> PrincipalStore {
    PrincipalStore::open(&dir.join(name)).unwrap()
}

#[test]
fn namespaces_and_principals_are_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let alice = open(dir.path(), "alice.db");
    let bob = open(dir.path(), "bob.db");

    alice.kv_set("notes", "k", b"alice-notes").unwrap();
    alice.kv_set("mail", "k", b"alice-mail").unwrap();
    bob.kv_set("notes", "k", b"bob-notes").unwrap();

    assert_eq!(alice.kv_get("notes", "k").unwrap().unwrap(), b"alice-notes");
    assert_eq!(alice.kv_get("mail", "k").unwrap().unwrap(), b"alice-mail");
    assert_eq!(bob.kv_get("notes", "k").unwrap().unwrap(), b"bob-notes");
    assert_eq!(bob.kv_get("mail", "k").unwrap(), None);
    assert_eq!(bob.kv_list("mail", "").unwrap(), Vec::<String>::new());

    assert!(alice.kv_delete("notes", "k").unwrap());
    assert!(!alice.kv_delete("notes", "k").unwrap());
    assert_eq!(alice.kv_get("mail", "k").unwrap().unwrap(), b"alice-mail");
    assert_eq!(bob.kv_get("notes", "k").unwrap().unwrap(), b"bob-notes");
    assert!(!alice.kv_cas("mail", "k", Some(b"bob-notes"), None).unwrap());
}

#[test]
fn compare_and_swap_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), "p.db");
    // Absent -> value.
    assert!(s.kv_cas("c", "k", None, Some(b"1")).unwrap());
    assert_eq!(s.kv_get("c", "k").unwrap().unwrap(), b"1");
    // Absent expected but present: no swap.
    assert!(!s.kv_cas("c", "k", None, Some(b"x")).unwrap());
    // Value -> value.
    assert!(s.kv_cas("c", "k", Some(b"1"), Some(b"2")).unwrap());
    // Mismatch leaves the value alone.
    assert!(!s.kv_cas("c", "k", Some(b"1"), Some(b"3")).unwrap());
    assert_eq!(s.kv_get("c", "k").unwrap().unwrap(), b"2");
    // Delete via None.
    assert!(s.kv_cas("c", "k", Some(b"2"), None).unwrap());
    assert_eq!(s.kv_get("c", "k").unwrap(), None);
    // Absent -> absent is a successful no-op; expecting a value on an absent key is not.
    assert!(s.kv_cas("c", "k", None, None).unwrap());
    assert!(!s.kv_cas("c", "k", Some(b"2"), None).unwrap());
    assert_eq!(s.kv_list("c", "").unwrap(), Vec::<String>::new());
    // The empty value is a value, distinct from absence.
    assert!(s.kv_cas("c", "e", None, Some(b"")).unwrap());
    assert!(!s.kv_cas("c", "e", None, Some(b"x")).unwrap());
    assert!(s.kv_cas("c", "e", Some(b""), Some(b"x")).unwrap());
}

#[test]
fn prefix_list_is_literal_and_in_byte_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), "p.db");
    for key in [
        "a%b", "a_b", "axb", "a%", "ab", "b", "Z", "é", "a\u{7f}", "a%%",
    ] {
        s.kv_set("n", key, key.as_bytes()).unwrap();
    }
    s.kv_set("other", "a%zzz", b"-").unwrap();
    assert_eq!(s.kv_list("n", "a%").unwrap(), ["a%", "a%%", "a%b"]);
    assert_eq!(s.kv_list("n", "a_").unwrap(), ["a_b"]);
    assert_eq!(s.kv_list("n", "a%b").unwrap(), ["a%b"]);
    assert_eq!(s.kv_list("n", "q").unwrap(), Vec::<String>::new());
    assert_eq!(
        s.kv_list("n", "").unwrap(),
        ["Z", "a%", "a%%", "a%b", "a_b", "ab", "axb", "a\u{7f}", "b", "é"]
    );
    assert_eq!(s.kv_list("n", "a").unwrap().len(), 7);
    assert_eq!(s.kv_list("n", "é").unwrap(), ["é"]);
}

#[test]
fn limits_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let limits = StoreLimits {
        max_value_bytes: 16,
        max_key_bytes: 8,
        max_keys_per_namespace: 3,
    };
    let s = PrincipalStore::open_with_limits(&dir.path().join("p.db"), limits).unwrap();
    let invalid = |r: Result<_, StoreError>| matches!(r, Err(StoreError::InvalidArgument(_)));
    let quota = |r: Result<_, StoreError>| matches!(r, Err(StoreError::QuotaExceeded(_)));

    s.kv_set("n", "12345678", &[0; 16]).unwrap();
    assert!(invalid(s.kv_set("n", "123456789", b"v")));
    assert!(invalid(s.kv_get("n", "123456789").map(drop)));
    assert!(invalid(s.kv_set("n", "", b"v")));
    assert!(invalid(s.kv_set("", "k", b"v")));
    assert!(quota(s.kv_set("n", "k", &[0; 17])));
    assert!(quota(
        s.kv_cas("n", "12345678", Some(&[0; 16]), Some(&[0; 17]))
            .map(drop)
    ));

    s.kv_set("n", "b", b"v").unwrap();
    s.kv_set("n", "c", b"v").unwrap();
    assert!(quota(s.kv_set("n", "d", b"v")));
    assert!(quota(s.kv_cas("n", "d", None, Some(b"v")).map(drop)));
    assert_eq!(s.kv_get("n", "d").unwrap(), None);
    // Overwriting an existing key does not count against the quota.
    s.kv_set("n", "c", b"w").unwrap();
    assert!(s.kv_cas("n", "c", Some(b"w"), Some(b"x")).unwrap());
    // Other namespaces have their own quota; deleting frees a slot.
    s.kv_set("m", "d", b"v").unwrap();
    assert!(s.kv_delete("n", "b").unwrap());
    s.kv_set("n", "d", b"v").unwrap();
    assert!(s.kv_cas("n", "d", Some(b"v"), None).unwrap());
    assert!(s.kv_cas("n", "e", None, Some(b"v")).unwrap());
    assert_eq!(s.kv_list("n", "").unwrap(), ["12345678", "c", "e"]);
}

#[test]
fn data_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    {
        let s = PrincipalStore::open(&path).unwrap();
        s.kv_set("cap", "k", b"durable").unwrap();
        s.meta_set("installed/cap", b"1.0.0").unwrap();
        s.meta_set("gone", b"x").unwrap();
        assert!(s.meta_delete("gone").unwrap());
        assert!(!s.meta_delete("gone").unwrap());
        // WAL journaling is on while the store is open.
        assert!(dir.path().join("p.db-wal").exists());
    }
    let s = PrincipalStore::open(&path).unwrap();
    assert_eq!(s.kv_get("cap", "k").unwrap().unwrap(), b"durable");
    assert_eq!(s.meta_get("installed/cap").unwrap().unwrap(), b"1.0.0");
    assert_eq!(s.meta_get("gone").unwrap(), None);
    s.meta_set("installed/cap", b"1.1.0").unwrap();
    assert_eq!(s.meta_get("installed/cap").unwrap().unwrap(), b"1.1.0");
    // The meta table is not a KV namespace.
    assert_eq!(s.kv_list("cap", "").unwrap(), ["k"]);

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// Increment a little-endian u64 counter with CAS until the swap lands.
fn increment(store: &PrincipalStore, key: &str) {
    loop {
        let current = store.kv_get("ctr", key).unwrap();
        let n = current
            .as_deref()
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
        let next = (n + 1).to_le_bytes();
        if store
            .kv_cas("ctr", key, current.as_deref(), Some(&next))
            .unwrap()
        {
            return;
        }
    }
}

fn counter(store: &PrincipalStore, key: &str) -> u64 {
    u64::from_le_bytes(
        store
            .kv_get("ctr", key)
            .unwrap()
            .unwrap()
            .try_into()
            .unwrap(),
    )
}

#[test]
fn concurrent_cas_increments_are_exact() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let shared = Arc::new(PrincipalStore::open(&path).unwrap());
    // A second connection on the same file, as another process would have.
    let other = Arc::new(PrincipalStore::open(&path).unwrap());

    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let s = Arc::clone(&shared);
            let o = Arc::clone(&other);
            thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    increment(&s, "one-handle");
                    increment(if i % 2 == 0 { &s } else { &o }, "two-handles");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let total = (THREADS * PER_THREAD) as u64;
    assert_eq!(counter(&shared, "one-handle"), total);
    assert_eq!(counter(&shared, "two-handles"), total);
    assert_eq!(counter(&other, "two-handles"), total);
}

#[test]
fn a_capped_write_past_the_cap_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), "capped.db");
    // Keys count too: "a" + 60 bytes.
    s.kv_set_capped("ns", "a", &[1; 60], 100).unwrap();
    assert_eq!(s.kv_bytes().unwrap(), 61);
    let err = s.kv_set_capped("ns", "b", &[2; 60], 100).unwrap_err();
    assert!(matches!(err, StoreError::QuotaExceeded(_)), "{err}");
    assert_eq!(s.kv_get("ns", "b").unwrap(), None);
    assert_eq!(s.kv_bytes().unwrap(), 61);
    // Replacing counts only the difference; shrinking is allowed even over the cap.
    s.kv_set_capped("ns", "a", &[3; 90], 100).unwrap();
    assert_eq!(s.kv_bytes().unwrap(), 91);
    s.kv_set_capped("ns", "a", &[4; 10], 5).unwrap();
    assert_eq!(s.kv_bytes().unwrap(), 11);
    // Compare-and-swap under the cap: refused whole, value unchanged.
    let err = s
        .kv_cas_capped("ns", "a", Some(&[4; 10]), Some(&[5; 200]), 100)
        .unwrap_err();
    assert!(matches!(err, StoreError::QuotaExceeded(_)), "{err}");
    assert_eq!(s.kv_get("ns", "a").unwrap().unwrap(), vec![4; 10]);
    assert!(s
        .kv_cas_capped("ns", "a", Some(&[4; 10]), Some(&[5; 50]), 100)
        .unwrap());
    // A delete is counted afresh; the count survives a reopen.
    assert!(s.kv_delete("ns", "a").unwrap());
    assert_eq!(s.kv_bytes().unwrap(), 0);
    s.kv_set("ns", "c", &[6; 30]).unwrap();
    drop(s);
    assert_eq!(open(dir.path(), "capped.db").kv_bytes().unwrap(), 31);
}
