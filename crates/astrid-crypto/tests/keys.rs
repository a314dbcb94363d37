//! The runtime key file: created once with tight permissions, reloaded unchanged, refused
//! when it is loose or malformed.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use astrid_crypto::{CryptoError, KeyPair, PublicKey, RUNTIME_KEY_FILE, RUNTIME_PUB_FILE};

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn created_once_with_private_modes_and_reloaded() {
    let home = tempfile::tempdir().unwrap();
    let keys = home.path().join("keys");
    let first = KeyPair::load_or_create(&keys).unwrap();
    assert_eq!(mode(&keys), 0o700);
    let key_file = keys.join(RUNTIME_KEY_FILE);
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(fs::read(&key_file).unwrap().len(), 32);
    let again = KeyPair::load_or_create(&keys).unwrap();
    assert_eq!(again.public_key(), first.public_key());
    assert_eq!(again.key_id(), first.key_id());
    let published: PublicKey = fs::read_to_string(keys.join(RUNTIME_PUB_FILE))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(&published, first.public_key());
    let sig = again.sign(b"m");
    first.public_key().verify(b"m", &sig).unwrap();
    // No temporary files are left behind.
    let mut names: Vec<_> = fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [RUNTIME_KEY_FILE, RUNTIME_PUB_FILE]);
}

#[test]
fn concurrent_first_start_agrees_on_one_key() {
    let home = tempfile::tempdir().unwrap();
    let keys = home.path().join("keys");
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| KeyPair::load_or_create(&keys).unwrap().key_id().to_owned()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
}

#[test]
fn loose_permissions_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let keys = home.path().join("keys");
    KeyPair::load_or_create(&keys).unwrap();
    let key_file = keys.join(RUNTIME_KEY_FILE);
    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o644)).unwrap();
    let err = KeyPair::load_or_create(&keys).unwrap_err();
    assert!(
        matches!(err, CryptoError::KeyPermissions { mode: 0o644, .. }),
        "{err}"
    );
}

#[test]
fn malformed_key_files_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let keys = home.path().join("keys");
    fs::create_dir(&keys).unwrap();
    let key_file = keys.join(RUNTIME_KEY_FILE);
    for len in [0usize, 31, 33, 64] {
        fs::write(&key_file, vec![1u8; len]).unwrap();
        fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
        let err = KeyPair::load_or_create(&keys).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("expected 32 bytes, found {len}")),
            "{err}"
        );
    }
    fs::remove_file(&key_file).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &key_file).unwrap();
    let err = KeyPair::load_or_create(&keys).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}
