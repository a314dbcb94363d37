//! Bundles packed, read back and attacked: the shape checks, the signature, the trust store.
//! The packages here are stand-in bytes: that a package is what the lock pins is checked by
//! the installer (crates/astrid-cli/tests/distro_bundle.rs, with real packages).

use super::*;
use astrid_types::distro::LockedCapsule;

struct Fixture {
    _dir: tempfile::TempDir,
    src: PathBuf,
    out: PathBuf,
    key: KeyPair,
}

const TOML: &str = "[distro]\nname = \"d\"\nversion = \"1.0.0\"\n\n[[capsule]]\nname = \"echo\"\nversion = \"*\"\n";

fn lock_for(component: &[u8]) -> DistroLock {
    DistroLock {
        name: "d".into(),
        version: "1.0.0".parse().unwrap(),
        manifest: ArtifactHash::of(TOML.as_bytes()),
        capsules: vec![LockedCapsule {
            name: "echo".parse().unwrap(),
            version: "0.1.0".parse().unwrap(),
            hash: ArtifactHash::of(component),
            manifest: ArtifactHash::of(b"Capsule.toml"),
        }],
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("distro");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join(MANIFEST_FILE), TOML).unwrap();
    std::fs::write(src.join(LOCK_FILE), lock_for(b"component").to_toml()).unwrap();
    std::fs::write(src.join("echo-0.1.0.capsule"), b"package bytes").unwrap();
    let out = dir.path().join("d.shuttle");
    let key = KeyPair::from_seed(&[9; 32]);
    pack(&src, &key, &out).unwrap();
    Fixture {
        _dir: dir,
        src,
        out,
        key,
    }
}

fn malformed(path: &Path) -> String {
    match Bundle::read(path) {
        Err(e @ ShuttleError::Malformed { .. }) => e.to_string(),
        other => panic!("expected a malformed bundle, got {other:?}"),
    }
}

#[test]
fn a_packed_bundle_reads_back_and_verifies() {
    let f = fixture();
    let b = Bundle::read(&f.out).unwrap();
    b.verify().unwrap();
    assert_eq!(b.publisher, *f.key.public_key());
    assert_eq!(b.lock, lock_for(b"component"));
    assert_eq!(
        b.packages,
        [("echo-0.1.0.capsule".to_string(), b"package bytes".to_vec())]
    );
    // Packing is deterministic: the same inputs give the same bytes.
    let again = f.out.with_extension("again");
    pack(&f.src, &f.key, &again).unwrap();
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&f.out).unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    b.extract(dir.path()).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("echo-0.1.0.capsule")).unwrap(),
        b"package bytes"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(),
        b.lock_text
    );
}

#[test]
fn a_lock_changed_after_signing_does_not_verify() {
    let f = fixture();
    // The lock edited to pin a swapped artifact, the signature left as it was.
    let bytes = std::fs::read(&f.out).unwrap();
    let old = ArtifactHash::of(b"component").to_string();
    let new = ArtifactHash::of(b"swapped").to_string();
    let text = String::from_utf8_lossy(&bytes).replace(&old, &new);
    std::fs::write(&f.out, text.as_bytes()).unwrap();
    let b = Bundle::read(&f.out).unwrap();
    let e = b.verify().unwrap_err();
    assert!(matches!(e, ShuttleError::BadSignature { .. }), "{e}");
    assert!(e.to_string().contains("changed after it was signed"), "{e}");
}

#[test]
fn a_bundle_resigned_by_another_key_verifies_but_is_not_trusted() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let mut trust = TrustStore::load(&dir.path().join(TRUST_FILE)).unwrap();
    trust
        .add("acme", &f.key.public_key().to_string(), false)
        .unwrap();
    let b = Bundle::read(&f.out).unwrap();
    assert_eq!(trust.check(&b).unwrap().name, "acme");

    let mallory = KeyPair::from_seed(&[66; 32]);
    std::fs::write(f.src.join(LOCK_FILE), lock_for(b"swapped").to_toml()).unwrap();
    pack(&f.src, &mallory, &f.out).unwrap();
    let b = Bundle::read(&f.out).unwrap();
    b.verify().unwrap();
    let e = trust.check(&b).unwrap_err().to_string();
    assert!(
        e.contains("not a trusted publisher") && e.contains(&mallory.public_key().to_string()),
        "{e}"
    );
}

