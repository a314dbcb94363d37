//! Encrypted secrets and the key file, on real SQLite files and a real filesystem.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::thread;

use astrid_store::{PrincipalStore, SecretKey, SecretMeta, StoreError};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn secret_error(r: Result<impl std::fmt::Debug, StoreError>) -> String {
    match r {
        Err(StoreError::Secret(msg)) => msg,
        other => panic!("expected a Secret error, got {other:?}"),
    }
}

fn key_file_error(r: Result<SecretKey, StoreError>, path: &Path) -> String {
    match r {
        Err(e @ StoreError::KeyFile { .. }) => {
            let StoreError::KeyFile { path: p, .. } = &e else {
                unreachable!()
            };
            assert_eq!(p, path);
            let shown = e.to_string();
            assert!(shown.contains(&path.display().to_string()), "{shown}");
            shown
        }
        other => panic!("expected a KeyFile error, got {other:?}"),
    }
}

#[test]
fn round_trip_list_overwrite_remove() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::load_or_create(&dir.path().join("secret.key")).unwrap();
    let s = PrincipalStore::open(&dir.path().join("p.db")).unwrap();

    assert!(s.secret_get(&key, "mail", "token").unwrap().is_none());
    s.secret_put(&key, "mail", "token", b"t-123", "user", 10)
        .unwrap();
    s.secret_put(&key, "llm", "api-key", b"sk-abc", "manifest", 20)
        .unwrap();
    s.secret_put(&key, "mail", "empty", b"", "", 30).unwrap();

    let (value, origin) = s.secret_get(&key, "mail", "token").unwrap().unwrap();
    assert_eq!(&value[..], b"t-123");
    assert_eq!(origin, "user");
    let (value, origin) = s.secret_get(&key, "mail", "empty").unwrap().unwrap();
    assert!(value.is_empty());
    assert_eq!(origin, "");
    // Same name under another capsule is a different secret.
    assert!(s.secret_get(&key, "llm", "token").unwrap().is_none());

    let meta = |capsule: &str, name: &str, origin: &str, updated_ms| SecretMeta {
        capsule: capsule.into(),
        name: name.into(),
        origin: origin.into(),
        updated_ms,
    };
    assert_eq!(
        s.secret_list().unwrap(),
        vec![
            meta("llm", "api-key", "manifest", 20),
            meta("mail", "empty", "", 30),
            meta("mail", "token", "user", 10),
        ]
    );

    s.secret_put(&key, "mail", "token", b"t-456", "cli", 40)
        .unwrap();
    let (value, origin) = s.secret_get(&key, "mail", "token").unwrap().unwrap();
    assert_eq!((&value[..], origin.as_str()), (&b"t-456"[..], "cli"));
    assert_eq!(
        s.secret_list().unwrap()[2],
        meta("mail", "token", "cli", 40)
    );

    assert!(s.secret_remove("mail", "token").unwrap());
    assert!(!s.secret_remove("mail", "token").unwrap());
    assert!(s.secret_get(&key, "mail", "token").unwrap().is_none());
    assert_eq!(s.secret_list().unwrap().len(), 2);
}

#[test]
fn plaintext_never_reaches_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    let key = SecretKey::load_or_create(&dir.path().join("secret.key")).unwrap();
    let secret = b"sk-live-PLAINTEXT-MARKER-7f3a9c";
    let control = b"kv-CONTROL-MARKER-visible-7f3a9c";
    {
        let s = PrincipalStore::open(&db).unwrap();
        s.secret_put(&key, "llm", "api-key", secret, "user", 1)
            .unwrap();
        // The control proves the byte search would see a value stored in the clear.
        s.kv_set("llm", "note", control).unwrap();
    }
    let mut raw = fs::read(&db).unwrap();
    // Whatever is still in the write-ahead log counts as on disk too.
    for extra in ["p.db-wal", "p.db-shm"] {
        if let Ok(bytes) = fs::read(dir.path().join(extra)) {
            raw.extend(bytes);
        }
    }
    let contains = |needle: &[u8]| raw.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(control),
        "control marker missing: search is broken"
    );
    assert!(!contains(secret), "secret plaintext found in the database");
    assert!(!contains(b"PLAINTEXT-MARKER"));

    let s = PrincipalStore::open(&db).unwrap();
    let (value, _) = s.secret_get(&key, "llm", "api-key").unwrap().unwrap();
    assert_eq!(&value[..], secret);
}

