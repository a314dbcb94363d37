//! Tokens that try to get through the gate: forged, someone else's, expired, not yet valid,
//! revoked (also after caching), derived and widened, from an unknown issuer.

use std::path::PathBuf;
use std::slice::from_ref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use astrid_crypto::{
    mint_at, CapabilityToken, DenialReason, Gate, KeyPair, Resource, ResourcePattern,
    RevocationList, RevocationStore, StoreError, TokenId, Widening,
};
use astrid_types::PrincipalId;

const T0: u64 = 1_700_000_000_000;
const SKEW: Duration = Duration::from_secs(5);

struct Fixture {
    key: KeyPair,
    clock: Arc<AtomicU64>,
    revocations: RevocationList,
    gate: Gate,
}

fn fixture() -> Fixture {
    let key = KeyPair::from_seed(&[9; 32]);
    let clock = Arc::new(AtomicU64::new(T0));
    let revocations = RevocationList::in_memory();
    let c = clock.clone();
    let gate = Gate::new(
        [key.public_key().clone()],
        revocations.clone(),
        move || c.load(Ordering::SeqCst),
        SKEW,
    );
    Fixture {
        key,
        clock,
        revocations,
        gate,
    }
}

fn alice() -> PrincipalId {
    PrincipalId::new("alice").unwrap()
}

fn read(p: &str) -> Resource {
    Resource::FsRead(PathBuf::from(p))
}

impl Fixture {
    fn mint(
        &self,
        pattern: &str,
        ttl: Option<u64>,
        parent: Option<&CapabilityToken>,
    ) -> CapabilityToken {
        mint_at(
            &self.key,
            alice(),
            ResourcePattern::parse(pattern).unwrap(),
            self.clock.load(Ordering::SeqCst),
            ttl.map(Duration::from_secs),
            parent,
        )
        .unwrap()
    }

    fn reason(&self, resource: &Resource, tokens: &[CapabilityToken]) -> DenialReason {
        self.gate
            .check(&alice(), resource, tokens)
            .unwrap_err()
            .reason
    }
}

#[test]
fn valid_token_is_granted_and_cached() {
    let f = fixture();
    let t = f.mint("fs:read:/home/alice/**", Some(60), None);
    let grant = f
        .gate
        .check(&alice(), &read("/home/alice/a.txt"), from_ref(&t))
        .unwrap();
    assert_eq!(grant.token_id, t.id);
    assert_eq!(f.gate.cached_tokens(), 1);
    let again = f
        .gate
        .check(&alice(), &read("/home/alice/b.txt"), from_ref(&t))
        .unwrap();
    assert_eq!(again.token_id, t.id);
    assert_eq!(f.gate.cached_tokens(), 1);
}

#[test]
fn nothing_covers_the_resource() {
    let f = fixture();
    let t = f.mint("fs:read:/home/alice/**", None, None);
    assert_eq!(
        f.reason(&read("/home/bob/x"), from_ref(&t)),
        DenialReason::NoToken
    );
    assert_eq!(
        f.reason(&read("/home/alice/../bob/x"), from_ref(&t)),
        DenialReason::NoToken
    );
    assert_eq!(
        f.reason(&Resource::FsWrite("/home/alice/x".into()), &[t]),
        DenialReason::NoToken
    );
    assert_eq!(f.reason(&read("/home/alice/x"), &[]), DenialReason::NoToken);
}

#[test]
fn forged_signature_bit_flip() {
    let f = fixture();
    let t = f.mint("fs:read:/home/alice/**", None, None);
    for bit in [0usize, 7, 100, 511] {
        let mut forged = t.clone();
        forged.signature[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            f.reason(&read("/home/alice/x"), &[forged]),
            DenialReason::BadSignature
        );
    }
    // Widening the signed pattern without re-signing.
    let mut widened = t.clone();
    widened.resource = ResourcePattern::parse("fs:read:/**").unwrap();
    assert_eq!(
        f.reason(&read("/etc/passwd"), &[widened]),
        DenialReason::BadSignature
    );
    // A flipped bit in the stored bytes is caught the same way.
    // Tail of the stored form: issued_at (4+8), expires none (4+1), parent none (4+1),
    // signature (4+64); flip a bit inside issued_at.
    let mut bytes = t.to_bytes();
    let at = bytes.len() - 80;
    bytes[at] ^= 0x01;
    let decoded = CapabilityToken::from_bytes(&bytes).unwrap();
    assert_ne!(decoded.issued_at_ms, t.issued_at_ms);
    assert_eq!(
        f.reason(&read("/home/alice/x"), &[decoded]),
        DenialReason::BadSignature
    );
    assert_eq!(f.gate.cached_tokens(), 0);
}

