//! A distro install is all or nothing, also when the daemon dies in the middle. The daemon is
//! killed (SIGKILL) at a spread of moments while `astrid distro install` replaces a fleet
//! (echo 0.1.0 + counter) with another (echo 0.2.0 + counter), and made to abort exactly at
//! the commit point once. After each restart the fleet is wholly the old one or wholly the
//! new one: the installed artifacts and the lock the daemon enforces agree, nothing is
//! failed, and no half-applied install is left behind.
#![allow(
    clippy::disallowed_methods,
    reason = "the test drives the real astrid binary and kills the daemon"
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{astrid, build_packages, daemon_exe, ok, write_distro_toml, StopDaemon};
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `(name, hash, state)` of each capsule installed, and `(name, hash)` of each the lock pins.
type Fleet = (Vec<(String, String, String)>, Vec<(String, String)>);

/// What runs and what the lock pins, each sorted by name.
fn fleet(home: &Path) -> Fleet {
    let out = astrid(home, &["capsule", "list", "--json"]);
    if !out.status.success() {
        let log = std::fs::read_to_string(home.join("logs/daemon.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        panic!(
            "capsule list failed: {}\ndaemon log, last lines first:\n{}",
            String::from_utf8_lossy(&out.stderr),
            tail.join("\n")
        );
    }
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut running: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let f = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (f("name"), f("hash"), f("state"))
        })
        .collect();
    running.sort();
    let shown: Value =
        serde_json::from_str(&ok(astrid(home, &["distro", "show", "--json"]), "show")).unwrap();
    let mut pinned: Vec<_> = shown["lock"]["capsule"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap().to_string(),
                        c["hash"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    pinned.sort();
    (running, pinned)
}

fn hashes(fleet: &Fleet) -> Vec<String> {
    fleet.0.iter().map(|(_, h, _)| h.clone()).collect()
}

/// SIGKILLs the daemon and waits until its socket refuses connections: a kill lands only when
/// each thread leaves the system call it is in (an fsync, say), and the socket stays open
/// until the last one has, so a client connecting before then talks to a dying process.
fn kill_daemon(home: &Path) {
    let pid = std::fs::read_to_string(home.join("run/daemon.pid")).unwrap_or_default();
    let Ok(pid) = pid.trim().parse::<i32>() else {
        return;
    };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let socket = home.join("run/astrid.sock");
    for _ in 0..500 {
        if std::os::unix::net::UnixStream::connect(&socket).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the daemon (pid {pid}) still accepts connections 10 s after SIGKILL");
}

struct Distros {
    _dir: tempfile::TempDir,
    root: PathBuf,
    old: PathBuf,
    new: PathBuf,
}

fn distros() -> Distros {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let old = build_packages(&root.join("old"), &["echo", "counter"]);
    write_distro_toml(&old, "fleet", &["echo", "counter"]);
    let new = build_packages(&root.join("new"), &["testdata/echo-v2", "counter"]);
    write_distro_toml(&new, "fleet", &["echo", "counter"]);
    for d in [&old, &new] {
        ok(astrid(&root, &["distro", "lock", s(d)]), "distro lock");
    }
    Distros {
        _dir: dir,
        root,
        old,
        new,
    }
}

/// The fleet after a restart is the old or the new one, whole; returns which.
fn whole(home: &Path, old: &[String], new: &[String]) -> &'static str {
    let committed = home.join("state/distro-txn.json").exists();
    let now = fleet(home);
    assert!(
        !home.join("state/distro-txn.json").exists(),
        "the restart left a committed install unfinished"
    );
    for (name, hash, state) in &now.0 {
        assert_ne!(
            state, "Failed",
            "{name} ({hash}) after the restart: {now:?}"
        );
    }
    let pinned: Vec<String> = now.1.iter().map(|(_, h)| h.clone()).collect();
    let running = hashes(&now);
    if running == new {
        assert_eq!(
            pinned, new,
            "the new fleet runs under the old lock: {now:?}"
        );
        if committed {
            "new (committed, finished at boot)"
        } else {
            "new"
        }
    } else {
        assert_eq!(running, old, "neither the old fleet nor the new: {now:?}");
        assert_eq!(
            pinned, old,
            "the old fleet runs under the new lock: {now:?}"
        );
        assert!(!committed, "a committed install was rolled back: {now:?}");
        "old"
    }
}

/// The component hashes of `dir`'s counter and echo, in name order (as `fleet` sorts).
fn package_hashes(dir: &Path, echo: &str) -> Vec<String> {
    ["counter-0.1.0.capsule", echo]
        .iter()
        .map(|f| {
            astrid_build::load_package(&dir.join(f))
                .unwrap()
                .hash
                .to_string()
        })
        .collect()
}

#[test]
fn a_distro_install_killed_anywhere_leaves_the_old_fleet_or_the_new_one() {
    let d = distros();
    let old = package_hashes(&d.old, "echo-0.1.0.capsule");
    let new = package_hashes(&d.new, "echo-0.2.0.capsule");
    assert_ne!(old, new);
    let mut landed = Vec::new();
    for (i, delay_ms) in [5u64, 15, 25, 35, 45, 60, 80, 120, 200]
        .into_iter()
        .enumerate()
    {
        let home = d.root.join(format!("home-{i}"));
        let _stop = StopDaemon(home.clone());
        ok(
            astrid(&home, &["distro", "install", s(&d.old)]),
            "install old",
        );
        assert_eq!(hashes(&fleet(&home)), old);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_astrid"))
            .arg("--home")
            .arg(&home)
            .args(["distro", "install", s(&d.new)])
            .env("ASTRID_DAEMON", daemon_exe())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill_daemon(&home);
        let answered = child.wait().unwrap().success();
        let side = whole(&home, &old, &new);
        if answered {
            assert!(
                side.starts_with("new"),
                "the install answered success, yet the old fleet runs"
            );
        }
        landed.push(format!(
            "{delay_ms} ms: {side}{}",
            if answered { " (answered)" } else { "" }
        ));
    }
    // Shown with --nocapture: which side of the commit point the kills reached.
    eprintln!("where each kill landed: {}", landed.join(", "));
}

#[test]
fn a_daemon_that_dies_right_after_the_commit_finishes_the_install_when_it_starts() {
    let d = distros();
    let home = d.root.join("home");
    let _stop = StopDaemon(home.clone());
    ok(
        astrid(&home, &["distro", "install", s(&d.old)]),
        "install old",
    );
    let old = hashes(&fleet(&home));
    ok(astrid(&home, &["stop"]), "stop");

    // The daemon this install starts aborts right after writing the commit record.
    let crashed = std::process::Command::new(env!("CARGO_BIN_EXE_astrid"))
        .arg("--home")
        .arg(&home)
        .args(["distro", "install", s(&d.new)])
        .env("ASTRID_DAEMON", daemon_exe())
        .env("ASTRID_FAILPOINT", "distro-commit")
        .output()
        .unwrap();
    assert!(
        !crashed.status.success(),
        "the failpoint did not stop the daemon"
    );
    assert!(
        d.root.join("home/state/distro-txn.json").exists(),
        "the commit record was not written before the crash"
    );
    // Neither the lock nor the installed list was touched before the crash.
    let lock = std::fs::read_to_string(home.join("Distro.lock")).unwrap();
    assert!(old.iter().all(|h| lock.contains(h)), "{lock}");

    // The next start finishes it: the new fleet, whole, under the new lock.
    let now = fleet(&home);
    assert!(!home.join("state/distro-txn.json").exists());
    let running = hashes(&now);
    assert_ne!(
        running, old,
        "the committed install was not finished: {now:?}"
    );
    let pinned: Vec<String> = now.1.iter().map(|(_, h)| h.clone()).collect();
    assert_eq!(running, pinned, "{now:?}");
    assert!(now.0.iter().all(|(_, _, st)| st != "Failed"), "{now:?}");
    let echo = now.0.iter().find(|(n, ..)| n == "echo").unwrap();
    let v2 = astrid_build::load_package(&d.new.join("echo-0.2.0.capsule")).unwrap();
    assert_eq!(echo.1, v2.hash.to_string());
}
