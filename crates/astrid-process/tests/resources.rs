//! Resource limits against real bubblewrap: a fork bomb, memory bombs, disk fillers, a file
//! descriptor hog and a CPU spinner each end on their own limit, named in the result, long
//! before the (generous) time limit, and the next command runs normally.

mod common;

use astrid_process::{run, Command, LimitKind, Mechanism, Output, SandboxPolicy};
use common::*;

/// Far beyond how long any of these takes when its limit works: reaching it is a failure.
const GENEROUS: Option<std::time::Duration> = Some(std::time::Duration::from_secs(120));

fn run_with(policy: &SandboxPolicy, cmd: &Command) -> Output {
    let mut cmd = cmd.clone();
    cmd.timeout = GENEROUS;
    run(policy, &cmd).expect("the sandbox starts")
}

fn stopped_by(out: &Output, kind: LimitKind) {
    assert_eq!(
        out.limit,
        Some(kind),
        "exit {:?}, timed out {}, stderr: {}",
        out.exit_code,
        out.timed_out,
        text(&out.stderr)
    );
    assert!(
        !out.timed_out,
        "the time limit, not the {kind} limit, ended it"
    );
}

fn still_works(f: &Fixture, policy: &SandboxPolicy) {
    let out = run_with(policy, &f.cmd("sh", &["-c", "echo after"]));
    assert_eq!(
        (out.exit_code, text(&out.stdout)),
        (Some(0), "after\n".into())
    );
    assert_eq!(out.limit, None);
}

#[test]
fn the_machine_enforces_every_limit_for_the_whole_sandbox() {
    // The tests below rely on it; on a machine where it does not hold they would hang on the
    // time limit instead of failing clearly.
    let f = Fixture::new();
    let e = f.policy.enforcement();
    assert!(e.complete(), "{e}");
    assert_eq!(e.processes, Mechanism::Cgroup, "{e}");
    assert_eq!(e.memory, Mechanism::Cgroup, "{e}");
}

#[test]
fn no_hard_limit_can_be_raised_from_inside() {
    let f = Fixture::new();
    let script = "ulimit -H -n; \
                  ulimit -H -n 1048576 2>/dev/null && echo raised-hard-nofile; \
                  ulimit -S -n 1048576 2>/dev/null && echo raised-soft-nofile; \
                  ulimit -H -t unlimited 2>/dev/null && echo raised-hard-cpu; \
                  ulimit -H -f unlimited 2>/dev/null && echo raised-hard-fsize; \
                  echo done";
    let out = run_with(&f.policy, &f.cmd("sh", &["-c", script]));
    let stdout = text(&out.stdout);
    assert_eq!(out.exit_code, Some(0), "{stdout} {}", text(&out.stderr));
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some(f.policy.limits.max_open_files.to_string().as_str()),
        "{stdout}"
    );
    // Every raise was refused (the shell prints nothing for them), and the script went on.
    assert_eq!(lines.collect::<Vec<_>>(), ["done"], "{stdout}");
}

#[test]
fn a_fork_bomb_hits_the_process_limit_and_the_sandbox_is_stopped() {
    let f = Fixture::new();
    // The default limits, as every tool call gets them.
    let out = run_with(
        &f.policy,
        &f.cmd("sh", &["-c", "bomb() { bomb | bomb & }; bomb; sleep 600"]),
    );
    stopped_by(&out, LimitKind::Processes);
    assert_eq!(out.exit_code, None, "the whole sandbox was killed");
    still_works(&f, &f.policy);
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let f = Fixture::new();
    // The default limit: a shell doubling a string until it cannot.
    let out = run_with(
        &f.policy,
        &f.cmd("sh", &["-c", "s=x; while :; do s=\"$s$s\"; done"]),
    );
    stopped_by(&out, LimitKind::Memory);
    assert_eq!(out.exit_code, None);

    // A pipeline whose tail buffers one endless line, under a smaller limit; the kernel kills
    // tail, and the rest of the sandbox (the shell would sleep on) is stopped too.
    let mut small = f.policy.clone();
    small.limits.max_memory_bytes = 256 << 20;
    let out = run_with(
        &small,
        &f.cmd("sh", &["-c", "head -c 4G /dev/zero | tail; sleep 600"]),
    );
    stopped_by(&out, LimitKind::Memory);
    assert_eq!(out.exit_code, None, "the whole sandbox was stopped");
    // A program that ends right after the kill still has the limit named.
    let out = run_with(
        &small,
        &f.cmd("sh", &["-c", "head -c 4G /dev/zero | tail; echo survived"]),
    );
    stopped_by(&out, LimitKind::Memory);
    still_works(&f, &small);
}

