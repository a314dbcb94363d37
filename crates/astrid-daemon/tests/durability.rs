//! The daemon as a process: acknowledged state survives `kill -9`, a second daemon on the same
//! home is refused while the first runs, and a requested shutdown finishes the call in flight
//! before exiting cleanly.

mod common;

use astrid_types::wire::{ControlCommand, ControlResponse};
use common::{ask, assert_echo_serves, control, install, status, wait_child, Capsule, TestHome};

#[tokio::test]
async fn acknowledged_increments_survive_kill_9() {
    let home = TestHome::new();
    let mut daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Counter).await;
    for i in 1..=50u32 {
        assert_eq!(ask(&c, "counter.v1.incr", b"").await, i.to_string());
    }
    let old_pid = daemon.pid();
    drop(c);
    // SIGKILL: no shutdown path runs, nothing gets flushed on the way out.
    daemon.kill();

    let daemon = home.start().await;
    assert_ne!(daemon.pid(), old_pid);
    let c = daemon.client().await;
    assert_eq!(ask(&c, "counter.v1.get", b"").await, "50");
    assert_eq!(ask(&c, "counter.v1.incr", b"").await, "51");
    // The installed list survived too.
    let names: Vec<String> = common::list(&c).await.into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["counter"]);
}

#[tokio::test]
async fn a_second_daemon_on_the_same_home_is_refused() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;

    let (mut second, log) = home.spawn();
    let exit = wait_child(&mut second, &log).await;
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        !exit.success(),
        "the second daemon exited {exit}:\n{stderr}"
    );
    assert!(stderr.contains("already"), "{stderr}");

    // The first one is untouched: same process, same socket, same token.
    assert_echo_serves(&c).await;
    assert_eq!(status(&c).await.pid, daemon.pid());
    let fresh = daemon.client().await;
    assert_echo_serves(&fresh).await;
}

#[tokio::test]
async fn shutdown_lets_the_call_in_flight_finish_then_exits_cleanly() {
    let home = TestHome::with_quota(5000, 64);
    let mut daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;

    // Same connection, so the slow call is dispatched before the shutdown is read.
    let slow = c
        .send_request("echo.v1.slow", b"1500".to_vec(), common::REQUEST_TIMEOUT)
        .await
        .unwrap();
    match control(&c, ControlCommand::Shutdown).await {
        Ok(ControlResponse::ShuttingDown) => {}
        other => panic!("expected ShuttingDown, got {other:?}"),
    }
    let reply = slow
        .wait()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", daemon.log()));
    assert_eq!(reply, b"echo 0.1.0");

    let exit = daemon.wait_exit().await;
    assert!(exit.success(), "{exit}\n{}", daemon.log());
    assert!(
        !home.home.socket().exists(),
        "the socket file is left behind"
    );
    assert!(
        !home.home.pid_file().exists(),
        "the pid file is left behind"
    );
    assert!(
        !home.home.token_file().exists(),
        "the token file is left behind"
    );

    // The home is reusable: the next daemon starts and serves.
    let daemon = home.start().await;
    assert_echo_serves(&daemon.client().await).await;
}

#[tokio::test]
async fn sigterm_stops_the_daemon_cleanly() {
    let home = TestHome::new();
    let mut daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;
    assert_echo_serves(&c).await;

    let pid = nix::unistd::Pid::from_raw(i32::try_from(daemon.pid()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let exit = daemon.wait_exit().await;
    assert!(exit.success(), "{exit}\n{}", daemon.log());
    assert!(
        !home.home.socket().exists(),
        "the socket file is left behind"
    );
}

#[tokio::test]
async fn a_damaged_compile_cache_is_rebuilt_not_trusted() {
    let home = TestHome::new();
    let mut daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;
    control(&c, ControlCommand::Shutdown).await.unwrap();
    drop(c);
    assert!(daemon.wait_exit().await.success());

    // Cut every precompiled component in half, as a full disk might.
    let mut damaged = 0;
    for entry in std::fs::read_dir(home.home.cache_dir()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        damaged += 1;
    }
    assert!(damaged > 0, "the daemon cached nothing to damage");

    let daemon = home.start().await;
    let c = daemon.client().await;
    let echo = status(&c)
        .await
        .capsules
        .into_iter()
        .find(|i| i.name == "echo")
        .unwrap();
    assert_eq!(
        echo.state,
        astrid_types::wire::LifecycleState::Ready,
        "{:?}",
        echo.error
    );
    assert_echo_serves(&c).await;
    let log = daemon.log();
    assert!(log.contains("discarding unusable cache entry"), "{log}");
}
