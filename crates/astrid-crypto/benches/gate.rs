//! Token check on the hot path: cached (signature already verified) and uncached.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use astrid_crypto::{mint, now_ms, Gate, KeyPair, Resource, ResourcePattern, RevocationList};
use astrid_types::PrincipalId;
use criterion::{criterion_group, criterion_main, Criterion};

fn gate_benches(c: &mut Criterion) {
    let key = KeyPair::from_seed(&[5; 32]);
    let principal = PrincipalId::new("alice").unwrap();
    let pattern = ResourcePattern::parse("fs:read:/home/alice/project/**").unwrap();
    let parent = mint(
        &key,
        principal.clone(),
        pattern,
        Some(Duration::from_secs(3600)),
        None,
    )
    .unwrap();
    let narrow = ResourcePattern::parse("fs:read:/home/alice/project/src/**").unwrap();
    let child = mint(
        &key,
        principal.clone(),
        narrow,
        Some(Duration::from_secs(600)),
        Some(&parent),
    )
    .unwrap();
    let revocations = RevocationList::in_memory();
    // A few thousand revoked ids, so the per-call revocation lookup is not an empty set.
    for _ in 0..5000 {
        revocations
            .revoke(astrid_crypto::TokenId::random())
            .unwrap();
    }
    let resource = Resource::FsRead(PathBuf::from("/home/alice/project/src/kernel/main.rs"));
    let skew = Duration::from_secs(30);

    let cached = Gate::new(
        [key.public_key().clone()],
        revocations.clone(),
        now_ms,
        skew,
    );
    let tokens = [parent.clone()];
    cached.check(&principal, &resource, &tokens).unwrap();
    c.bench_function("gate/check_cached", |b| {
        b.iter(|| {
            cached
                .check(
                    black_box(&principal),
                    black_box(&resource),
                    black_box(&tokens),
                )
                .unwrap()
        })
    });

    let chain = [child.clone(), parent.clone()];
    cached.check(&principal, &resource, &chain).unwrap();
    c.bench_function("gate/check_cached_derived", |b| {
        b.iter(|| {
            cached
                .check(
                    black_box(&principal),
                    black_box(&resource),
                    black_box(&chain),
                )
                .unwrap()
        })
    });

    let uncached =
        Gate::new([key.public_key().clone()], revocations, now_ms, skew).with_cache_capacity(0);
    c.bench_function("gate/check_uncached", |b| {
        b.iter(|| {
            uncached
                .check(
                    black_box(&principal),
                    black_box(&resource),
                    black_box(&tokens),
                )
                .unwrap()
        })
    });

    let msg = parent.signing_bytes();
    c.bench_function("keys/sign_token", |b| b.iter(|| key.sign(black_box(&msg))));
    c.bench_function("token/from_bytes", |b| {
        let bytes = parent.to_bytes();
        b.iter(|| astrid_crypto::CapabilityToken::from_bytes(black_box(&bytes)).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = gate_benches
}
criterion_main!(benches);
