//! Token encoding (strict), text form and the minting rules for derived tokens.

use std::time::Duration;

use astrid_crypto::canonical::CanonicalReader;
use astrid_crypto::{
    mint_at, CapabilityToken, CryptoError, DecodeError, KeyPair, ResourcePattern, TokenId,
    TOKEN_DOMAIN,
};
use astrid_types::PrincipalId;

const T0: u64 = 1_700_000_000_000;

fn alice() -> PrincipalId {
    PrincipalId::new("alice").unwrap()
}

fn pat(s: &str) -> ResourcePattern {
    ResourcePattern::parse(s).unwrap()
}

fn key() -> KeyPair {
    KeyPair::from_seed(&[3; 32])
}

fn token() -> CapabilityToken {
    mint_at(
        &key(),
        alice(),
        pat("fs:read:/home/alice/**"),
        T0,
        Some(Duration::from_secs(3600)),
        None,
    )
    .unwrap()
}

#[test]
fn bytes_and_text_round_trip_and_verify() {
    let t = token();
    assert_eq!(t.version, 1);
    assert_eq!(t.issuer_key_id, key().key_id());
    assert_eq!(t.expires_at_ms, Some(T0 + 3_600_000));
    t.verify_signature(key().public_key()).unwrap();
    let bytes = t.to_bytes();
    assert_eq!(CapabilityToken::from_bytes(&bytes).unwrap(), t);
    let text = t.to_text();
    assert!(text.starts_with("astrid-cap1."), "{text}");
    assert_eq!(CapabilityToken::from_text(&text).unwrap(), t);
    assert_eq!(text.parse::<CapabilityToken>().unwrap(), t);
    let id_text = t.id.to_string();
    assert_eq!(id_text.len(), 32);
    assert_eq!(id_text.parse::<TokenId>().unwrap(), t.id);
    assert!(id_text.to_uppercase().parse::<TokenId>().is_err());
    assert!("abc".parse::<TokenId>().is_err());
}

#[test]
fn canonical_layout_is_the_documented_one() {
    let t = token();
    let signing = t.signing_bytes();
    let mut r = CanonicalReader::new(&signing, TOKEN_DOMAIN).unwrap();
    assert_eq!(r.u8("version").unwrap(), 1);
    assert_eq!(r.fixed::<16>("id").unwrap(), t.id.0);
    assert_eq!(r.str("issuer").unwrap(), key().key_id());
    assert_eq!(r.str("principal").unwrap(), "alice");
    assert_eq!(r.str("resource").unwrap(), "fs:read:/home/alice/**");
    assert_eq!(r.u64("issued").unwrap(), T0);
    assert_eq!(r.opt_u64("expires").unwrap(), Some(T0 + 3_600_000));
    assert_eq!(r.opt_fixed::<16>("parent").unwrap(), None);
    r.finish().unwrap();
    assert!(signing.starts_with(b"astrid-capability-token-v1\0"));
    // Storage form = signing bytes + the signature field.
    let bytes = t.to_bytes();
    assert_eq!(&bytes[..signing.len()], &signing[..]);
    assert_eq!(&bytes[signing.len()..signing.len() + 4], &[0, 0, 0, 64]);
    assert_eq!(&bytes[signing.len() + 4..], &t.signature[..]);
}

#[test]
fn from_bytes_is_strict() {
    let bytes = token().to_bytes();
    for cut in [0, 1, 10, bytes.len() / 2, bytes.len() - 1] {
        let err = CapabilityToken::from_bytes(&bytes[..cut]).unwrap_err();
        assert!(matches!(err, CryptoError::Decode(_)), "cut {cut}: {err}");
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        CapabilityToken::from_bytes(&trailing),
        Err(CryptoError::Decode(DecodeError::Trailing(1)))
    ));
    // Version 3 is refused.
    let mut v3 = bytes.clone();
    v3[TOKEN_DOMAIN.len() + 4] = 3;
    assert!(matches!(
        CapabilityToken::from_bytes(&v3),
        Err(CryptoError::Decode(DecodeError::Version(3)))
    ));
    // An unbound token relabelled as bound (version 2) lacks the capsule field: refused.
    let mut v2 = bytes.clone();
    v2[TOKEN_DOMAIN.len() + 4] = 2;
    assert!(matches!(
        CapabilityToken::from_bytes(&v2),
        Err(CryptoError::Decode(_))
    ));
    // The id field claiming 17 bytes shifts everything after it: refused.
    let mut long_id = bytes.clone();
    long_id[TOKEN_DOMAIN.len() + 5 + 3] = 17;
    assert!(CapabilityToken::from_bytes(&long_id).is_err());
    // A wrong domain tag (e.g. an audit entry) is refused.
    let mut tag = bytes.clone();
    tag[0] = b'x';
    assert!(matches!(
        CapabilityToken::from_bytes(&tag),
        Err(CryptoError::Decode(DecodeError::DomainTag))
    ));
    assert!(CapabilityToken::from_text("astrid-cap1.!!!").is_err());
    assert!(CapabilityToken::from_text("cap.AAAA").is_err());
}

