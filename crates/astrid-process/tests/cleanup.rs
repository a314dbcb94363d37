//! After `run` returns, no helper thread and no child (running or zombie) is left. Alone in its
//! own test binary so no other test's sandboxes are in flight while it counts.

mod common;

use common::*;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn children() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flat_map(|t| std::fs::read_to_string(t.unwrap().path().join("children")).ok())
        .flat_map(|s| s.split_whitespace().map(String::from).collect::<Vec<_>>())
        .collect()
}

#[test]
fn nothing_outlives_a_run() {
    let f = Fixture::new();
    let before = threads();
    assert_eq!(children(), Vec::<String>::new());
    f.sh("echo ok");
    let timed = f.sh_with("sleep 30", |c| c.timeout = ms(200));
    assert!(timed.timed_out);
    let cut = f.sh_with("yes | head -c 1000000", |c| c.max_output = Some(10));
    assert!(cut.truncated);
    let mut c = f.cmd("cat", &[]);
    c.stdin = vec![1; 1 << 20];
    f.run(&c).unwrap();
    assert!(f.run(&f.cmd("no-such-program", &[])).is_err());
    // A fork bomb stopped at the process limit leaves nothing behind either.
    let mut small = f.policy.clone();
    small.limits.max_processes = 32;
    let mut bomb = f.cmd("sh", &["-c", "b() { b | b & }; b; sleep 600"]);
    bomb.timeout = ms(120_000);
    let out = astrid_process::run(&small, &bomb).unwrap();
    assert_eq!(out.limit, Some(astrid_process::LimitKind::Processes));
    // While the policy lives, two launchers are kept ready for the next runs: two children,
    // each in its own cgroups.
    assert!(children().len() <= 2, "{:?}", children());
    let bases = f.policy.cgroups.clone();
    let pid_prefix = format!("astrid-run-{}-", std::process::id());
    let Fixture {
        homes,
        workspace,
        policy,
    } = f;
    drop(policy);
    drop(small);
    // The last clone of the policy is gone: so is its launcher (a launcher still being
    // prepared is dropped when its preparation ends).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = (threads(), children(), run_cgroups(&bases, &pid_prefix));
        if left == (before, Vec::new(), Vec::new()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left after the policy was dropped (threads, children, cgroups): {left:?}, \
             {before} threads before"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop((homes, workspace));
}

/// This process's per-run cgroups still present (each run removes its own).
fn run_cgroups(c: &astrid_process::Cgroups, prefix: &str) -> Vec<String> {
    let bases = [&c.v2, &c.v1_pids, &c.v1_memory];
    assert!(bases.iter().any(|b| b.is_some()), "no cgroup in use here");
    bases
        .into_iter()
        .flatten()
        .flat_map(|b| std::fs::read_dir(b).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}
