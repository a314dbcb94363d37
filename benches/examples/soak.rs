//! Load and soak against the real daemon, capsules and the LLM fixture (docs/PERFORMANCE.md,
//! "Load and soak"). Not a timed test: it reports, and fails only on errors.
//!
//! 1. `SOAK_SESSIONS` (50) clients at once, each with its own session, doing tool-using turns
//!    (model → `fs_read` → model) for `SOAK_SECONDS` (60): every turn must answer; throughput
//!    and the latency distribution are printed.
//! 2. `SOAK_ROUNDS` (2) times, `SOAK_INVOCATIONS` (10,000) tool invocations (`tool.v1.execute.fs_read`) from 8
//!    clients: the daemon's resident memory before and after, and its growth per 1,000.
//!
//! `cargo build --release -p astrid-daemon && cargo run --release -p astrid-benches --example soak`
//! (the example runs the daemon binary in `target/release`; build it first so it is current).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use astrid_benches::{
    daemon_exe, home_and_workspace, or_die, set_up_agent_fleet, setting, wait_ready, BenchError,
    Capsules, Daemon, Summary, AGENT_FLEET,
};
use astrid_client::Client;
use astrid_llm_fixture::{Fixture, FixtureConfig, Step};
use astrid_types::AstridHome;
use serde_json::json;

const START_TIMEOUT: Duration = Duration::from_secs(120);
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The daemon's resident set, from /proc (kB).
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

async fn turn(client: &Client, session: &str, workspace: &str) -> Result<Duration, String> {
    let body = json!({"session": session, "input": "read bench.txt", "workspace": workspace});
    let t0 = Instant::now();
    let reply = client
        .request("agent.v1.turn", body.to_string().into_bytes(), CALL_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let took = t0.elapsed();
    let v: serde_json::Value = serde_json::from_slice(&reply).map_err(|e| e.to_string())?;
    if v["answer"] != "done" || v["steps"] != 2 {
        return Err(format!("unexpected reply {v}"));
    }
    Ok(took)
}

async fn sessions(home: &AstridHome, workspace: &str, n: u64, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..n {
        let client = Client::connect(home, "default", "soak")
            .await
            .expect("connect");
        let (latencies, errors, ws) = (latencies.clone(), errors.clone(), workspace.to_string());
        tasks.push(tokio::spawn(async move {
            let session = format!("soak-{i}");
            while Instant::now() < deadline {
                match turn(&client, &session, &ws).await {
                    Ok(d) => latencies.lock().unwrap().push(d),
                    Err(e) => errors.lock().unwrap().push(e),
                }
            }
        }));
    }
    let t0 = Instant::now();
    for t in tasks {
        t.await.expect("a session task");
    }
    let wall = t0.elapsed();
    let latencies = latencies.lock().unwrap().clone();
    let errors = errors.lock().unwrap().clone();
    let s = Summary::of(&latencies).expect("at least one turn");
    println!(
        "soak/sessions: {n} sessions for {secs} s: {} turns, {} errors, {:.1} turns/s; {s}",
        latencies.len(),
        errors.len(),
        latencies.len() as f64 / wall.as_secs_f64()
    );
    if !errors.is_empty() {
        eprintln!("first errors: {:?}", &errors[..errors.len().min(5)]);
        std::process::exit(1);
    }
}

/// Growth allowed per 1,000 invocations after the first round (which includes warm-up):
/// about 100 bytes each. A per-request leak of any size shows as more over 10,000.
const GROWTH_BOUND_KIB_PER_1000: i64 = 100;

/// Returns the resident-memory growth in KiB per 1,000 invocations.
async fn invocations(home: &AstridHome, workspace: &str, pid: u32, total: u64) -> i64 {
    let before = rss_kb(pid);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let t0 = Instant::now();
    for _ in 0..8 {
        let client = Client::connect(home, "default", "soak")
            .await
            .expect("connect");
        let (done, failed) = (done.clone(), failed.clone());
        let body = json!({"args": {"path": "bench.txt"},
                          "context": {"session": "soak", "workspace": workspace}})
        .to_string();
        tasks.push(tokio::spawn(async move {
            while done.fetch_add(1, Ordering::Relaxed) < total {
                let r = client
                    .request(
                        "tool.v1.execute.fs_read",
                        body.clone().into_bytes(),
                        CALL_TIMEOUT,
                    )
                    .await;
                if r.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("an invocation task");
    }
    let wall = t0.elapsed();
    let after = rss_kb(pid);
    let failed = failed.load(Ordering::Relaxed);
    let growth = (after as i64 - before as i64) * 1000 / total.max(1) as i64;
    println!(
        "soak/invocations: {total} fs_read invocations in {:.1} s ({:.0}/s), {failed} failed; \
         daemon RSS {} MiB before, {} MiB after ({:+} KiB per 1,000)",
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64(),
        before / 1024,
        after / 1024,
        growth
    );
    if failed > 0 {
        std::process::exit(1);
    }
    growth
}

fn main() {
    let n = setting("SOAK_SESSIONS", 50);
    let secs = setting("SOAK_SECONDS", 60);
    let total = setting("SOAK_INVOCATIONS", 10_000);
    let rounds = setting("SOAK_ROUNDS", 2);
    let exe = or_die("astrid-daemon", daemon_exe());
    let capsules = or_die("build", Capsules::build(AGENT_FLEET));
    let dir = tempfile::tempdir().expect("temporary ASTRID_HOME");
    let (home, workspace) = home_and_workspace(dir.path());

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // Played per conversation: every turn, however many run at once, is one tool call and
    // then the answer.
    let fixture = rt
        .block_on(Fixture::start_per_turn(
            FixtureConfig::default(),
            vec![
                Step::tool_call("fs_read", json!({ "path": "bench.txt" })),
                Step::text("done"),
            ],
        ))
        .expect("fixture");
    let mut daemon = or_die("start", Daemon::spawn(&exe, &home));
    or_die("start", daemon.wait_for_token(START_TIMEOUT));
    let pid = daemon.pid();
    rt.block_on(async {
        let client = or_die("connect", wait_ready(&home, &[], START_TIMEOUT).await);
        let (port, base_url) = (fixture.addr().port(), fixture.base_url());
        let set_up = set_up_agent_fleet(&client, &capsules, &base_url, port, &workspace);
        or_die("set up", set_up.await);
        println!("soak: daemon RSS after set-up {} MiB", rss_kb(pid) / 1024);
        sessions(&home, &workspace, n, secs).await;
        println!(
            "soak: daemon RSS after the sessions {} MiB",
            rss_kb(pid) / 1024
        );
        // Twice: the first round includes warm-up (allocator arenas, caches); growth that
        // repeats in the second is what would grow without bound.
        for round in 0..rounds {
            let growth = invocations(&home, &workspace, pid, total).await;
            if round > 0 && growth > GROWTH_BOUND_KIB_PER_1000 {
                eprintln!(
                    "soak: the daemon grew {growth} KiB per 1,000 invocations after warm-up \
                     (bound {GROWTH_BOUND_KIB_PER_1000})"
                );
                std::process::exit(1);
            }
        }
    });
    let stopped: Result<(), BenchError> = daemon.stop();
    or_die("stop", stopped);
    rt.block_on(fixture.shutdown());
}