#[test]
fn a_row_moved_to_another_capsule_name_or_origin_does_not_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    let key = SecretKey::load_or_create(&dir.path().join("secret.key")).unwrap();
    let s = PrincipalStore::open(&db).unwrap();
    s.secret_put(&key, "mail", "token", b"mail-secret", "user", 1)
        .unwrap();
    s.secret_put(&key, "evil", "token", b"evil-own", "user", 1)
        .unwrap();
    s.secret_put(&key, "mail", "other", b"other-own", "user", 1)
        .unwrap();

    // An attacker with write access to the database but not the key copies rows around.
    let raw = rusqlite::Connection::open(&db).unwrap();
    raw.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let copy_onto = |capsule: &str, name: &str| {
        raw.execute(
            "UPDATE secrets SET
                 nonce = (SELECT nonce FROM secrets WHERE capsule = 'mail' AND name = 'token'),
                 ciphertext = (SELECT ciphertext FROM secrets
                               WHERE capsule = 'mail' AND name = 'token')
             WHERE capsule = ?1 AND name = ?2",
            rusqlite::params![capsule, name],
        )
        .unwrap()
    };
    assert_eq!(copy_onto("mail", "other"), 1);
    assert_eq!(copy_onto("evil", "token"), 1);

    let msg = secret_error(s.secret_get(&key, "mail", "other"));
    assert!(msg.contains("mail/other"), "{msg}");
    let msg = secret_error(s.secret_get(&key, "evil", "token"));
    assert!(msg.contains("evil/token"), "{msg}");
    // The original row still decrypts.
    let (value, _) = s.secret_get(&key, "mail", "token").unwrap().unwrap();
    assert_eq!(&value[..], b"mail-secret");

    // Relabelling the origin is caught too.
    raw.execute(
        "UPDATE secrets SET origin = 'manifest' WHERE capsule = 'mail' AND name = 'token'",
        [],
    )
    .unwrap();
    let msg = secret_error(s.secret_get(&key, "mail", "token"));
    assert!(msg.contains("mail/token"), "{msg}");

    // So is a single flipped ciphertext bit.
    s.secret_put(&key, "mail", "token", b"mail-secret", "user", 2)
        .unwrap();
    let (nonce, mut ct): (Vec<u8>, Vec<u8>) = raw
        .query_row(
            "SELECT nonce, ciphertext FROM secrets WHERE capsule = 'mail' AND name = 'token'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(nonce.len(), 24);
    ct[0] ^= 1;
    raw.execute(
        "UPDATE secrets SET ciphertext = ?1 WHERE capsule = 'mail' AND name = 'token'",
        [&ct],
    )
    .unwrap();
    secret_error(s.secret_get(&key, "mail", "token"));
}

#[test]
fn a_different_key_cannot_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::load_or_create(&dir.path().join("a.key")).unwrap();
    let other = SecretKey::load_or_create(&dir.path().join("b.key")).unwrap();
    assert_ne!(
        fs::read(dir.path().join("a.key")).unwrap(),
        fs::read(dir.path().join("b.key")).unwrap()
    );
    let s = PrincipalStore::open(&dir.path().join("p.db")).unwrap();
    s.secret_put(&key, "mail", "token", b"v", "user", 1)
        .unwrap();
    let msg = secret_error(s.secret_get(&other, "mail", "token"));
    assert!(msg.contains("mail/token"), "{msg}");
    assert_eq!(
        &s.secret_get(&key, "mail", "token").unwrap().unwrap().0[..],
        b"v"
    );
}

#[test]
fn key_file_is_private_stable_and_not_debug_printed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.key");
    let key = SecretKey::load_or_create(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 32);
    // Only the key file remains: the temporary file it was written through is gone.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("secret.key")]);

    let shown = format!("{key:?}");
    assert_eq!(shown, "SecretKey(..)");

    let s = PrincipalStore::open(&dir.path().join("p.db")).unwrap();
    s.secret_put(&key, "c", "n", b"value", "o", 1).unwrap();
    drop(key);
    // Loading again reads the same key rather than minting a new one.
    let again = SecretKey::load_or_create(&path).unwrap();
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(
        &s.secret_get(&again, "c", "n").unwrap().unwrap().0[..],
        b"value"
    );

    // Narrower than 0600 is fine.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    let readonly = SecretKey::load_or_create(&path).unwrap();
    assert_eq!(
        &s.secret_get(&readonly, "c", "n").unwrap().unwrap().0[..],
        b"value"
    );
}

