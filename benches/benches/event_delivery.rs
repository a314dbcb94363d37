//! Event delivery inside the daemon: `Kernel::request` to the `bench` capsule's `pong`
//! handler, in-process (no socket). Each request matches the subscription, hops to the
//! blocking pool, creates a fresh Store, instantiates the capsule from its `InstancePre`,
//! calls the handler and hands the reply back to the caller's task.

use astrid_benches::{or_die, time_each, Capsules, InProcessKernel, Summary, PONG};
use criterion::{criterion_group, criterion_main, Criterion};

const PAYLOAD: &[u8] = b"ping";
/// Sequential requests in the percentile pass.
const SAMPLES: usize = 5_000;

fn pong(kernel: &InProcessKernel) -> Result<(), astrid_benches::BenchError> {
    let reply = kernel.request(PONG, PAYLOAD.to_vec())?;
    if reply != PAYLOAD {
        return Err(astrid_benches::BenchError::Reply {
            topic: PONG.into(),
            reply: String::from_utf8_lossy(&reply).into_owned(),
        });
    }
    Ok(())
}

fn event_delivery(c: &mut Criterion) {
    let capsules = or_die("build", Capsules::build(&["bench"]));
    let kernel = or_die(
        "boot",
        InProcessKernel::boot(vec![capsules.upload("bench")]),
    );
    // Runs the install hook once, outside the measurements, and checks the echo.
    or_die("first call", pong(&kernel));

    let mut group = c.benchmark_group("event_delivery");
    group.bench_function("pong", |b| b.iter(|| or_die("pong", pong(&kernel))));
    group.finish();

    let samples = or_die("pong", time_each(SAMPLES, || pong(&kernel)));
    if let Some(s) = Summary::of(&samples) {
        println!("event_delivery/pong latency, in-process, sequential: {s}");
    }
}

criterion_group!(benches, event_delivery);
criterion_main!(benches);
