//! The daemon starting the HTTP gateway from `config.toml` `[gateway]`: it answers where the
//! daemon says it listens, is restarted when it dies, runs with a cleared environment, and is
//! gone when the daemon stops (gracefully, or killed outright); a bad `[gateway]` stops the
//! daemon with an error naming the key. Real daemon, real `astrid-gateway` binary (built by
//! `cargo build --workspace --bins`, as scripts/test.sh does first).
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{wait_child, TestHome};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Loose deadline for things that happen on their own (a restart waits about a second).
const GUARD: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

fn gateway_binary() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_astrid-daemon")).with_file_name("astrid-gateway");
    assert!(
        p.is_file(),
        "{} is missing: build it with `cargo build --release --workspace --bins` (scripts/test.sh \
         does) before this test",
        p.display()
    );
    p
}

fn home_with_gateway(extra: &str) -> TestHome {
    gateway_binary();
    let h = TestHome::new();
    let config = format!("[gateway]\nenabled = true\nlisten = \"127.0.0.1:0\"\n{extra}");
    std::fs::write(h.home.config_file(), config).unwrap();
    h
}

/// `run/gateway` once it names a gateway other than `not`: (url, pid).
async fn announced(h: &TestHome, not: Option<u32>) -> (String, u32) {
    let file = h.home.run_dir().join("gateway");
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let field = |k: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .map(str::to_string)
            };
            if let (Some(url), Some(pid)) = (field("url="), field("pid=")) {
                let pid: u32 = pid.parse().unwrap();
                if Some(pid) != not {
                    return (url, pid);
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no (new) gateway announced in {}",
            file.display()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Gone: no such process, or a zombie nobody has reaped yet (it serves nothing).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

async fn wait_gone(pid: u32) {
    let deadline = tokio::time::Instant::now() + GUARD;
    while !gone(pid) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gateway {pid} still runs"
        );
        tokio::time::sleep(POLL).await;
    }
}

async fn healthz(url: &str) -> String {
    let r = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_restarts_and_stops_its_gateway() {
    let h = home_with_gateway("");
    let mut daemon = h.start().await;
    let (url, pid) = announced(&h, None).await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    healthz(&url).await;
    let ready = reqwest::get(format!("{url}/readyz")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 200, "the daemon is reachable");
    assert!(
        daemon.log().contains("gateway listening on"),
        "{}",
        daemon.log()
    );

    // Nothing of the daemon's environment reaches it but the log level.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let names: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| {
            let v = String::from_utf8_lossy(v);
            v.split('=').next().unwrap().to_string()
        })
        .collect();
    assert!(
        names.iter().all(|n| n == "ASTRID_LOG"),
        "the gateway inherited {names:?}"
    );

    // It dies: the daemon starts another, which answers.
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let (url2, pid2) = announced(&h, Some(pid)).await;
    assert_ne!(pid2, pid);
    healthz(&url2).await;
    assert!(daemon.log().contains("restarting in"), "{}", daemon.log());

    // The daemon stops: so does its gateway, and the file naming it goes.
    kill(Pid::from_raw(daemon.pid() as i32), Signal::SIGTERM).unwrap();
    let status = daemon.wait_exit().await;
    assert!(status.success(), "{status}:\n{}", daemon.log());
    wait_gone(pid2).await;
    assert!(!h.home.run_dir().join("gateway").exists());
    assert!(reqwest::get(format!("{url2}/healthz")).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_daemon_leaves_no_gateway_behind() {
    let h = home_with_gateway("");
    let mut daemon = h.start().await;
    let (url, pid) = announced(&h, None).await;
    healthz(&url).await;
    // SIGKILL gives the daemon no chance to stop it: the gateway sees its stdin close.
    daemon.kill();
    wait_gone(pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_gateway_table_stops_the_daemon_naming_the_key() {
    for (extra, key) in [
        ("", "gateway.listen"),
        ("tls_cert = \"/nonexistent/cert.pem\"\n", "gateway.tls_key"),
        ("colour = \"blue\"\n", "colour"),
    ] {
        let h = TestHome::new();
        let listen = if key == "gateway.listen" {
            "listen = \"localhost\"\n"
        } else {
            "listen = \"127.0.0.1:0\"\n"
        };
        std::fs::write(
            h.home.config_file(),
            format!("[gateway]\nenabled = true\n{listen}{extra}"),
        )
        .unwrap();
        let (mut child, log) = h.spawn();
        let status = wait_child(&mut child, &log).await;
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(!status.success(), "{text}");
        assert!(text.contains(key), "{key} not named:\n{text}");
        assert!(text.contains("config.toml"), "{text}");
    }
}
