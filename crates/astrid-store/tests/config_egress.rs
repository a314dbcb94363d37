//! Capsule settings overrides, local-network egress consents, and persistence of all the
//! v3 tables, on real SQLite files.

use astrid_store::{PrincipalStore, SecretKey, StoreError};

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn config_set_overwrite_delete_and_sorting() {
    let dir = tempfile::tempdir().unwrap();
    let s = PrincipalStore::open(&dir.path().join("p.db")).unwrap();
    assert!(s.config_all("mail").unwrap().is_empty());

    s.config_set("mail", "server", Some("imap.example.org"))
        .unwrap();
    s.config_set("mail", "port", Some("993")).unwrap();
    s.config_set("mail", "Account", Some("")).unwrap();
    s.config_set("llm", "model", Some("small")).unwrap();
    // Byte order: uppercase before lowercase.
    assert_eq!(
        s.config_all("mail").unwrap(),
        pairs(&[
            ("Account", ""),
            ("port", "993"),
            ("server", "imap.example.org")
        ])
    );
    assert_eq!(s.config_all("llm").unwrap(), pairs(&[("model", "small")]));

    s.config_set("mail", "port", Some("143")).unwrap();
    s.config_set("mail", "server", None).unwrap();
    // Deleting an absent key is not an error.
    s.config_set("mail", "never-set", None).unwrap();
    assert_eq!(
        s.config_all("mail").unwrap(),
        pairs(&[("Account", ""), ("port", "143")])
    );
    assert_eq!(s.config_all("llm").unwrap(), pairs(&[("model", "small")]));
}

#[test]
fn config_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let s = PrincipalStore::open(&dir.path().join("p.db")).unwrap();
    let invalid = |r: Result<(), StoreError>| {
        assert!(matches!(r, Err(StoreError::InvalidArgument(_))), "{r:?}")
    };
    let big = "v".repeat(64 * 1024);
    s.config_set("c", &"k".repeat(64), Some(&big)).unwrap();
    invalid(s.config_set("c", &"k".repeat(65), Some("v")));
    invalid(s.config_set("c", "k", Some(&"v".repeat(64 * 1024 + 1))));
    invalid(s.config_set("c", "", Some("v")));
    invalid(s.config_set("", "k", Some("v")));
    assert!(matches!(
        s.config_all(&"c".repeat(65)),
        Err(StoreError::InvalidArgument(_))
    ));
    assert_eq!(s.config_all("c").unwrap(), vec![("k".repeat(64), big)]);
}

#[test]
fn egress_allow_is_idempotent_and_revocable() {
    let dir = tempfile::tempdir().unwrap();
    let s = PrincipalStore::open(&dir.path().join("p.db")).unwrap();
    assert!(s.egress_list(None).unwrap().is_empty());

    s.egress_allow("mail", "192.168.1.10:993", 1).unwrap();
    s.egress_allow("mail", "192.168.1.10:993", 2).unwrap();
    s.egress_allow("mail", "10.0.0.5:25", 3).unwrap();
    s.egress_allow("hue", "192.168.1.2:80", 4).unwrap();
    // Stored verbatim: the kernel, not the store, decides what a target means.
    s.egress_allow("hue", "not even a host", 5).unwrap();

    assert_eq!(
        s.egress_list(None).unwrap(),
        pairs(&[
            ("hue", "192.168.1.2:80"),
            ("hue", "not even a host"),
            ("mail", "10.0.0.5:25"),
            ("mail", "192.168.1.10:993"),
        ])
    );
    assert_eq!(
        s.egress_list(Some("mail")).unwrap(),
        pairs(&[("mail", "10.0.0.5:25"), ("mail", "192.168.1.10:993")])
    );
    assert!(s.egress_list(Some("other")).unwrap().is_empty());

    assert!(s.egress_revoke("mail", "192.168.1.10:993").unwrap());
    assert!(!s.egress_revoke("mail", "192.168.1.10:993").unwrap());
    // Revoking for one capsule leaves another capsule's identical target alone.
    s.egress_allow("hue", "10.0.0.5:25", 6).unwrap();
    assert!(s.egress_revoke("mail", "10.0.0.5:25").unwrap());
    assert!(s.egress_list(Some("mail")).unwrap().is_empty());
    assert_eq!(
        s.egress_list(Some("hue")).unwrap(),
        pairs(&[
            ("hue", "10.0.0.5:25"),
            ("hue", "192.168.1.2:80"),
            ("hue", "not even a host")
        ])
    );

    assert!(matches!(
        s.egress_allow("mail", "", 7),
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        s.egress_allow("", "h:1", 7),
        Err(StoreError::InvalidArgument(_))
    ));
}

#[test]
fn reopening_keeps_config_secrets_and_egress() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    let key_path = dir.path().join("secret.key");
    {
        let key = SecretKey::load_or_create(&key_path).unwrap();
        let s = PrincipalStore::open(&db).unwrap();
        s.config_set("mail", "port", Some("993")).unwrap();
        s.config_set("mail", "gone", Some("x")).unwrap();
        s.config_set("mail", "gone", None).unwrap();
        s.secret_put(&key, "mail", "password", b"hunter2", "user", 42)
            .unwrap();
        s.egress_allow("mail", "192.168.1.10:993", 7).unwrap();
        s.kv_set("mail", "k", b"v").unwrap();
    }
    let key = SecretKey::load_or_create(&key_path).unwrap();
    let s = PrincipalStore::open(&db).unwrap();
    assert_eq!(s.config_all("mail").unwrap(), pairs(&[("port", "993")]));
    let (value, origin) = s.secret_get(&key, "mail", "password").unwrap().unwrap();
    assert_eq!((&value[..], origin.as_str()), (&b"hunter2"[..], "user"));
    assert_eq!(s.secret_list().unwrap()[0].updated_ms, 42);
    assert_eq!(
        s.egress_list(None).unwrap(),
        pairs(&[("mail", "192.168.1.10:993")])
    );
    assert_eq!(s.kv_get("mail", "k").unwrap().unwrap(), b"v");
}
