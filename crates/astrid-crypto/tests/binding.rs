//! Tokens bound to one capsule (what an allow-always answer mints): their encoding, the gate
//! refusing them to every other capsule, and derivation keeping the binding.

use std::path::PathBuf;
use std::time::Duration;

use astrid_crypto::canonical::CanonicalReader;
use astrid_crypto::{
    mint_at, mint_bound_at, CapabilityToken, DenialReason, Gate, KeyPair, Resource,
    ResourcePattern, RevocationList, TOKEN_DOMAIN, TOKEN_VERSION_BOUND,
};
use astrid_types::{CapsuleName, PrincipalId};

const T0: u64 = 1_700_000_000_000;

fn alice() -> PrincipalId {
    PrincipalId::new("alice").unwrap()
}

fn capsule(name: &str) -> CapsuleName {
    CapsuleName::new(name).unwrap()
}

fn key() -> KeyPair {
    KeyPair::from_seed(&[5; 32])
}

fn gate() -> Gate {
    Gate::new(
        [key().public_key().clone()],
        RevocationList::in_memory(),
        || T0,
        Duration::from_secs(5),
    )
}

fn bound(pattern: &str, to: &str, parent: Option<&CapabilityToken>) -> CapabilityToken {
    mint_bound_at(
        &key(),
        alice(),
        capsule(to),
        ResourcePattern::parse(pattern).unwrap(),
        T0,
        None,
        parent,
    )
    .unwrap()
}

fn write(p: &str) -> Resource {
    Resource::FsWrite(PathBuf::from(p))
}

#[test]
fn a_bound_token_is_version_2_with_the_capsule_as_its_last_signed_field() {
    let t = bound("fs:write:/srv/out/report.txt", "tool-fs", None);
    assert_eq!(t.version, TOKEN_VERSION_BOUND);
    assert_eq!(t.capsule, Some(capsule("tool-fs")));
    let bytes = t.signing_bytes();
    let mut r = CanonicalReader::new(&bytes, TOKEN_DOMAIN).unwrap();
    assert_eq!(r.u8("version").unwrap(), 2);
    for field in ["id", "issuer", "principal", "resource", "issued", "expires"] {
        r.field(field).unwrap();
    }
    r.field("parent").unwrap();
    assert_eq!(r.str("capsule").unwrap(), "tool-fs");
    r.finish().unwrap();

    let back = CapabilityToken::from_text(&t.to_text()).unwrap();
    assert_eq!(back, t);
    back.verify_signature(key().public_key()).unwrap();
}

#[test]
fn the_binding_cannot_be_stripped_or_moved() {
    let t = bound("fs:write:/srv/out/report.txt", "tool-fs", None);
    // Claiming to be unbound (or bound elsewhere) breaks the signature.
    let mut stripped = t.clone();
    stripped.capsule = None;
    stripped.version = 1;
    assert!(stripped.verify_signature(key().public_key()).is_err());
    let mut moved = t.clone();
    moved.capsule = Some(capsule("evil"));
    assert!(moved.verify_signature(key().public_key()).is_err());
    // A version that disagrees with the binding is refused by the gate, whatever it signs.
    let mut odd = t.clone();
    odd.version = 1;
    let d = gate()
        .check_as(
            &alice(),
            Some(&capsule("tool-fs")),
            &write("/srv/out/report.txt"),
            &[odd],
        )
        .unwrap_err();
    assert_eq!(d.reason, DenialReason::UnsupportedVersion(1));
}

#[test]
fn the_gate_grants_a_bound_token_only_to_its_capsule() {
    let g = gate();
    let t = bound("fs:write:/srv/out/report.txt", "tool-fs", None);
    let effect = write("/srv/out/report.txt");
    let tokens = [t.clone()];
    assert!(g
        .check_as(&alice(), Some(&capsule("tool-fs")), &effect, &tokens)
        .is_ok());
    let other = g
        .check_as(&alice(), Some(&capsule("tool-shell")), &effect, &tokens)
        .unwrap_err();
    assert_eq!(other.reason, DenialReason::WrongCapsule(capsule("tool-fs")));
    // No capsule named: a bound token grants nothing.
    let none = g.check(&alice(), &effect, &tokens).unwrap_err();
    assert_eq!(none.reason, DenialReason::WrongCapsule(capsule("tool-fs")));
    // An unbound token still serves every capsule.
    let open = mint_at(
        &key(),
        alice(),
        ResourcePattern::parse("fs:write:/srv/out/**").unwrap(),
        T0,
        None,
        None,
    )
    .unwrap();
    assert!(g
        .check_as(&alice(), Some(&capsule("tool-shell")), &effect, &[open])
        .is_ok());
}

#[test]
fn derived_tokens_keep_the_parents_binding() {
    let parent = bound("fs:write:/srv/out/**", "tool-fs", None);
    let same = bound("fs:write:/srv/out/a", "tool-fs", Some(&parent));
    assert_eq!(same.parent, Some(parent.id));
    let err = mint_bound_at(
        &key(),
        alice(),
        capsule("tool-shell"),
        ResourcePattern::parse("fs:write:/srv/out/a").unwrap(),
        T0,
        None,
        Some(&parent),
    )
    .unwrap_err();
    assert!(err.to_string().contains("capsule"), "{err}");
    let err = mint_at(
        &key(),
        alice(),
        ResourcePattern::parse("fs:write:/srv/out/a").unwrap(),
        T0,
        None,
        Some(&parent),
    )
    .unwrap_err();
    assert!(err.to_string().contains("capsule"), "{err}");
    // An unbound parent may be narrowed to one capsule.
    let open = mint_at(
        &key(),
        alice(),
        ResourcePattern::parse("fs:write:/srv/**").unwrap(),
        T0,
        None,
        None,
    )
    .unwrap();
    bound("fs:write:/srv/out/b", "tool-fs", Some(&open));
}

#[test]
fn exact_patterns_name_one_resource_or_none() {
    let exact = |r: &Resource| ResourcePattern::exact(r).map(|p| p.to_string());
    assert_eq!(
        exact(&write("/srv/out/report.txt")).as_deref(),
        Some("fs:write:/srv/out/report.txt")
    );
    // A `*` or `**` in a file name would widen the pattern: no exact pattern exists.
    assert_eq!(exact(&write("/srv/out/**")), None);
    assert_eq!(exact(&write("/srv/*/x")), None);
    assert_eq!(exact(&write("/srv/a*b")), None);
    assert_eq!(exact(&write("/srv/../etc")), None);
    assert_eq!(
        exact(&Resource::NetConnect {
            host: "API.example.com".into(),
            port: 443
        })
        .as_deref(),
        Some("net:connect:api.example.com:443")
    );
    assert_eq!(
        exact(&Resource::ProcessExec("git".into())).as_deref(),
        Some("process:exec:git")
    );
    assert_eq!(exact(&Resource::Tool("*".into())), None);
}

#[test]
fn literal_prefixes() {
    let prefix = |p: &str| match ResourcePattern::parse(p).unwrap() {
        ResourcePattern::FsWrite(p) => (p.literal_prefix(), p.is_exact(), p.has_one_wildcard()),
        other => panic!("{other}"),
    };
    assert_eq!(prefix("fs:write:/**"), ("/".into(), false, false));
    assert_eq!(prefix("fs:write:/a/b/**"), ("/a/b".into(), false, false));
    assert_eq!(prefix("fs:write:/a/*/c"), ("/a".into(), false, true));
    assert_eq!(prefix("fs:write:/a/b"), ("/a/b".into(), true, false));
}