#[test]
fn truncated_or_reshaped_bundles_are_refused() {
    let f = fixture();
    let bytes = std::fs::read(&f.out).unwrap();
    for cut in [10, 600, 1500, 2600, bytes.len() - 1100] {
        std::fs::write(&f.out, &bytes[..cut]).unwrap();
        let e = malformed(&f.out);
        assert!(
            e.contains("truncated") || e.contains("unreadable"),
            "cut at {cut}: {e}"
        );
    }
    std::fs::write(&f.out, b"").unwrap();
    assert!(malformed(&f.out).contains("no `SHUTTLE`"));

    let write = |entries: &[(&str, &[u8])]| {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            // The name goes in raw: tar's own setters refuse `..`, an attacker's tool does not.
            let mut h = tar::Header::new_ustar();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        std::fs::write(&f.out, b.into_inner().unwrap()).unwrap();
    };
    let lock = lock_for(b"component").to_toml();
    let good_sig = toml::to_string(&SignatureFile {
        publisher: f.key.public_key().to_string(),
        signature: hex::encode(f.key.sign(&signed_message(lock.as_bytes()))),
    })
    .unwrap();
    let head: [(&str, &[u8]); 4] = [
        (MARKER_FILE, MARKER.as_bytes()),
        (MANIFEST_FILE, TOML.as_bytes()),
        (LOCK_FILE, lock.as_bytes()),
        (SIGNATURE_FILE, good_sig.as_bytes()),
    ];
    fn with<'a>(
        head: &[(&'a str, &'a [u8])],
        extra: &[(&'a str, &'a [u8])],
    ) -> Vec<(&'a str, &'a [u8])> {
        let mut all = head.to_vec();
        all.extend_from_slice(extra);
        all
    }
    write(&with(&head, &[("capsules/../../etc/x.capsule", b"x")]));
    assert!(malformed(&f.out).contains("unexpected entry"));
    write(&with(
        &head,
        &[("capsules/a.capsule", b"x"), ("capsules/a.capsule", b"y")],
    ));
    assert!(malformed(&f.out).contains("appears twice"));
    write(&with(&head, &[("notes.txt", b"x")]));
    assert!(malformed(&f.out).contains("unexpected entry `notes.txt`"));
    write(&with(&head, &[]));
    assert!(malformed(&f.out).contains("no packages"));
    write(&[
        head[1],
        head[0],
        head[2],
        head[3],
        ("capsules/a.capsule", b"x"),
    ]);
    assert!(malformed(&f.out).contains("out of place"));
    // With every entry well placed the bundle reads: the cases above fail for their reason.
    write(&with(&head, &[("capsules/a.capsule", b"x")]));
    Bundle::read(&f.out).unwrap().verify().unwrap();
    let mut wrong = head;
    wrong[0] = (MARKER_FILE, b"astrid-shuttle 9\n");
    let mut all = wrong.to_vec();
    all.push(("capsules/a.capsule", b"x"));
    write(&all);
    assert!(malformed(&f.out).contains("does not say"));
}

#[test]
fn the_trust_store_adds_lists_and_removes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(TRUST_FILE);
    let key = KeyPair::from_seed(&[1; 32]).public_key().to_string();
    let mut t = TrustStore::load(&path).unwrap();
    assert!(t.publishers().is_empty());
    t.add("acme", &key, false).unwrap();
    assert!(t
        .add("acme", &key, false)
        .unwrap_err()
        .to_string()
        .contains("already"));
    assert!(t
        .add("other", &key, false)
        .unwrap_err()
        .to_string()
        .contains("as `acme`"));
    assert!(t.add("bad name!", &key, false).is_err());
    assert!(t
        .add("x", "abc", false)
        .unwrap_err()
        .to_string()
        .contains("not a public key"));
    let reread = TrustStore::load(&path).unwrap();
    assert_eq!(reread.publishers().len(), 1);
    t.remove("acme").unwrap();
    assert!(t
        .remove("acme")
        .unwrap_err()
        .to_string()
        .contains("no trusted publisher"));
    assert!(TrustStore::load(&path).unwrap().publishers().is_empty());
    std::fs::write(&path, "[[publisher]]\nname = \"a\"\nkey = \"zz\"\n").unwrap();
    let e = TrustStore::load(&path).unwrap_err().to_string();
    assert!(e.contains("publisher `a`"), "{e}");
}
