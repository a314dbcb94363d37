//! The authorization step on its cached path: an effect a capability token covers, through
//! the same `Gatekeeper::authorize` every gated host call runs (manifest ceiling, then the
//! principal's tokens, whose signature check is cached after first use). Nobody is asked and
//! nothing is appended: an allowed effect's audit entry is the host call's next step, and
//! its cost is the durable append measured in `host_calls`.
//!
//! - `token`: an `fs:read` under the principal's home, covered by its default grant.

use std::hint::black_box;
use std::time::Instant;

use astrid_benches::{or_die, verdict, Capsules, InProcessKernel};
use astrid_crypto::Resource;
use astrid_sandbox::{Actor, Ceiling, Effect, Gatekeeper, How};
use criterion::{criterion_group, criterion_main, Criterion};

/// Target from the principals issue: the cached path costs at most 1 µs.
const TARGET_NS: f64 = 1_000.0;
const PLAIN_RUNS: u64 = 200_000;

fn authorize(c: &mut Criterion) {
    let capsules = or_die("build", Capsules::build(&["bench"]));
    let kernel = or_die(
        "boot",
        InProcessKernel::boot(vec![capsules.upload("bench")]),
    );
    let ctx = or_die("context", kernel.capsule_context("bench"));
    let actor = Actor::new(&ctx.origin.capsule, &Default::default());
    let gate = Gatekeeper {
        ctx: &ctx,
        actor: &actor,
        deadline: None,
        may_ask: false,
    };
    let read = Effect::new(
        "fs.read",
        Resource::FsRead(kernel.principal_home().join("notes.txt")),
        Ceiling::Accepted,
        String::new(),
    );
    // The first check verifies the token's signature and fills the cache; it must pass, or
    // the numbers below would be of a refusal.
    match gate.authorize(&read) {
        Ok(How::Token) => {}
        other => panic!(
            "the default grant should cover {:?}: {other:?}",
            read.resource
        ),
    }

    let mut group = c.benchmark_group("authorize");
    group.bench_function("token", |b| b.iter(|| gate.authorize(black_box(&read))));
    group.finish();

    let best = (0..3)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..PLAIN_RUNS {
                if gate.authorize(black_box(&read)) != Ok(How::Token) {
                    panic!("authorization changed its answer mid-run");
                }
            }
            started.elapsed().as_nanos() as f64 / PLAIN_RUNS as f64
        })
        .fold(f64::INFINITY, f64::min);
    println!(
        "authorize/token: {best:.1} ns per check ({PLAIN_RUNS} checks, best of 3) \
         (target ≤ {TARGET_NS:.0} ns: {})",
        verdict(best <= TARGET_NS)
    );
}

criterion_group!(benches, authorize);
criterion_main!(benches);
