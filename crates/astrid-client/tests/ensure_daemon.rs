//! Starting the daemon. The success path needs the real daemon and is covered by the
//! workspace's end-to-end tests; here we check detection, the failure report and the search.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use astrid_client::{ensure_daemon, find_daemon_exe, is_daemon_running, ClientError};
use astrid_types::home::AstridHome;

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[tokio::test]
async fn a_daemon_that_dies_is_reported_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let home = AstridHome::new(dir.path().join("home"));
    let exe = script(
        dir.path(),
        "astrid-daemon",
        r#"echo "args: $*"; echo "boom: cannot open store" >&2; exit 3"#,
    );
    let err = ensure_daemon(&home, Some(exe)).await.unwrap_err();
    let ClientError::DaemonStart {
        reason,
        log,
        log_tail,
    } = &err
    else {
        panic!("expected DaemonStart, got {err:?}")
    };
    assert!(reason.contains("exit status: 3"), "{reason}");
    assert_eq!(log, &home.daemon_log());
    let expected_args = format!("args: --home {}", home.root().display());
    assert!(log_tail.contains(&expected_args), "{log_tail}");
    assert!(log_tail.contains("boom: cannot open store"), "{log_tail}");
    assert!(err.to_string().contains("boom"), "{err}");
    let mode = std::fs::metadata(home.log_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "log dir is private");
}

#[tokio::test]
async fn an_unstartable_executable_is_a_spawn_error() {
    let dir = tempfile::tempdir().unwrap();
    let home = AstridHome::new(dir.path());
    let missing = dir.path().join("no-such-daemon");
    let err = ensure_daemon(&home, Some(missing)).await.unwrap_err();
    assert!(matches!(err, ClientError::DaemonSpawn { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-daemon"), "{err}");
    // The operating system's error is kept as the source, not only as text.
    let source = std::error::Error::source(&err).expect("the spawn error is kept");
    let io = source
        .downcast_ref::<std::io::Error>()
        .expect("an io::Error");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound, "{io}");
}

#[tokio::test]
async fn a_listening_daemon_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let home = AstridHome::new(dir.path());
    assert!(!is_daemon_running(&home));
    std::fs::create_dir_all(home.run_dir()).unwrap();
    std::fs::write(home.token_file(), "t").unwrap();
    let _listener = tokio::net::UnixListener::bind(home.socket()).unwrap();
    assert!(is_daemon_running(&home));
    // Would fail to spawn, so success proves nothing was started.
    ensure_daemon(&home, Some(dir.path().join("no-such-daemon")))
        .await
        .unwrap();
    assert!(!home.log_dir().exists());
}

#[test]
fn astrid_daemon_variable_selects_the_executable() {
    let dir = tempfile::tempdir().unwrap();
    let exe = script(dir.path(), "my-daemon", "exit 0");
    // The only test in this binary touching the environment.
    std::env::set_var("ASTRID_DAEMON", &exe);
    assert_eq!(find_daemon_exe().unwrap(), exe);
    std::env::remove_var("ASTRID_DAEMON");
}
