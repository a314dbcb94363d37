//! First paint of the full-screen `astrid chat` with a running daemon (docs/PERFORMANCE.md,
//! "Chat: first paint"). Not a timed test: it reports.
//!
//! The daemon runs the agent fleet (pointed at the LLM fixture); `CHAT_PAINT_RUNS` (20) times,
//! `astrid chat` starts in a real terminal (a tmux pane, 110×40) with `ASTRID_CHAT_TIMINGS`,
//! which makes it append two clocks, both from the start of `main`: the first frame on the
//! screen (`first_paint_us`) and the session open and ready for typing (`ready_us`). Each run
//! ends once its line is written. As the baseline of the same run, `astrid status` (process
//! start, connect, one control round trip, exit) is timed from outside, which also shows what
//! the in-process clock leaves out (exec and dynamic loading).
//!
//! `cargo build --release -p astrid-daemon -p astrid-cli && cargo run --release -p
//! astrid-benches --example chat_paint` (needs tmux).
#![allow(
    clippy::disallowed_methods,
    reason = "drives the real astrid binary in tmux"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use astrid_benches::{
    daemon_exe, home_and_workspace, or_die, set_up_agent_fleet, setting, wait_ready, Capsules,
    Daemon, Summary, AGENT_FLEET,
};
use astrid_llm_fixture::{Fixture, FixtureConfig, Step};

const START_TIMEOUT: Duration = Duration::from_secs(120);
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

fn tmux(args: &[&str]) -> std::process::Output {
    Command::new("tmux")
        .args(args)
        .output()
        .expect("running tmux (install it: apt-get install tmux)")
}

/// One `astrid chat` in a fresh tmux session; returns (first paint, ready) in microseconds.
fn one_run(astrid: &Path, home: &Path, workspace: &str, timings: &Path, i: u64) -> (u64, u64) {
    let before = std::fs::read_to_string(timings)
        .unwrap_or_default()
        .lines()
        .count();
    let name = format!("astrid-chat-paint-{}-{i}", std::process::id());
    // The pane outlives a chat that fails to start, so the panic below can show why.
    let command = format!(
        "ASTRID_CHAT_TIMINGS='{}' '{}' --home '{}' chat --workspace '{workspace}'; \
         echo EXITED $?; sleep 60",
        timings.display(),
        astrid.display(),
        home.display()
    );
    let out = tmux(&[
        "new-session",
        "-d",
        "-s",
        &name,
        "-x",
        "110",
        "-y",
        "40",
        &command,
    ]);
    assert!(
        out.status.success(),
        "tmux: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + RUN_TIMEOUT;
    let line = loop {
        let text = std::fs::read_to_string(timings).unwrap_or_default();
        // Only a whole line: the TUI may be halfway through writing it when this reads.
        if let Some(line) = text
            .split_inclusive('\n')
            .nth(before)
            .and_then(|l| l.strip_suffix('\n'))
        {
            break line.to_string();
        }
        if Instant::now() >= deadline {
            let screen = tmux(&["capture-pane", "-p", "-t", &name]);
            panic!(
                "run {i}: no timings after {RUN_TIMEOUT:?}; the screen:\n{}",
                String::from_utf8_lossy(&screen.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    tmux(&["kill-session", "-t", &name]);
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON timings line");
    let us = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {line}"));
    (us("first_paint_us"), us("ready_us"))
}

fn main() {
    let n = setting("CHAT_PAINT_RUNS", 20);
    let exe = or_die("astrid-daemon", daemon_exe());
    let astrid: PathBuf = exe.with_file_name("astrid");
    assert!(
        astrid.is_file(),
        "{} is missing: cargo build --release -p astrid-cli",
        astrid.display()
    );
    let capsules = or_die("build", Capsules::build(AGENT_FLEET));
    let dir = tempfile::tempdir().expect("temporary ASTRID_HOME");
    let (home, workspace) = home_and_workspace(dir.path());
    let timings = dir.path().join("timings.jsonl");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let fixture = rt
        .block_on(Fixture::start_looping(
            FixtureConfig::default(),
            vec![Step::text("hello")],
        ))
        .expect("fixture");
    let mut daemon = or_die("start", Daemon::spawn(&exe, &home));
    or_die("start", daemon.wait_for_token(START_TIMEOUT));
    rt.block_on(async {
        let client = or_die("connect", wait_ready(&home, &[], START_TIMEOUT).await);
        let (port, base_url) = (fixture.addr().port(), fixture.base_url());
        let set_up = set_up_agent_fleet(&client, &capsules, &base_url, port, &workspace);
        or_die("set up", set_up.await);
    });

    // A warm-up run each (page cache, the daemon's first session), not counted.
    one_run(&astrid, home.root(), &workspace, &timings, 0);
    let mut baseline = Vec::new();
    let (mut paint, mut ready) = (Vec::new(), Vec::new());
    for i in 1..=n {
        let t0 = Instant::now();
        let out = Command::new(&astrid)
            .arg("--home")
            .arg(home.root())
            .arg("status")
            .output()
            .expect("astrid status");
        baseline.push(t0.elapsed());
        assert!(out.status.success(), "astrid status failed");
        let (p, r) = one_run(&astrid, home.root(), &workspace, &timings, i);
        paint.push(Duration::from_micros(p));
        ready.push(Duration::from_micros(r));
    }
    let show = |what: &str, samples: &[Duration]| {
        if let Some(s) = Summary::of(samples) {
            println!("chat_paint: {what:<34} {s}");
        }
    };
    show("astrid status (baseline, wall)", &baseline);
    show("astrid chat first paint", &paint);
    show("astrid chat session ready", &ready);

    or_die("stop", daemon.stop());
    rt.block_on(fixture.shutdown());
}
