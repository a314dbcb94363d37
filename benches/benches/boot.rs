//! Daemon boot to ready with five capsules installed: from spawning `astrid-daemon` until the
//! socket accepts a client and `Status` lists all five as ready.
//!
//! - `cold`: `$ASTRID_HOME/cache` deleted before each start, so every component is compiled
//!   (and written back to the cache).
//! - `warm`: the cache is present, so every component is deserialized.
//!
//! A boot takes tens to hundreds of milliseconds and the two cases should share the machine's
//! state, so this is a plain loop (no criterion): cold and warm boots alternate, ten of each,
//! and the medians and their ratio are printed.

use std::time::{Duration, Instant};

use astrid_benches::{
    daemon_exe, fmt_duration, median, or_die, verdict, wait_ready, BenchError, Capsules, Daemon,
    Summary,
};
use astrid_types::wire::ControlCommand;
use astrid_types::AstridHome;

const CAPSULES: [&str; 5] = ["echo", "counter", "fsprobe", "bench", "misbehave"];
const START_TIMEOUT: Duration = Duration::from_secs(60);
const RUNS: usize = 10;
/// Targets from the product brief.
const WARM_TARGET: Duration = Duration::from_millis(150);
const MIN_SPEEDUP: f64 = 5.0;

struct Setup {
    exe: std::path::PathBuf,
    home: AstridHome,
    names: Vec<String>,
    rt: tokio::runtime::Runtime,
}

/// Installs the capsules through the socket on a fresh home, then stops that daemon.
fn prepare(setup: &Setup, capsules: &Capsules) -> Result<(), BenchError> {
    let mut daemon = Daemon::spawn(&setup.exe, &setup.home)?;
    daemon.wait_for_token(START_TIMEOUT)?;
    let client = setup
        .rt
        .block_on(wait_ready(&setup.home, &[], START_TIMEOUT))?;
    for name in CAPSULES {
        let command = ControlCommand::Install(capsules.upload(name));
        setup.rt.block_on(client.control(command))?;
    }
    drop(client);
    daemon.stop()
}

fn cache_entries(home: &AstridHome) -> usize {
    std::fs::read_dir(home.cache_dir())
        .map(|d| d.filter(|e| e.is_ok()).count())
        .unwrap_or(0)
}

/// One boot, timed from spawn to "all capsules ready"; stopping is not timed.
fn boot_once(setup: &Setup, cold: bool) -> Result<Duration, BenchError> {
    let cache = setup.home.cache_dir();
    if cold {
        match std::fs::remove_dir_all(&cache) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(BenchError::Io {
                    path: cache,
                    source: e,
                })
            }
            _ => {}
        }
    } else if cache_entries(&setup.home) < CAPSULES.len() {
        return Err(BenchError::Daemon(format!(
            "warm boot without a full cache: {} holds {} entries",
            cache.display(),
            cache_entries(&setup.home)
        )));
    }
    let start = Instant::now();
    let mut daemon = Daemon::spawn(&setup.exe, &setup.home)?;
    daemon.wait_for_token(START_TIMEOUT)?;
    let client = setup
        .rt
        .block_on(wait_ready(&setup.home, &setup.names, START_TIMEOUT))?;
    let elapsed = start.elapsed();
    drop(client);
    daemon.stop()?;
    Ok(elapsed)
}

/// `cargo bench` passes `--bench`, `cargo test --benches` passes `--test`; a bare argument is
/// a name filter, as with the criterion benchmarks next to this one.
struct Args {
    test: bool,
    filter: Option<String>,
}

fn args() -> Args {
    let all: Vec<String> = std::env::args().skip(1).collect();
    Args {
        test: all.iter().any(|a| a == "--test"),
        filter: all.into_iter().find(|a| !a.starts_with('-')),
    }
}

fn report(name: &str, runs: &[Duration], target: &str) {
    if let Some(s) = Summary::of(runs) {
        println!(
            "boot/{name}: median {} (min {}, max {}) over {} boots to {} ready capsules{target}",
            fmt_duration(s.p50),
            fmt_duration(s.min),
            fmt_duration(s.max),
            s.n,
            CAPSULES.len()
        );
    }
}

fn main() {
    let args = args();
    if let Some(f) = &args.filter {
        if !["boot/cold", "boot/warm"]
            .iter()
            .any(|n| n.contains(f.as_str()))
        {
            return;
        }
    }
    let runs = if args.test { 1 } else { RUNS };
    let exe = or_die("astrid-daemon", daemon_exe());
    let capsules = or_die("build", Capsules::build(&CAPSULES));
    let dir = tempfile::tempdir().expect("temporary ASTRID_HOME");
    let setup = Setup {
        exe,
        home: AstridHome::new(dir.path()),
        names: capsules.names(),
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime"),
    };
    or_die("install", prepare(&setup, &capsules));

    // One untimed pair pages the binary and the artifacts in. Cold and warm then alternate,
    // so drift in the machine's load falls on both alike.
    println!("boot: {runs} cold and {runs} warm boots, alternating");
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for i in 0..=runs {
        let c = or_die("cold boot", boot_once(&setup, true));
        let w = or_die("warm boot", boot_once(&setup, false));
        if i > 0 {
            cold.push(c);
            warm.push(w);
        }
    }
    let (mc, mw) = (median(&cold), median(&warm));
    report("cold", &cold, "");
    report(
        "warm",
        &warm,
        &format!(
            " (target ≤ {}: {})",
            fmt_duration(WARM_TARGET),
            verdict(mw <= WARM_TARGET)
        ),
    );
    let ratio = mc.as_secs_f64() / mw.as_secs_f64();
    println!(
        "boot: warm is {ratio:.1}× faster than cold (target ≥ {MIN_SPEEDUP:.0}×: {})",
        verdict(ratio >= MIN_SPEEDUP)
    );
}
