//! Authenticated thread-list throughput through the HTTP gateway, with a real load tool.
//!
//! The real daemon with the session capsule, 10 threads for `default`, one `use-only` device
//! token, and the `astrid-gateway` binary (the one the daemon's `[gateway]` starts) on
//! 127.0.0.1 with the rate limit raised out of the way. Then `wrk -t2 -c50 -d10s --latency`
//! (`GATEWAY_LOAD_SECS` to change the duration) against `GET /v1/threads`, and its report
//! printed as is, with the daemon's and the gateway's pids so `perf record -p` can watch.
//! `GATEWAY_LOAD_HOLD=1` keeps everything up after the run until Enter, for profiling by hand.
//!
//! ```sh
//! cargo build --release --workspace --bins
//! cargo run --release -p astrid-benches --example gateway_load
//! ```
#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark drives real processes and sockets"
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use astrid_benches::{daemon_exe, or_die, setting, wait_ready, BenchError, Capsules, Daemon};
use astrid_types::wire::{ControlCommand, ControlResponse, DeviceScope, LifecycleState};
use astrid_types::AstridHome;
use serde_json::json;

const START_TIMEOUT: Duration = Duration::from_secs(60);
const THREADS: usize = 10;

fn main() {
    let exe = or_die("astrid-daemon", daemon_exe());
    let gateway_exe = exe.with_file_name("astrid-gateway");
    if !gateway_exe.is_file() {
        eprintln!(
            "{} is missing: cargo build --release --workspace --bins",
            gateway_exe.display()
        );
        std::process::exit(1);
    }
    let capsules = or_die("build", Capsules::build(&["session"]));
    let dir = tempfile::tempdir().expect("temporary ASTRID_HOME");
    let home = AstridHome::new(dir.path().join("home"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut daemon = or_die("start", Daemon::spawn(&exe, &home));
    or_die("start", daemon.wait_for_token(START_TIMEOUT));
    let client = or_die(
        "connect",
        rt.block_on(wait_ready(&home, &[], START_TIMEOUT)),
    );
    let token = or_die(
        "set up",
        rt.block_on(async {
            match client
                .control(ControlCommand::Install(capsules.upload("session")))
                .await?
            {
                ControlResponse::Installed(i) if i.state == LifecycleState::Ready => {}
                other => return Err(BenchError::Daemon(format!("installing: {other:?}"))),
            }
            for n in 0..THREADS {
                let open = json!({"session": format!("load-{n}"), "create": true});
                client
                    .request("session.v1.open", open.to_string(), START_TIMEOUT)
                    .await?;
            }
            let issue = ControlCommand::DeviceIssue {
                principal: "default".into(),
                label: "load".into(),
                scope: DeviceScope::UseOnly,
                ttl_ms: None,
            };
            match client.control(issue).await? {
                ControlResponse::DeviceIssued { token, .. } => Ok(token),
                other => Err(BenchError::Daemon(format!("pairing: {other:?}"))),
            }
        }),
    );

    let mut gateway = Command::new(&gateway_exe)
        .arg("--home")
        .arg(home.root())
        .args(["--listen", "127.0.0.1:0"])
        .args(["--rate-per-sec", "1000000000", "--rate-burst", "1000000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting astrid-gateway");
    let mut url = String::new();
    BufReader::new(gateway.stdout.take().expect("stdout"))
        .read_line(&mut url)
        .expect("reading the gateway's URL");
    let list = format!("{}/v1/threads", url.trim());

    let secs = setting("GATEWAY_LOAD_SECS", 10);
    println!(
        "daemon pid {}, gateway pid {}, {list} ({THREADS} threads)",
        daemon.pid(),
        gateway.id()
    );
    let auth = format!("Authorization: Bearer {token}");
    let out = Command::new("wrk")
        .args([
            "-t2",
            "-c50",
            &format!("-d{secs}s"),
            "--latency",
            "-H",
            &auth,
            &list,
        ])
        .output();
    match out {
        Ok(o) => {
            println!("wrk -t2 -c50 -d{secs}s --latency {list}:");
            println!("{}", String::from_utf8_lossy(&o.stdout));
            eprint!("{}", String::from_utf8_lossy(&o.stderr));
        }
        Err(e) => println!("wrk not run ({e}): apt-get install wrk"),
    }
    if setting("GATEWAY_LOAD_HOLD", 0) == 1 {
        println!("holding; token {token}\npress Enter to stop");
        let _ = std::io::stdin().read_line(&mut String::new());
    }
    let _ = gateway.kill();
    let _ = gateway.wait();
    drop(client);
    or_die("stop", daemon.stop());
}