#[test]
fn cached_token_content_change_is_not_a_cache_hit() {
    let f = fixture();
    let t = f.mint("fs:read:/home/alice/**", Some(60), None);
    f.gate
        .check(&alice(), &read("/home/alice/x"), from_ref(&t))
        .unwrap();
    // Same id and signature, longer expiry: must be re-verified, and fails.
    let mut stretched = t.clone();
    stretched.expires_at_ms = None;
    f.clock.fetch_add(3_600_000, Ordering::SeqCst);
    assert_eq!(
        f.reason(&read("/home/alice/x"), &[stretched]),
        DenialReason::BadSignature
    );
}

#[test]
fn token_of_another_principal() {
    let f = fixture();
    let t = f.mint("fs:read:/home/alice/**", None, None);
    let bob = PrincipalId::new("bob").unwrap();
    let denial = f
        .gate
        .check(&bob, &read("/home/alice/x"), from_ref(&t))
        .unwrap_err();
    assert_eq!(denial.reason, DenialReason::WrongPrincipal);
    assert_eq!(denial.token_id, Some(t.id));
    // Rewriting the principal breaks the signature.
    let mut stolen = t;
    stolen.principal = bob.clone();
    let denial = f
        .gate
        .check(&bob, &read("/home/alice/x"), &[stolen])
        .unwrap_err();
    assert_eq!(denial.reason, DenialReason::BadSignature);
}

#[test]
fn expired_and_not_yet_valid_with_bounded_skew() {
    let f = fixture();
    let t = f.mint("tool:fs.read_file", Some(60), None);
    let tool = Resource::Tool("fs.read_file".into());
    f.gate.check(&alice(), &tool, from_ref(&t)).unwrap();
    // Within the skew after expiry: still fine; past it: expired, also when cached.
    f.clock.store(T0 + 60_000 + 5_000, Ordering::SeqCst);
    f.gate.check(&alice(), &tool, from_ref(&t)).unwrap();
    f.clock.store(T0 + 60_000 + 5_001, Ordering::SeqCst);
    assert!(
        matches!(f.reason(&tool, from_ref(&t)), DenialReason::Expired { expires_at_ms, .. } if expires_at_ms == T0 + 60_000)
    );

    // A token issued in the future is refused until the skew covers it.
    f.clock.store(T0 + 100_000, Ordering::SeqCst);
    let future = f.mint("tool:fs.read_file", None, None);
    f.clock.store(T0 + 100_000 - 5_001, Ordering::SeqCst);
    assert!(matches!(
        f.reason(&tool, from_ref(&future)),
        DenialReason::NotYetValid { .. }
    ));
    f.clock.store(T0 + 100_000 - 5_000, Ordering::SeqCst);
    f.gate.check(&alice(), &tool, &[future]).unwrap();
}

#[test]
fn revoked_takes_effect_at_once_even_when_cached() {
    let f = fixture();
    let t = f.mint("net:connect:api.example.com:443", None, None);
    let res = Resource::NetConnect {
        host: "api.example.com".into(),
        port: 443,
    };
    f.gate.check(&alice(), &res, from_ref(&t)).unwrap();
    assert_eq!(f.gate.cached_tokens(), 1);
    f.revocations.revoke(t.id).unwrap();
    assert_eq!(f.reason(&res, from_ref(&t)), DenialReason::Revoked(t.id));
    assert!(f.revocations.is_revoked(&t.id));
    // A fresh gate sharing the list refuses it too.
    let other = Gate::new(
        [f.key.public_key().clone()],
        f.revocations.clone(),
        move || T0,
        SKEW,
    );
    assert_eq!(
        other
            .check(&alice(), &res, from_ref(&t))
            .unwrap_err()
            .reason,
        DenialReason::Revoked(t.id)
    );
}

