use super::*;
use std::time::Duration;

fn policy(masked: Vec<PathBuf>) -> SandboxPolicy {
    SandboxPolicy {
        bwrap: "/usr/bin/bwrap".into(),
        home: "/home/op".into(),
        masked,
        max_timeout: Duration::from_secs(600),
        default_timeout: Duration::from_secs(60),
        max_output: 4 << 20,
        default_output: 256 << 10,
        limits: crate::Limits::default(),
        prlimit: "/usr/bin/prlimit".into(),
        cgroups: crate::Cgroups::default(),
        netfwd: None,
        runtime_dir: "/nonexistent/run".into(),
        launchers: Default::default(),
    }
}

fn cmd(cwd: &Path) -> Command {
    Command {
        program: "echo".into(),
        args: vec!["hi".into()],
        cwd: cwd.to_path_buf(),
        ..Default::default()
    }
}

fn strings(argv: &[OsString]) -> Vec<String> {
    argv.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

fn position(argv: &[String], window: &[&str]) -> usize {
    argv.windows(window.len())
        .position(|w| w.iter().zip(window).all(|(a, b)| a == b))
        .unwrap_or_else(|| panic!("{window:?} not in {argv:?}"))
}

#[test]
fn masks_come_before_the_workspace_bind_and_the_program_after_a_double_dash() {
    let root = tempfile::tempdir().unwrap();
    let secret_dir = root.path().join("secret");
    let secret_file = root.path().join("token");
    let ws = root.path().join("ws");
    std::fs::create_dir(&secret_dir).unwrap();
    std::fs::write(&secret_file, "x").unwrap();
    std::fs::create_dir(&ws).unwrap();
    let p = policy(vec![
        secret_dir.clone(),
        secret_file.clone(),
        root.path().join("absent"),
    ]);
    let mut c = cmd(&ws);
    c.program = "--help".into();
    c.env = vec![("PATH".into(), "/bin".into())];
    let argv = strings(&bwrap_argv(&p, &c).unwrap());

    let canon = |p: &Path| p.canonicalize().unwrap().to_string_lossy().into_owned();
    let (sd, sf, w) = (canon(&secret_dir), canon(&secret_file), canon(&ws));
    let tmp = position(&argv, &["--tmpfs", "/tmp"]);
    let dir_mask = position(&argv, &["--tmpfs", &sd, "--remount-ro", &sd]);
    let file_mask = position(&argv, &["--ro-bind", "/dev/null", &sf]);
    let bind = position(&argv, &["--bind", &w, &w]);
    assert!(tmp < dir_mask && dir_mask < bind && file_mask < bind);
    assert!(
        !argv.iter().any(|a| a.ends_with("absent")),
        "a missing mask is not mounted"
    );
    position(&argv, &["--chdir", &w]);
    let clear = position(&argv, &["--clearenv"]);
    let base_path = position(&argv, &["--setenv", "PATH", SANDBOX_PATH]);
    let own_path = position(&argv, &["--setenv", "PATH", "/bin"]);
    assert!(
        clear < base_path && base_path < own_path,
        "the command's env overrides the base"
    );
    position(&argv, &["--setenv", "HOME", "/home/op"]);
    assert_eq!(&argv[argv.len() - 3..], ["--", "--help", "hi"]);
}

#[test]
fn malformed_commands_are_invalid_arguments() {
    let ws = tempfile::tempdir().unwrap();
    let p = policy(vec![]);
    let cases: Vec<fn(&mut Command)> = vec![
        |c| c.program.clear(),
        |c| c.program = "ec\0ho".into(),
        |c| c.args.push("a\0b".into()),
        |c| c.env.push((String::new(), "v".into())),
        |c| c.env.push(("A=B".into(), "v".into())),
        |c| c.env.push(("A\0".into(), "v".into())),
        |c| c.env.push(("A".into(), "v\0".into())),
        |c| c.cwd = "relative/dir".into(),
        |c| c.cwd = "/nonexistent/astrid/cwd".into(),
        |c| c.cwd = "/etc/hostname".into(),
        |c| c.cwd = "/".into(),
        |c| c.cwd = "/proc/self".into(),
        |c| c.cwd = "/sys".into(),
        |c| c.cwd = "/dev".into(),
    ];
    for (i, mutate) in cases.iter().enumerate() {
        let mut c = cmd(ws.path());
        mutate(&mut c);
        let err = bwrap_argv(&p, &c).unwrap_err();
        assert!(
            matches!(err, ProcessError::InvalidArgument(_)),
            "case {i}: {err:?}"
        );
    }
    bwrap_argv(&p, &cmd(ws.path())).expect("the unmodified command is fine");
}

#[test]
fn cwd_overlapping_a_mask_is_refused_even_through_symlinks_or_before_it_exists() {
    let root = tempfile::tempdir().unwrap();
    let real = root.path().join("real");
    let home = root.path().join("home");
    std::fs::create_dir_all(real.join("sub")).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    // home/.ssh is a symlink to real: the mask is on real, so cwd real/sub is inside it.
    std::os::unix::fs::symlink(&real, home.join(".ssh")).unwrap();
    // home/.config is a symlink to ws/.config; home/.config/gh does not exist yet.
    let ws = root.path().join("ws");
    std::fs::create_dir_all(ws.join(".config")).unwrap();
    std::os::unix::fs::symlink(ws.join(".config"), home.join(".config")).unwrap();
    let p = policy(vec![home.join(".ssh"), home.join(".config/gh")]);

    for cwd in [
        real.clone(),
        real.join("sub"),
        home.clone(),
        root.path().to_path_buf(),
        ws.clone(),
    ] {
        let err = bwrap_argv(&p, &cmd(&cwd)).unwrap_err();
        assert!(
            matches!(err, ProcessError::InvalidArgument(ref m) if m.contains("masked")),
            "{cwd:?}: {err:?}"
        );
    }
    let elsewhere = root.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    bwrap_argv(&p, &cmd(&elsewhere)).expect("an unrelated directory is fine");
}

#[test]
fn nested_and_duplicate_masks_collapse_to_the_outermost() {
    let root = tempfile::tempdir().unwrap();
    let outer = root.path().join("outer");
    std::fs::create_dir_all(outer.join("inner")).unwrap();
    std::fs::write(outer.join("file"), "x").unwrap();
    let link = root.path().join("link");
    std::os::unix::fs::symlink(&outer, &link).unwrap();
    let got = existing_masks(&[outer.join("inner"), outer.join("file"), link, outer.clone()]);
    assert_eq!(got, vec![(outer.canonicalize().unwrap(), true)]);
}

#[test]
fn bwrap_failures_are_recognised_and_program_output_is_not() {
    let nf = classify_failure(
        "nope",
        Some(1),
        b"",
        b"bwrap: execvp nope: No such file or directory\n",
    );
    assert!(matches!(nf, Some(ProcessError::NotFound(_))), "{nf:?}");
    let perm = classify_failure(
        "./x",
        Some(1),
        b"",
        b"bwrap: execvp ./x: Permission denied\n",
    );
    assert!(
        matches!(perm, Some(ProcessError::InvalidArgument(_))),
        "{perm:?}"
    );
    let setup = classify_failure(
        "ls",
        Some(1),
        b"",
        b"bwrap: Creating new namespace failed: Operation not permitted\n",
    );
    assert!(
        matches!(setup, Some(ProcessError::Unavailable(_))),
        "{setup:?}"
    );
    // The program's own failures are output, whatever they print.
    assert_eq!(
        classify_failure(
            "ls",
            Some(2),
            b"",
            b"bwrap: execvp ls: No such file or directory\n"
        ),
        None
    );
    assert_eq!(classify_failure("ls", Some(1), b"out", b"bwrap: x\n"), None);
    assert_eq!(
        classify_failure("ls", Some(1), b"", b"bwrap: x\nmore\n"),
        None
    );
    assert_eq!(
        classify_failure("ls", Some(1), b"", b"ls: cannot access\n"),
        None
    );
    assert_eq!(classify_failure("ls", None, b"", b"bwrap: x\n"), None);
    // Behind the network forwarder (a run granted hosts), its words for the same failures.
    let nf = classify_failure(
        "nope",
        Some(127),
        b"",
        b"astrid-netfwd: cannot start nope: No such file or directory (os error 2)\n",
    );
    assert!(matches!(nf, Some(ProcessError::NotFound(_))), "{nf:?}");
    let setup = classify_failure(
        "ls",
        Some(125),
        b"",
        b"astrid-netfwd: cannot listen on 127.0.100.1:443: Permission denied (os error 13)\n",
    );
    assert!(
        matches!(setup, Some(ProcessError::Unavailable(_))),
        "{setup:?}"
    );
    // The program's own exit 125 or 127 with its own words stays output.
    assert_eq!(
        classify_failure("ls", Some(127), b"", b"ls: not found\n"),
        None
    );
}
