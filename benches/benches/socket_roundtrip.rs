//! Client → daemon → capsule → client: the real `astrid-daemon` binary on a temporary home,
//! the `bench` capsule installed through the socket's Control Install, and `pong` requests
//! from an `astrid_client::Client`. Criterion reports the mean; a second pass of sequential
//! requests records every latency and prints the percentiles.

use std::time::Duration;

use astrid_benches::{
    daemon_exe, fmt_duration, or_die, time_each, verdict, wait_ready, BenchError, Capsules, Daemon,
    Summary, PONG,
};
use astrid_client::Client;
use astrid_types::wire::{ControlCommand, ControlResponse, LifecycleState};
use astrid_types::AstridHome;
use criterion::{criterion_group, criterion_main, Criterion};

const PAYLOAD: &[u8] = b"ping";
const SAMPLES: usize = 5_000;
const START_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Target from the product brief: median round trip at most 200 µs.
const P50_TARGET: Duration = Duration::from_micros(200);

fn pong(rt: &tokio::runtime::Runtime, client: &Client) -> Result<(), BenchError> {
    let reply = rt.block_on(client.request(PONG, PAYLOAD, REQUEST_TIMEOUT))?;
    if reply != PAYLOAD {
        return Err(BenchError::Reply {
            topic: PONG.into(),
            reply: String::from_utf8_lossy(&reply).into_owned(),
        });
    }
    Ok(())
}

fn install_bench(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    capsules: &Capsules,
) -> Result<(), BenchError> {
    let command = ControlCommand::Install(capsules.upload("bench"));
    match rt.block_on(client.control(command))? {
        ControlResponse::Installed(info) if info.state == LifecycleState::Ready => Ok(()),
        other => Err(BenchError::Daemon(format!(
            "installing bench answered {other:?}"
        ))),
    }
}

fn socket_roundtrip(c: &mut Criterion) {
    let exe = or_die("astrid-daemon", daemon_exe());
    let capsules = or_die("build", Capsules::build(&["bench"]));
    let dir = tempfile::tempdir().expect("temporary ASTRID_HOME");
    let home = AstridHome::new(dir.path());
    // The client's reader and writer tasks run on this thread, inside each `block_on`, so the
    // measurement holds no client-side thread hops; the daemon's side is as in production.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let mut daemon = or_die("start", Daemon::spawn(&exe, &home));
    or_die("start", daemon.wait_for_token(START_TIMEOUT));
    let client = or_die(
        "connect",
        rt.block_on(wait_ready(&home, &[], START_TIMEOUT)),
    );
    or_die("install", install_bench(&rt, &client, &capsules));
    // The first request for the principal runs the capsule's install hook.
    or_die("first pong", pong(&rt, &client));

    let mut group = c.benchmark_group("socket_roundtrip");
    group.bench_function("pong", |b| b.iter(|| or_die("pong", pong(&rt, &client))));
    group.finish();

    let samples = or_die("pong", time_each(SAMPLES, || pong(&rt, &client)));
    if let Some(s) = Summary::of(&samples) {
        println!(
            "socket_roundtrip/pong latency over {SAMPLES} sequential requests: {s} \
             (target p50 ≤ {}: {})",
            fmt_duration(P50_TARGET),
            verdict(s.p50 <= P50_TARGET)
        );
    }
    drop(client);
    or_die("stop", daemon.stop());
}

criterion_group!(benches, socket_roundtrip);
criterion_main!(benches);
