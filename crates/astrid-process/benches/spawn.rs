//! Spawn-to-exit latency of a sandboxed `true` under the default limits (by a launcher prepared
//! ahead, as the daemon runs it), next to the same with the launcher started on the run's path
//! ("cold", as before launchers were prepared), without the per-run cgroup (rlimits only), and
//! a plain `std::process` `true`, so the cost of each layer is visible.
#![allow(
    clippy::disallowed_methods,
    reason = "the benchmark's baseline is a plain, unsandboxed spawn"
)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use astrid_process::{run, Command, SandboxPolicy};
use criterion::{criterion_group, criterion_main, Criterion};

/// Between two tool calls there is at least a model turn; this is far less.
const PAUSE: Duration = Duration::from_millis(40);

/// `iters` runs, each after an untimed pause; the time of the runs alone.
fn after_a_pause(iters: u64, policy: &SandboxPolicy, cmd: &Command) -> Duration {
    let mut timed = Duration::ZERO;
    for _ in 0..iters {
        std::thread::sleep(PAUSE);
        let start = Instant::now();
        let out = run(policy, cmd).expect("run");
        timed += start.elapsed();
        assert_eq!(out.exit_code, Some(0), "{out:?}");
    }
    timed
}

fn spawn(c: &mut Criterion) {
    let scratch = tempfile::tempdir().expect("tempdir");
    let home = scratch.path().join("home");
    let astrid_home = scratch.path().join("astrid");
    let ws = scratch.path().join("ws");
    for d in [&home, &astrid_home, &ws] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::create_dir_all(home.join(".ssh")).expect("mkdir .ssh");
    let policy = SandboxPolicy::with_home(&home, &astrid_home).expect("bubblewrap must work here");
    let cmd = Command {
        program: "true".into(),
        cwd: PathBuf::from(&ws),
        ..Default::default()
    };

    let mut g = c.benchmark_group("spawn");
    g.sample_size(30).measurement_time(Duration::from_secs(10));
    g.bench_function("sandboxed_true", |b| {
        b.iter(|| {
            let out = run(&policy, &cmd).expect("run");
            assert_eq!(out.exit_code, Some(0), "{out:?}");
        })
    });
    // As a tool call meets it: the previous run ended a moment ago (untimed pause), so its
    // launcher has been prepared. The loop above instead starts each run the instant the last
    // one ended, while the next launcher is still being prepared.
    g.bench_function("sandboxed_true_after_a_pause", |b| {
        b.iter_custom(|iters| after_a_pause(iters, &policy, &cmd))
    });
    let counts = policy.launch_counts();
    eprintln!(
        "spawn/sandboxed_true: {} runs by a prepared launcher, {} cold",
        counts.prepared, counts.cold
    );
    let cold = policy.without_prepared_launchers();
    g.bench_function("sandboxed_true_cold", |b| {
        b.iter(|| {
            let out = run(&cold, &cmd).expect("run");
            assert_eq!(out.exit_code, Some(0), "{out:?}");
        })
    });
    g.bench_function("sandboxed_true_cold_after_a_pause", |b| {
        b.iter_custom(|iters| after_a_pause(iters, &cold, &cmd))
    });
    let mut no_cgroup = policy.without_prepared_launchers();
    no_cgroup.cgroups = astrid_process::Cgroups::default();
    g.bench_function("sandboxed_true_rlimits_only", |b| {
        b.iter(|| {
            let out = run(&no_cgroup, &cmd).expect("run");
            assert_eq!(out.exit_code, Some(0), "{out:?}");
        })
    });
    g.bench_function("unsandboxed_true", |b| {
        b.iter(|| {
            let st = std::process::Command::new("true").status().expect("spawn");
            assert!(st.success());
        })
    });
    g.finish();
}

criterion_group!(benches, spawn);
criterion_main!(benches);
