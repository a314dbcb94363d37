//! Time limit, output caps, stdin and missing programs, against real bubblewrap.

mod common;

use astrid_process::ProcessError;
use common::*;

#[test]
fn the_time_limit_kills_the_whole_sandbox() {
    let f = Fixture::new();
    // A background grandchild that would write a file later must die with the sandbox.
    let out = f.sh_with(
        "echo started; (sleep 1; echo late > late.txt) & sleep 30",
        |c| c.timeout = ms(300),
    );
    assert!(out.timed_out);
    assert_eq!(out.exit_code, None);
    assert_eq!(
        text(&out.stdout),
        "started\n",
        "output before the kill is kept"
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(
        !f.ws().join("late.txt").exists(),
        "a process outlived the sandbox"
    );

    // No time left: nothing runs at all.
    let out = f.sh_with("echo ran > ran.txt", |c| {
        c.timeout = Some(std::time::Duration::ZERO)
    });
    assert!(out.timed_out && out.exit_code.is_none());
    assert!(!f.ws().join("ran.txt").exists());

    // A program that finishes in time is not marked.
    let out = f.sh_with("exit 0", |c| c.timeout = ms(60_000));
    assert!(!out.timed_out);
    assert_eq!(out.exit_code, Some(0));
}

#[test]
fn a_program_that_closes_its_output_is_still_killed_at_the_deadline() {
    let f = Fixture::new();
    let out = f.sh_with("exec >&- 2>&-; sleep 30", |c| c.timeout = ms(300));
    assert!(out.timed_out);
    assert_eq!(out.exit_code, None);
}

#[test]
fn output_past_the_cap_is_dropped_and_reported() {
    let f = Fixture::new();
    let out = f.sh_with("yes | head -c 10000000", |c| c.max_output = Some(1000));
    assert_eq!(
        out.exit_code,
        Some(0),
        "the program was drained, not blocked or killed"
    );
    assert_eq!(out.stdout.len(), 1000);
    assert!(out.stdout.starts_with(b"y\ny\n"));
    assert!(out.truncated && !out.timed_out);

    let out = f.sh_with("head -c 5000 /dev/zero >&2; echo small", |c| {
        c.max_output = Some(100)
    });
    assert_eq!(
        (out.stderr.len(), text(&out.stdout)),
        (100, "small\n".to_string())
    );
    assert!(out.truncated);

    let out = f.sh_with("head -c 100 /dev/zero", |c| c.max_output = Some(100));
    assert_eq!(out.stdout.len(), 100);
    assert!(!out.truncated, "exactly the cap is not truncation");

    let out = f.sh_with("echo hi", |c| c.max_output = Some(0));
    assert_eq!((out.stdout.len(), out.truncated), (0, true));

    // The policy maximum bounds whatever the command asks for.
    let mut small = f.policy.clone();
    small.max_output = 10;
    let mut c = f.cmd("sh", &["-c", "yes | head -c 1000"]);
    c.max_output = Some(1 << 30);
    let out = astrid_process::run(&small, &c).unwrap();
    assert_eq!((out.stdout.len(), out.truncated), (10, true));
}

#[test]
fn stdin_is_delivered_and_closed() {
    let f = Fixture::new();
    // Larger than a pipe buffer, so writing and reading must overlap.
    let input: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut c = f.cmd("cat", &[]);
    c.stdin = input.clone();
    c.max_output = Some(2 << 20);
    let out = f.run(&c).unwrap();
    assert_eq!(out.exit_code, Some(0));
    assert!(!out.truncated);
    assert!(out.stdout == input, "stdin round trip differs");

    // No stdin: the program sees end of input at once instead of waiting.
    let out = f.run(&f.cmd("wc", &["-c"])).unwrap();
    assert_eq!(text(&out.stdout).trim(), "0");

    // A program that never reads a large stdin still finishes.
    let mut c = f.cmd("true", &[]);
    c.stdin = vec![b'x'; 4 << 20];
    assert_eq!(f.run(&c).unwrap().exit_code, Some(0));
}

#[test]
fn a_missing_program_is_not_found() {
    let f = Fixture::new();
    for program in [
        "astrid-no-such-program",
        "/nonexistent/bin/tool",
        "./missing.sh",
        "--help",
    ] {
        let err = f.run(&f.cmd(program, &[])).unwrap_err();
        assert!(
            matches!(err, ProcessError::NotFound(ref m) if m.contains(program)),
            "{program}: {err:?}"
        );
    }
    // A program in the workspace can be run by relative path.
    let script = f.ws().join("hello.sh");
    std::fs::write(&script, "#!/bin/sh\necho from-workspace\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = f.run(&f.cmd("./hello.sh", &[])).unwrap();
    assert_eq!(text(&out.stdout), "from-workspace\n");
    // A file that is not executable is refused, not reported as missing.
    std::fs::write(f.ws().join("data.txt"), "x").unwrap();
    let err = f.run(&f.cmd("./data.txt", &[])).unwrap_err();
    assert!(matches!(err, ProcessError::InvalidArgument(_)), "{err:?}");
}

#[test]
fn malformed_commands_are_refused_before_anything_runs() {
    let f = Fixture::new();
    let mut c = f.cmd("", &[]);
    assert!(matches!(f.run(&c), Err(ProcessError::InvalidArgument(_))));
    c = f.cmd("echo", &["a\0b"]);
    assert!(matches!(f.run(&c), Err(ProcessError::InvalidArgument(_))));
    c = f.cmd("echo", &[]);
    c.cwd = f.ws().join("missing");
    assert!(matches!(f.run(&c), Err(ProcessError::InvalidArgument(_))));
    c.cwd = "relative".into();
    assert!(matches!(f.run(&c), Err(ProcessError::InvalidArgument(_))));
    c = f.cmd("echo", &[]);
    c.env = vec![("A=B".into(), "x".into())];
    assert!(matches!(f.run(&c), Err(ProcessError::InvalidArgument(_))));
}
