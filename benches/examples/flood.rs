//! One principal floods the bus; how much does another principal's call wait?
//! (docs/PERFORMANCE.md, "A flood from another principal"). Not a timed test: it reports.
//!
//! The real daemon runs the `bench` capsule for `default` (the victim) and the hostile
//! `misbehave` capsule for `mallory`. The victim's `pong` round trip is timed
//! `FLOOD_SAMPLES` (3,000) times alone, as the baseline of the same run, then again while
//! `FLOOD_CLIENTS` (8) connections of mallory publish `misbehave.v1.loop` as fast as the
//! socket takes it: each publish starts a chain in which the capsule re-publishes its own
//! trigger until the kernel's hop limit ends it, so mallory keeps her capsule's instances and
//! her concurrency quota saturated and the bus full.
//!
//! It prints both distributions and their ratio. It exits non-zero if a victim call fails or
//! if the victim's p99 under the flood exceeds `FLOOD_P99_BOUND_MS` (250): the stated bound.
//!
//! `cargo build --release -p astrid-daemon && cargo run --release -p astrid-benches --example
//! flood`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use astrid_benches::{
    daemon_exe, or_die, setting, wait_ready, BenchError, Capsules, Daemon, Summary, PONG,
};
use astrid_client::Client;
use astrid_types::wire::{ControlCommand, ControlResponse, LifecycleState};
use astrid_types::AstridHome;

const START_TIMEOUT: Duration = Duration::from_secs(120);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const FLOOD_TOPIC: &str = "misbehave.v1.loop";

async fn install(client: &Client, capsules: &Capsules, name: &str) -> Result<(), BenchError> {
    let command = ControlCommand::Install(capsules.upload(name));
    match client.control(command).await? {
        ControlResponse::Installed(info) if info.state == LifecycleState::Ready => Ok(()),
        other => Err(BenchError::Daemon(format!(
            "installing {name} answered {other:?}"
        ))),
    }
}

/// `n` sequential pong round trips; every one must answer with its payload.
async fn pongs(client: &Client, n: u64) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n as usize);
    for i in 0..n {
        let payload = format!("ping {i}");
        let t0 = Instant::now();
        let reply = client
            .request(PONG, payload.as_bytes(), REQUEST_TIMEOUT)
            .await
            .unwrap_or_else(|e| {
                eprintln!("flood: the victim's call {i} failed: {e}");
                std::process::exit(1)
            });
        samples.push(t0.elapsed());
        if reply != payload.as_bytes() {
            eprintln!("flood: the victim's call {i} got a wrong reply");
            std::process::exit(1);
        }
    }
    samples
}

fn main() {
    let n = setting("FLOOD_SAMPLES", 3_000);
    let flooders = setting("FLOOD_CLIENTS", 8);
    let bound = Duration::from_millis(setting("FLOOD_P99_BOUND_MS", 250));
    let exe = or_die("astrid-daemon", daemon_exe());
    let capsules = or_die("build", Capsules::build(&["bench", "misbehave"]));
    let dir = tempfile::tempdir().expect("temporary ASTRID_HOME");
    let home = AstridHome::new(dir.path());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut daemon = or_die("start", Daemon::spawn(&exe, &home));
    or_die("start", daemon.wait_for_token(START_TIMEOUT));

    let (baseline, flooded, published) = rt.block_on(async {
        let op = or_die("connect", wait_ready(&home, &[], START_TIMEOUT).await);
        or_die("install bench", install(&op, &capsules, "bench").await);
        match op
            .control(ControlCommand::AgentCreate {
                name: "mallory".into(),
            })
            .await
        {
            Ok(ControlResponse::Done) => {}
            other => panic!("creating mallory: {other:?}"),
        }
        let mallory = Client::connect(&home, "mallory", "flood")
            .await
            .expect("connecting as mallory");
        or_die(
            "install misbehave",
            install(&mallory, &capsules, "misbehave").await,
        );

        // Warm-up, then the baseline: the victim alone.
        pongs(&op, 200).await;
        let baseline = pongs(&op, n).await;

        let stop = Arc::new(AtomicBool::new(false));
        let published = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..flooders {
            let c = Client::connect(&home, "mallory", "flood")
                .await
                .expect("connecting as mallory");
            let (stop, published) = (stop.clone(), published.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    // Refusals (quota, hop limit) are part of the flood; only a closed
                    // connection ends it.
                    if c.publish(FLOOD_TOPIC, b"flood".to_vec()).await.is_err() && !c.is_connected()
                    {
                        break;
                    }
                    published.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        // Let the flood fill the queues before the victim starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let flooded = pongs(&op, n).await;
        let flood_secs = started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        let published = published.load(Ordering::Relaxed) as f64 / (flood_secs + 0.5);
        (baseline, flooded, published)
    });

    let base = Summary::of(&baseline).expect("samples");
    let under = Summary::of(&flooded).expect("samples");
    println!("flood: victim alone          {base}");
    println!("flood: victim under a flood  {under}");
    println!(
        "flood: ratio under/alone p50 {:.1}×, p99 {:.1}×; mallory published {published:.0}/s \
         from {flooders} connections",
        under.p50.as_secs_f64() / base.p50.as_secs_f64(),
        under.p99.as_secs_f64() / base.p99.as_secs_f64(),
    );
    let stopped: Result<(), BenchError> = daemon.stop();
    or_die("stop", stopped);
    if under.p99 > bound {
        eprintln!(
            "flood: the victim's p99 under the flood ({:?}) exceeds the bound {bound:?}",
            under.p99
        );
        std::process::exit(1);
    }
}