#[test]
fn non_canonical_pattern_in_bytes_is_refused() {
    let mut t = token();
    t.resource = pat("net:connect:example.com:443");
    let good = t.to_bytes();
    let needle = b"example.com";
    let at = good
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    let mut upper = good.clone();
    upper[at] = b'E';
    let err = CapabilityToken::from_bytes(&upper).unwrap_err();
    assert!(err.to_string().contains("canonical"), "{err}");
}

#[test]
fn derived_tokens_may_only_narrow() {
    let k = key();
    let parent = token();
    let child = mint_at(
        &k,
        alice(),
        pat("fs:read:/home/alice/docs/**"),
        T0 + 10,
        Some(Duration::from_secs(60)),
        Some(&parent),
    )
    .unwrap();
    assert_eq!(child.parent, Some(parent.id));

    let mint_child = |principal: PrincipalId, p: &str, at: u64, ttl: Option<Duration>| {
        mint_at(&k, principal, pat(p), at, ttl, Some(&parent))
    };
    let minute = Some(Duration::from_secs(60));
    let cases = [
        (
            mint_child(alice(), "fs:read:/home/**", T0, minute),
            "pattern",
        ),
        (
            mint_child(alice(), "fs:write:/home/alice/x", T0, minute),
            "pattern",
        ),
        (
            mint_child(
                PrincipalId::new("bob").unwrap(),
                "fs:read:/home/alice/x",
                T0,
                minute,
            ),
            "principal",
        ),
        (
            mint_child(alice(), "fs:read:/home/alice/x", T0, None),
            "expire",
        ),
        (
            mint_child(
                alice(),
                "fs:read:/home/alice/x",
                T0,
                Some(Duration::from_secs(3601)),
            ),
            "expire",
        ),
        (
            mint_child(alice(), "fs:read:/home/alice/x", T0 + 3_600_000, minute),
            "expired",
        ),
    ];
    for (result, why) in cases {
        let err = result.unwrap_err();
        assert!(
            matches!(err, CryptoError::Mint(_) | CryptoError::Widening(_)),
            "{err}"
        );
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
    // A parent signed by another key (or tampered with) cannot anchor a child.
    let mut forged = parent.clone();
    forged.resource = pat("fs:read:/**");
    let err = mint_at(
        &k,
        alice(),
        pat("fs:read:/etc/x"),
        T0,
        minute,
        Some(&forged),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not validly signed"), "{err}");
    let other = KeyPair::from_seed(&[4; 32]);
    let err = mint_at(
        &other,
        alice(),
        pat("fs:read:/home/alice/x"),
        T0,
        minute,
        Some(&parent),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not validly signed"), "{err}");
}

#[test]
fn ttl_overflow_is_an_error() {
    let err = mint_at(
        &key(),
        alice(),
        pat("tool:*"),
        u64::MAX - 5,
        Some(Duration::from_secs(1)),
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("overflow"), "{err}");
}

#[test]
fn causes_are_kept_as_sources() {
    use std::error::Error as _;
    // Bad base64 in the text form: CryptoError -> DecodeError -> base64's error.
    let err = CapabilityToken::from_text("astrid-cap1.!!").unwrap_err();
    let decode = err.source().expect("the decode error is kept");
    assert!(decode.is::<DecodeError>(), "{decode:?}");
    let base64 = decode.source().expect("base64's error is kept");
    assert!(base64.is::<base64::DecodeError>(), "{base64:?}");

    // A derived token that widens its parent: the rule it breaks is a typed value.
    let parent = token();
    let err = mint_at(
        &key(),
        alice(),
        pat("fs:read:/home/**"),
        T0,
        Some(Duration::from_secs(60)),
        Some(&parent),
    )
    .unwrap_err();
    let widening = err.source().expect("the widening is kept");
    assert_eq!(
        widening.downcast_ref::<astrid_crypto::Widening>(),
        Some(&astrid_crypto::Widening::Pattern),
        "{err}"
    );
}