#[test]
fn poisoned_revocation_list_denies_everything() {
    let f = fixture();
    let t = f.mint("tool:*", None, None);
    f.gate
        .check(&alice(), &Resource::Tool("x".into()), from_ref(&t))
        .unwrap();
    f.revocations.poison("store unreadable");
    assert!(matches!(
        f.reason(&Resource::Tool("x".into()), from_ref(&t)),
        DenialReason::RevocationUnavailable(r) if r == "store unreadable"
    ));
    let gate = Gate::new(
        [f.key.public_key().clone()],
        RevocationList::poisoned("gone"),
        || T0,
        SKEW,
    );
    assert!(gate
        .check(&alice(), &Resource::Tool("x".into()), &[t])
        .is_err());
}

struct FailingStore;
impl RevocationStore for FailingStore {
    fn load_all(&self) -> Result<Vec<TokenId>, StoreError> {
        Err("disk on fire".into())
    }
    fn persist(&self, _: &TokenId) -> Result<(), StoreError> {
        Err("disk on fire".into())
    }
}

#[derive(Default)]
struct MemStore(Mutex<Vec<TokenId>>);
impl RevocationStore for MemStore {
    fn load_all(&self) -> Result<Vec<TokenId>, StoreError> {
        Ok(self.0.lock().unwrap().clone())
    }
    fn persist(&self, id: &TokenId) -> Result<(), StoreError> {
        self.0.lock().unwrap().push(*id);
        Ok(())
    }
}

#[test]
fn revocation_store_persists_and_unreadable_store_fails_closed() {
    let store = Arc::new(MemStore::default());
    let list = RevocationList::with_store(store.clone());
    let id = TokenId::random();
    list.revoke(id).unwrap();
    assert_eq!(*store.0.lock().unwrap(), vec![id]);
    let reloaded = RevocationList::with_store(store);
    assert!(reloaded.is_revoked(&id));
    assert!(!reloaded.is_revoked(&TokenId::random()));

    let broken = RevocationList::with_store(Arc::new(FailingStore));
    assert!(broken.poison_reason().unwrap().contains("disk on fire"));
    assert!(broken.is_revoked(&TokenId::random()));
    // Revoking still takes effect in memory, and the failure is reported.
    let list = RevocationList::in_memory();
    let failing = RevocationList::with_store(Arc::new(FailingStore));
    assert!(failing.revoke(id).is_err());
    assert!(failing.is_revoked(&id));
    assert!(!list.is_revoked(&id));
}

#[test]
fn unknown_issuer_key() {
    let f = fixture();
    let stranger = KeyPair::from_seed(&[1; 32]);
    let t = mint_at(
        &stranger,
        alice(),
        ResourcePattern::parse("tool:*").unwrap(),
        T0,
        None,
        None,
    )
    .unwrap();
    assert_eq!(
        f.reason(&Resource::Tool("x".into()), from_ref(&t)),
        DenialReason::UnknownIssuer(stranger.key_id().to_owned())
    );
    // Claiming the trusted key id does not help: the signature is checked with that key.
    let mut claimed = t;
    claimed.issuer_key_id = f.key.key_id().to_owned();
    assert_eq!(
        f.reason(&Resource::Tool("x".into()), &[claimed]),
        DenialReason::BadSignature
    );
}

#[test]
fn derived_token_needs_its_parent_and_honours_its_revocation() {
    let f = fixture();
    let parent = f.mint("fs:read:/home/alice/**", Some(3600), None);
    let child = f.mint("fs:read:/home/alice/docs/**", Some(60), Some(&parent));
    let res = read("/home/alice/docs/a");
    // Neither presented nor verified before: missing.
    assert_eq!(
        f.reason(&res, from_ref(&child)),
        DenialReason::ParentMissing(parent.id)
    );
    let grant = f
        .gate
        .check(&alice(), &res, &[child.clone(), parent.clone()])
        .unwrap();
    assert_eq!(grant.token_id, child.id);
    // The child alone now works from the cache, and revoking the parent stops it.
    f.gate.check(&alice(), &res, from_ref(&child)).unwrap();
    f.revocations.revoke(parent.id).unwrap();
    assert_eq!(
        f.reason(&res, from_ref(&child)),
        DenialReason::Revoked(parent.id)
    );
}

