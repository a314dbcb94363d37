//! Runs started by a launcher prepared ahead (see `warm.rs`) behave exactly as cold ones: every
//! argument arrives byte for byte (the launcher's shell interprets none of it), standard input
//! and exit codes pass through, limits hold, and nothing is left once the policy is gone.

mod common;

use std::time::{Duration, Instant};

use astrid_process::{run, LimitKind};
use common::*;

/// Every character class the launcher's shell might be tempted to interpret, and every byte
/// value from 1 to 255 as it occurs in UTF-8 (0x80–0xBF continuation bytes include dash's
/// internal control bytes 0x81–0x88).
fn nasty_args() -> Vec<String> {
    let ascii: String = (1u8..=127).map(char::from).collect();
    let two: String = (0x80u32..0x800).filter_map(char::from_u32).collect();
    let wide: String = [0xE000u32, 0xFFFD, 0x1F600, 0x10FFFF]
        .into_iter()
        .filter_map(char::from_u32)
        .collect();
    vec![
        ascii,
        two,
        wide,
        "'".into(),
        "'\\''".into(),
        "'; touch /tmp/pwned; '".into(),
        "$(touch pwned)`touch pwned`".into(),
        "line one\nline two\n".into(),
        "; }\n{ exec sh -c 'echo escaped' ; }".into(),
        String::new(),
        "\\".into(),
        "--".into(),
    ]
}

/// Waits for the first launcher to be prepared, so the next run is started by it.
fn wait_until_prepared(f: &Fixture) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let before = f.policy.launch_counts();
        let out = f.sh("true");
        assert_eq!(out.exit_code, Some(0));
        if f.policy.launch_counts().prepared > before.prepared {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no run was started by a prepared launcher: {:?}",
            f.policy.launch_counts()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn arguments_arrive_byte_for_byte_through_a_prepared_launcher() {
    let f = Fixture::new();
    wait_until_prepared(&f);
    let args = nasty_args();
    let mut argv: Vec<&str> = vec!["-c", r#"printf '%s\0' "$@""#, "sh"];
    argv.extend(args.iter().map(String::as_str));
    for _ in 0..3 {
        let before = f.policy.launch_counts();
        let out = f.run(&f.cmd("sh", &argv)).unwrap();
        assert_eq!(out.exit_code, Some(0), "{}", text(&out.stderr));
        let mut expected = Vec::new();
        for a in &args {
            expected.extend_from_slice(a.as_bytes());
            expected.push(0);
        }
        assert_eq!(out.stdout, expected, "an argument was changed on its way");
        assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
        // Counted as prepared, unless the next launcher was not ready yet (a busy machine).
        let after = f.policy.launch_counts();
        assert_eq!(
            after.prepared + after.cold,
            before.prepared + before.cold + 1
        );
    }
    assert!(f.policy.launch_counts().prepared >= 2);
    assert!(!f.ws().join("pwned").exists());
    assert!(!std::path::Path::new("/tmp/pwned").exists());
}

#[test]
fn input_output_exit_codes_and_limits_pass_through_a_prepared_launcher() {
    let f = Fixture::new();
    wait_until_prepared(&f);
    let mut cat = f.cmd("sh", &["-c", "cat; exit 7"]);
    cat.stdin = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    cat.max_output = Some(2 << 20);
    let out = f.run(&cat).unwrap();
    assert_eq!(out.exit_code, Some(7));
    assert!(
        out.stdout == cat.stdin,
        "{} bytes came back of {}",
        out.stdout.len(),
        cat.stdin.len()
    );
    // Empty input is end-of-file at once, not a pipe left open.
    let out = f.sh_with("cat; echo done", |c| c.timeout = ms(20_000));
    assert_eq!(text(&out.stdout), "done\n");
    assert!(!out.timed_out);
    // The rlimits the launcher was prepared with hold: a file larger than the limit stops.
    let mut small = f.policy.clone();
    small.limits.max_file_bytes = 1 << 20;
    let mut big = f.cmd("sh", &["-c", "head -c 4000000 /dev/zero > big"]);
    big.timeout = ms(60_000);
    let before = small.launch_counts();
    for _ in 0..3 {
        let out = run(&small, &big).unwrap();
        assert_eq!(out.limit, Some(LimitKind::FileSize), "{out:?}");
        assert!(std::fs::metadata(f.ws().join("big")).unwrap().len() <= 1 << 20);
    }
    // The first run has other limits than the launcher ready then, so it starts cold; the
    // next ones find a launcher prepared for theirs.
    assert!(small.launch_counts().prepared > before.prepared);
    // And the process limit of the prepared cgroup.
    let mut few = f.policy.clone();
    few.limits.max_processes = 16;
    let mut bomb = f.cmd("sh", &["-c", "b() { b | b & }; b; sleep 600"]);
    bomb.timeout = ms(120_000);
    let before = few.launch_counts();
    for _ in 0..2 {
        let out = run(&few, &bomb).unwrap();
        assert_eq!(out.limit, Some(LimitKind::Processes), "{out:?}");
    }
    assert!(
        few.launch_counts().prepared > before.prepared,
        "{:?}",
        few.launch_counts()
    );
}

#[test]
fn no_launcher_fifo_is_left_where_a_name_could_be_opened() {
    let f = Fixture::new();
    wait_until_prepared(&f);
    // A launcher is ready now; its FIFO was unlinked as soon as both ends were open.
    std::thread::sleep(Duration::from_millis(200));
    let run_dir = f.astrid_home().join("run");
    let left: Vec<_> = std::fs::read_dir(&run_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in {}: {left:?}", run_dir.display());
}
