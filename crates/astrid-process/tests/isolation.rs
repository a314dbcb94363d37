//! What a sandboxed program can and cannot see or change, against real bubblewrap.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

mod common;

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};

use astrid_process::{run, ProcessError, SandboxPolicy};
use common::*;

#[test]
fn echo_works_and_exit_codes_and_stderr_come_back() {
    let f = Fixture::new();
    let out = f.run(&f.cmd("echo", &["hello", "sandbox"])).unwrap();
    assert_eq!(out.exit_code, Some(0));
    assert_eq!(text(&out.stdout), "hello sandbox\n");
    assert!(out.stderr.is_empty() && !out.truncated && !out.timed_out);

    let out = f.sh("echo oops >&2; exit 7");
    assert_eq!(out.exit_code, Some(7));
    assert_eq!(text(&out.stderr), "oops\n");
    assert!(!out.timed_out);

    // A program killed by a signal inside reports 128 + signal, as bwrap and shells do.
    let out = f.sh("kill -9 $$");
    assert_eq!(out.exit_code, Some(137));
}

#[test]
fn the_workspace_is_writable_and_writes_persist_on_the_host() {
    let f = Fixture::new();
    let out = f.sh("echo data > out.txt && mkdir -p d/e && printf x > d/e/y && pwd");
    assert_eq!(out.exit_code, Some(0), "{}", text(&out.stderr));
    let ws = f.ws().canonicalize().unwrap();
    assert_eq!(text(&out.stdout).trim_end(), ws.to_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(ws.join("out.txt")).unwrap(),
        "data\n"
    );
    assert_eq!(std::fs::read_to_string(ws.join("d/e/y")).unwrap(), "x");
}

#[test]
fn everything_outside_the_workspace_is_read_only_or_invisible() {
    let f = Fixture::new();
    let other_target = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let other_tmp = tempfile::tempdir().unwrap();
    let targets = [
        "/etc/astrid-probe".to_string(),
        "/usr/astrid-probe".to_string(),
        f.home().join("astrid-probe").display().to_string(),
        other_target
            .path()
            .join("astrid-probe")
            .display()
            .to_string(),
        other_tmp.path().join("astrid-probe").display().to_string(),
    ];
    for target in &targets {
        let out = f.sh(&format!("echo planted > '{target}'"));
        assert_ne!(out.exit_code, Some(0), "{target} was writable");
        assert!(
            !std::path::Path::new(target).exists(),
            "{target} appeared on the host"
        );
    }
    let out = f.sh("touch /etc/astrid-probe");
    assert!(
        text(&out.stderr).contains("Read-only file system"),
        "{}",
        text(&out.stderr)
    );
    // $HOME inside is the operator's home, readable but not writable.
    let out = f.sh("cat \"$HOME/notes.txt\" && touch \"$HOME/x\"");
    assert_eq!(text(&out.stdout), "not a secret");
    assert_ne!(out.exit_code, Some(0));
    assert!(!f.home().join("x").exists());
}

#[test]
fn there_is_no_network_not_even_the_hosts_loopback() {
    let f = Fixture::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The listener is reachable from the host...
    drop(TcpStream::connect(("127.0.0.1", port)).unwrap());
    listener.accept().unwrap();
    // ...and not from inside.
    let out = f
        .run(&f.cmd(
            "bash",
            &["-c", &format!("echo hi > /dev/tcp/127.0.0.1/{port}")],
        ))
        .unwrap();
    assert_ne!(out.exit_code, Some(0));
    assert!(
        text(&out.stderr).contains("Connection refused"),
        "{}",
        text(&out.stderr)
    );
    listener.set_nonblocking(true).unwrap();
    assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);

    // The sandbox's network namespace has only the loopback interface.
    let out = f.run(&f.cmd("cat", &["/proc/net/dev"])).unwrap();
    let ifaces: Vec<String> = text(&out.stdout)
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|s| s.trim().to_string()))
        .collect();
    assert_eq!(ifaces, ["lo"]);
}