#[test]
fn grandparent_revocation_reaches_grandchild() {
    let f = fixture();
    let root = f.mint("fs:read:/**", None, None);
    let mid = f.mint("fs:read:/srv/**", None, Some(&root));
    let leaf = f.mint("fs:read:/srv/www/**", None, Some(&mid));
    let res = read("/srv/www/index.html");
    f.gate
        .check(&alice(), &res, &[leaf.clone(), mid.clone(), root.clone()])
        .unwrap();
    f.revocations.revoke(root.id).unwrap();
    assert_eq!(
        f.reason(&res, from_ref(&leaf)),
        DenialReason::Revoked(root.id)
    );
    assert_eq!(
        f.reason(&res, &[leaf, mid, root.clone()]),
        DenialReason::Revoked(root.id)
    );
}

/// A token minted with a buggy minter (signed directly, bypassing the derivation rules)
/// is still refused when it widens its parent.
#[test]
fn derived_token_widening_its_parent_is_refused_at_use() {
    let f = fixture();
    let parent = f.mint("fs:read:/home/alice/docs/**", Some(60), None);
    let res = read("/home/alice/secret");
    let mut wide = f.mint("fs:read:/home/alice/**", Some(60), None);
    wide.parent = Some(parent.id);
    wide.signature = f.key.sign(&wide.signing_bytes());
    assert_eq!(
        f.reason(&res, &[wide, parent.clone()]),
        DenialReason::Widens(Widening::Pattern)
    );

    // The parent itself covers the resources below, so it is not presented again: it is
    // found in the cache, where the first check put it.
    f.gate
        .check(
            &alice(),
            &read("/home/alice/docs/b"),
            std::slice::from_ref(&parent),
        )
        .unwrap();
    let mut longer = f.mint("fs:read:/home/alice/docs/a", Some(120), None);
    longer.parent = Some(parent.id);
    longer.signature = f.key.sign(&longer.signing_bytes());
    assert_eq!(
        f.reason(&read("/home/alice/docs/a"), &[longer]),
        DenialReason::Widens(Widening::Expiry)
    );

    let mut forever = f.mint("fs:read:/home/alice/docs/a", None, None);
    forever.parent = Some(parent.id);
    forever.signature = f.key.sign(&forever.signing_bytes());
    assert_eq!(
        f.reason(&read("/home/alice/docs/a"), &[forever]),
        DenialReason::Widens(Widening::Expiry)
    );
}

#[test]
fn forged_parent_is_refused() {
    let f = fixture();
    let parent = f.mint("fs:read:/home/alice/**", None, None);
    let child = f.mint("fs:read:/home/alice/docs/**", None, Some(&parent));
    let mut forged_parent = parent.clone();
    forged_parent.expires_at_ms = Some(T0 + 1);
    assert_eq!(
        f.reason(&read("/home/alice/docs/x"), &[child, forged_parent]),
        DenialReason::BadSignature
    );
}

#[test]
fn chain_loops_are_refused() {
    let f = fixture();
    let mut a = f.mint("tool:*", None, None);
    let mut b = f.mint("tool:*", None, None);
    a.parent = Some(b.id);
    b.parent = Some(a.id);
    a.signature = f.key.sign(&a.signing_bytes());
    b.signature = f.key.sign(&b.signing_bytes());
    assert_eq!(
        f.reason(&Resource::Tool("x".into()), &[a, b]),
        DenialReason::ChainTooDeep
    );
}

