//! Spawn-to-exit latency of a sandboxed `true` under the default limits, next to the same
//! without the per-run cgroup (rlimits only) and a plain `std::process` `true`, so the cost of
//! each layer is visible.

use std::path::PathBuf;
use std::time::Duration;

use astrid_process::{run, Command, SandboxPolicy};
use criterion::{criterion_group, criterion_main, Criterion};

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
            assert_eq!(out.exit_code, Some(0));
        })
    });
    let mut no_cgroup = policy.clone();
    no_cgroup.cgroups = astrid_process::Cgroups::default();
    g.bench_function("sandboxed_true_rlimits_only", |b| {
        b.iter(|| {
            let out = run(&no_cgroup, &cmd).expect("run");
            assert_eq!(out.exit_code, Some(0));
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