#[test]
fn wider_permissions_are_refused_not_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.key");
    SecretKey::load_or_create(&path).unwrap();
    let bytes = fs::read(&path).unwrap();
    for wide in [0o644, 0o640, 0o604, 0o700, 0o660] {
        fs::set_permissions(&path, fs::Permissions::from_mode(wide)).unwrap();
        let shown = key_file_error(SecretKey::load_or_create(&path), &path);
        assert!(shown.contains(&format!("{wide:04o}")), "{shown}");
        assert_eq!(mode(&path), wide, "permissions were changed");
        assert_eq!(fs::read(&path).unwrap(), bytes, "key was replaced");
    }
}

#[test]
fn wrong_length_key_files_are_refused_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    for (name, len) in [
        ("empty.key", 0),
        ("short.key", 16),
        ("cut.key", 31),
        ("long.key", 33),
    ] {
        let path = dir.path().join(name);
        let contents = vec![7u8; len];
        fs::write(&path, &contents).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let shown = key_file_error(SecretKey::load_or_create(&path), &path);
        assert!(shown.contains(&format!("holds {len} bytes")), "{shown}");
        assert_eq!(fs::read(&path).unwrap(), contents);
    }
    // A directory where the key should be is not a key either.
    let path = dir.path().join("dir.key");
    fs::create_dir(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
    key_file_error(SecretKey::load_or_create(&path), &path);
    // Nor is a missing parent directory silently created.
    let path = dir.path().join("missing").join("secret.key");
    key_file_error(SecretKey::load_or_create(&path), &path);
    assert!(!dir.path().join("missing").exists());
}

#[test]
fn concurrent_first_use_agrees_on_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = Arc::new(dir.path().join("secret.key"));
    let keys: Vec<SecretKey> = (0..8)
        .map(|_| {
            let path = Arc::clone(&path);
            thread::spawn(move || SecretKey::load_or_create(&path).unwrap())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let s = PrincipalStore::open(&dir.path().join("p.db")).unwrap();
    s.secret_put(&keys[0], "c", "n", b"shared", "o", 1).unwrap();
    for key in &keys {
        assert_eq!(
            &s.secret_get(key, "c", "n").unwrap().unwrap().0[..],
            b"shared"
        );
    }
    let temps: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("secret.key") && n != "secret.key")
        .collect();
    assert!(
        temps.is_empty(),
        "temporary key files left behind: {temps:?}"
    );
}

#[test]
fn bounds_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::load_or_create(&dir.path().join("secret.key")).unwrap();
    let s = PrincipalStore::open(&dir.path().join("p.db")).unwrap();
    let invalid = |r: Result<(), StoreError>| {
        assert!(matches!(r, Err(StoreError::InvalidArgument(_))), "{r:?}")
    };

    s.secret_put(&key, "c", "n", &[1; 16 * 1024], "o", 1)
        .unwrap();
    invalid(s.secret_put(&key, "c", "n", &[1; 16 * 1024 + 1], "o", 1));
    // The rejected write left the previous value in place.
    assert_eq!(
        s.secret_get(&key, "c", "n").unwrap().unwrap().0.len(),
        16 * 1024
    );

    let name64 = "n".repeat(64);
    let name65 = "n".repeat(65);
    s.secret_put(&key, &name64, &name64, b"v", "o", 1).unwrap();
    invalid(s.secret_put(&key, "c", &name65, b"v", "o", 1));
    invalid(s.secret_put(&key, &name65, "n", b"v", "o", 1));
    invalid(s.secret_put(&key, "", "n", b"v", "o", 1));
    invalid(s.secret_put(&key, "c", "", b"v", "o", 1));
    // NUL separates the associated-data fields, so it may not appear inside one.
    invalid(s.secret_put(&key, "a\0b", "n", b"v", "o", 1));
    invalid(s.secret_put(&key, "c", "a\0b", b"v", "o", 1));
    invalid(s.secret_put(&key, "c", "n", b"v", "o\0x", 1));
    assert!(matches!(
        s.secret_get(&key, "c", &name65),
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        s.secret_remove(&name65, "n"),
        Err(StoreError::InvalidArgument(_))
    ));
}