#[test]
fn best_reason_is_reported() {
    let f = fixture();
    let bob = PrincipalId::new("bob").unwrap();
    let bobs = mint_at(
        &f.key,
        bob,
        ResourcePattern::parse("tool:*").unwrap(),
        T0,
        None,
        None,
    )
    .unwrap();
    let expired = f.mint("tool:x", Some(1), None);
    let unrelated = f.mint("tool:y", None, None);
    f.clock.store(T0 + 60_000, Ordering::SeqCst);
    let tool = Resource::Tool("x".into());
    let d = f
        .gate
        .check(
            &alice(),
            &tool,
            &[unrelated.clone(), bobs.clone(), expired.clone()],
        )
        .unwrap_err();
    assert!(matches!(d.reason, DenialReason::Expired { .. }), "{d}");
    assert_eq!(d.token_id, Some(expired.id));
    let d = f
        .gate
        .check(&alice(), &tool, &[unrelated.clone(), bobs])
        .unwrap_err();
    assert_eq!(d.reason, DenialReason::WrongPrincipal);
    assert_eq!(
        d.to_string(),
        "capability denied: the token belongs to another principal"
    );
    // A good token anywhere in the list wins.
    let good = f.mint("tool:x", None, None);
    f.gate
        .check(&alice(), &tool, &[unrelated, expired, good])
        .unwrap();
}

#[test]
fn cache_can_be_disabled_and_is_bounded() {
    let f = fixture();
    let gate = Gate::new(
        [f.key.public_key().clone()],
        RevocationList::in_memory(),
        || T0,
        SKEW,
    )
    .with_cache_capacity(0);
    let t = f.mint("tool:*", None, None);
    gate.check(&alice(), &Resource::Tool("x".into()), from_ref(&t))
        .unwrap();
    assert_eq!(gate.cached_tokens(), 0);
    let small = Gate::new(
        [f.key.public_key().clone()],
        RevocationList::in_memory(),
        || T0,
        SKEW,
    )
    .with_cache_capacity(3);
    for _ in 0..10 {
        let t = f.mint("tool:*", None, None);
        small
            .check(&alice(), &Resource::Tool("x".into()), &[t])
            .unwrap();
        assert!(small.cached_tokens() <= 3);
    }
}

#[test]
fn gate_is_shareable_across_threads() {
    let f = fixture();
    let t = f.mint("tool:*", None, None);
    let gate = Arc::new(f.gate);
    std::thread::scope(|s| {
        for _ in 0..4 {
            let gate = gate.clone();
            let t = t.clone();
            s.spawn(move || {
                for _ in 0..100 {
                    gate.check(
                        &alice(),
                        &Resource::Tool("x".into()),
                        std::slice::from_ref(&t),
                    )
                    .unwrap();
                }
            });
        }
    });
}

/// What the gate answers decides whether a person may be asked instead: only when no live
/// token covers the effect. Each reason here is produced by the gate itself.
#[test]
fn only_a_missing_token_may_be_put_to_a_person() {
    let f = fixture();
    let x = read("/home/alice/x");
    // Nothing covers it.
    assert!(f.reason(&x, &[]).person_may_decide());
    // Expired.
    let short = f.mint("fs:read:/home/alice/**", Some(1), None);
    f.clock.fetch_add(60_000, Ordering::SeqCst);
    let expired = f.reason(&x, from_ref(&short));
    assert!(
        matches!(expired, DenialReason::Expired { .. }),
        "{expired:?}"
    );
    assert!(expired.person_may_decide());
    // Revoked: the operator withdrew it.
    let t = f.mint("fs:read:/home/alice/**", None, None);
    f.revocations.revoke(t.id).unwrap();
    let revoked = f.reason(&x, from_ref(&t));
    assert_eq!(revoked, DenialReason::Revoked(t.id));
    assert!(!revoked.person_may_decide());
    // Forged.
    let mut forged = f.mint("fs:read:/home/alice/**", None, None);
    forged.signature[3] ^= 1;
    let bad = f.reason(&x, &[forged]);
    assert_eq!(bad, DenialReason::BadSignature);
    assert!(!bad.person_may_decide());
    // Every reason that says "attack or fault" is refused outright.
    for reason in [
        DenialReason::UnknownIssuer("k".into()),
        DenialReason::UnsupportedVersion(9),
        DenialReason::ChainTooDeep,
        DenialReason::ParentMissing(t.id),
        DenialReason::RevocationUnavailable("disk".into()),
    ] {
        assert!(!reason.person_may_decide(), "{reason:?}");
    }
}
