//! Guest→host call cost. The `bench` capsule calls a host function N times in a loop and
//! reports the elapsed nanoseconds it measured itself, so the per-call number excludes event
//! delivery and instantiation. Criterion's "time" is therefore nanoseconds per host call.
//!
//! - `nop`: `sys.monotonic-ns`, the cheapest import (no arguments, a u64 back).
//! - `kv_get`: `kv.get` of a 1-byte value: the manifest gate plus a SQLite read.

use std::time::Duration;

use astrid_benches::{or_die, verdict, Capsules, InProcessKernel, KV_LOOP, NOP_LOOP};
use criterion::{criterion_group, criterion_main, Criterion};

/// Target from the product brief: a no-op host call costs at most 1 µs.
const NOP_TARGET_NS: f64 = 1_000.0;

fn host_calls(c: &mut Criterion) {
    let capsules = or_die("build", Capsules::build(&["bench"]));
    let kernel = or_die(
        "boot",
        InProcessKernel::boot(vec![capsules.upload("bench")]),
    );
    // The first invocation for a principal runs the capsule's install hook; keep it out of the
    // measurements.
    or_die("first call", kernel.guest_loop_ns(NOP_LOOP, 1));

    let cases = [
        ("nop", NOP_LOOP, 2_000_000u64),
        ("kv_get", KV_LOOP, 200_000),
    ];
    let mut group = c.benchmark_group("host_calls");
    for (name, topic, _) in cases {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                Duration::from_nanos(or_die(name, kernel.guest_loop_ns(topic, iters)))
            })
        });
    }
    group.finish();

    // One long loop per case, best of three, as a plain number for docs/PERFORMANCE.md.
    for (name, topic, n) in cases {
        let best = (0..3)
            .map(|_| or_die(name, kernel.guest_loop_ns(topic, n)))
            .min()
            .expect("three runs");
        let per_call = best as f64 / n as f64;
        let target = if name == "nop" {
            format!(
                " (target ≤ {NOP_TARGET_NS:.0} ns: {})",
                verdict(per_call <= NOP_TARGET_NS)
            )
        } else {
            String::new()
        };
        println!(
            "host_calls/{name}: {per_call:.1} ns per call ({n} calls timed in the guest, \
             best of 3){target}"
        );
    }
}

criterion_group!(benches, host_calls);
criterion_main!(benches);