#[test]
fn credentials_and_the_astrid_home_are_masked() {
    let f = Fixture::new();
    let out = f.sh("ls -A \"$HOME/.ssh\" \"$HOME/.aws\"; cat \"$HOME/.ssh/id_rsa\" \"$HOME/.aws/credentials\" \"$HOME/.netrc\"");
    let seen = text(&out.stdout) + &text(&out.stderr);
    for secret in [SSH_KEY, AWS_KEY, "fake-netrc", "id_rsa\n", "credentials\n"] {
        assert!(!seen.contains(secret), "{secret:?} leaked: {seen}");
    }
    assert_ne!(out.exit_code, Some(0));
    let listing = f.sh("ls -A \"$HOME/.ssh\"");
    assert_eq!(
        (listing.exit_code, text(&listing.stdout)),
        (Some(0), String::new())
    );

    let astrid = f.astrid_home();
    let out = f
        .run(&f.cmd("ls", &["-A", astrid.to_str().unwrap()]))
        .unwrap();
    assert_eq!((out.exit_code, text(&out.stdout)), (Some(0), String::new()));
    let out = f
        .run(&f.cmd("cat", &[astrid.join("keys/master").to_str().unwrap()]))
        .unwrap();
    assert_ne!(out.exit_code, Some(0));
    assert!(!text(&out.stdout).contains(ASTRID_SECRET));

    // Masks are read-only: nothing can be planted for the operator's tools.
    let out = f.sh("mkdir -p \"$HOME/.ssh\" && echo evil > \"$HOME/.ssh/authorized_keys\"");
    assert_ne!(out.exit_code, Some(0));
    assert!(!f.home().join(".ssh/authorized_keys").exists());

    // The host's service sockets (/run) are hidden too.
    assert!(std::path::Path::new("/run").is_dir());
    let out = f.run(&f.cmd("ls", &["-A", "/run"])).unwrap();
    assert_eq!((out.exit_code, text(&out.stdout)), (Some(0), String::new()));

    // A program that only exists in a masked directory does not exist inside.
    let tool = astrid.join("tool.sh");
    std::fs::write(&tool, "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let err = f.run(&f.cmd(tool.to_str().unwrap(), &[])).unwrap_err();
    assert!(matches!(err, ProcessError::NotFound(_)), "{err:?}");
}

#[test]
fn a_workspace_overlapping_a_mask_is_refused() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.astrid_home().join("ws")).unwrap();
    for cwd in [
        f.home().join(".ssh"),
        f.home(),
        f.astrid_home().join("ws"),
        f.homes.path().to_path_buf(),
    ] {
        let mut c = f.cmd("true", &[]);
        c.cwd = cwd.clone();
        let err = f.run(&c).unwrap_err();
        assert!(
            matches!(err, ProcessError::InvalidArgument(ref m) if m.contains("masked")),
            "{cwd:?}: {err:?}"
        );
    }
}

#[test]
fn the_environment_is_clean() {
    let f = Fixture::new();
    // Cargo sets this for every test process; it must not cross into the sandbox.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let out = f
        .run(&{
            let mut c = f.cmd("env", &[]);
            c.env = vec![("ASTRID_TEST_VAR".into(), "a b=c".into())];
            c
        })
        .unwrap();
    let vars: Vec<(String, String)> = text(&out.stdout)
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    for name in &names {
        assert!(
            ["PATH", "HOME", "LANG", "PWD", "ASTRID_TEST_VAR"].contains(name),
            "unexpected {name}"
        );
    }
    let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(
        get("PATH"),
        Some("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    );
    assert_eq!(get("HOME"), f.home().to_str());
    assert_eq!(get("LANG"), Some("C.UTF-8"));
    assert_eq!(get("ASTRID_TEST_VAR"), Some("a b=c"));

    // PATH may be overridden: with a bogus one, `ls` is no longer found.
    let mut c = f.cmd("ls", &[]);
    c.env = vec![("PATH".into(), "/nonexistent".into())];
    assert!(matches!(f.run(&c), Err(ProcessError::NotFound(_))));
}

#[test]
fn detect_masks_the_real_operator_home() {
    let astrid = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let policy = SandboxPolicy::detect(astrid.path(), astrid_process::Limits::default()).unwrap();
    let home = std::path::PathBuf::from(std::env::var_os("HOME").unwrap());
    assert_eq!(policy.home, home);
    for p in [
        home.join(".ssh"),
        home.join(".git-credentials"),
        home.join(".config/gh"),
        astrid.path().to_path_buf(),
    ] {
        assert!(policy.masked.contains(&p), "{p:?} not masked");
    }
    let ws = tempfile::tempdir().unwrap();
    let cmd = astrid_process::Command {
        program: "sh".into(),
        args: vec![
            "-c".into(),
            "echo \"$HOME\"; ls -A \"$HOME/.ssh\" 2>/dev/null".into(),
        ],
        cwd: ws.path().into(),
        ..Default::default()
    };
    let out = run(&policy, &cmd).unwrap();
    assert_eq!(text(&out.stdout), format!("{}\n", home.display()));
}