#[test]
fn the_private_tmp_counts_against_memory_and_has_its_own_size() {
    let f = Fixture::new();
    let mut p = f.policy.clone();
    p.limits.tmp_bytes = 32 << 20;
    let out = run_with(&p, &f.cmd("sh", &["-c", "yes > /tmp/fill"]));
    stopped_by(&out, LimitKind::TmpSpace);
    assert_ne!(out.exit_code, Some(0));
    assert!(
        text(&out.stderr).contains("No space left on device"),
        "{}",
        text(&out.stderr)
    );
    still_works(&f, &p);
}

#[test]
fn yes_into_a_workspace_file_stops_at_the_file_size_limit() {
    let f = Fixture::new();
    let mut p = f.policy.clone();
    p.limits.max_file_bytes = 16 << 20;
    let out = run_with(&p, &f.cmd("sh", &["-c", "yes > file"]));
    stopped_by(&out, LimitKind::FileSize);
    let written = std::fs::metadata(f.ws().join("file")).unwrap().len();
    assert_eq!(written, 16 << 20, "the file stops exactly at the limit");
    // No core file from the SIGXFSZ.
    let names: Vec<_> = std::fs::read_dir(f.ws())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["file"]);
    still_works(&f, &p);
}

#[test]
fn opening_files_without_end_hits_the_open_files_limit() {
    let f = Fixture::new();
    let mut p = f.policy.clone();
    p.limits.max_open_files = 64;
    let out = run_with(
        &p,
        &f.cmd(
            "bash",
            &[
                "-c",
                "for i in $(seq 1 10000); do exec {fd}</dev/null || exit 1; done",
            ],
        ),
    );
    stopped_by(&out, LimitKind::OpenFiles);
    assert_eq!(out.exit_code, Some(1), "the program failed on its own");
    still_works(&f, &p);
}

#[test]
fn a_spinning_program_hits_the_cpu_limit() {
    let f = Fixture::new();
    let mut p = f.policy.clone();
    p.limits.max_cpu_seconds = 1;
    let out = run_with(&p, &f.cmd("sh", &["-c", "while :; do :; done"]));
    stopped_by(&out, LimitKind::CpuTime);
    assert_eq!(out.exit_code, Some(128 + 24), "SIGXCPU");
    still_works(&f, &p);
}

#[test]
fn the_limits_reach_every_process_inside() {
    let f = Fixture::new();
    let mut p = f.policy.clone();
    p.limits.max_open_files = 100;
    p.limits.max_cpu_seconds = 77;
    p.limits.tmp_bytes = 8 << 20;
    // A grandchild, so the limits are inherited and not only set on the first program.
    let out = run_with(
        &p,
        &f.cmd(
            "sh",
            &[
                "-c",
                "sh -c 'ulimit -n; ulimit -t; ulimit -c; ulimit -f'; df -k /tmp | tail -1",
            ],
        ),
    );
    assert_eq!(out.exit_code, Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    // dash reports -f in 512-byte blocks.
    let blocks = (p.limits.max_file_bytes / 512).to_string();
    assert_eq!(lines[..4], ["100", "77", "0", blocks.as_str()], "{stdout}");
    assert!(
        lines[4].split_whitespace().nth(1) == Some("8192"),
        "{stdout}"
    );
}

#[test]
fn without_a_cgroup_memory_falls_back_to_an_address_space_limit() {
    let f = Fixture::new();
    let mut p = f.policy.clone();
    p.cgroups = astrid_process::Cgroups::default();
    p.limits.max_memory_bytes = 256 << 20;
    let e = p.enforcement();
    assert_eq!(e.memory, Mechanism::Rlimit);
    if nix::unistd::geteuid().is_root() {
        // Said, not hidden: RLIMIT_NPROC does not bind root.
        assert_eq!(e.processes, Mechanism::NotEnforced);
    }
    let out = run_with(&p, &f.cmd("sh", &["-c", "head -c 4G /dev/zero | tail"]));
    assert!(!out.timed_out);
    assert_ne!(out.exit_code, Some(0), "tail cannot have buffered 4 GiB");
    assert!(
        text(&out.stderr).contains("memory"),
        "{}",
        text(&out.stderr)
    );
    still_works(&f, &p);
}
