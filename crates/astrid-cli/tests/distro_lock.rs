//! The distro lock, enforced by a real daemon: `astrid distro lock` pins a directory of
//! packages built from this repository, `astrid distro install` checks and pins it, and the
//! daemon then refuses any other artifact under a pinned name: at install, and at boot after
//! the installed list was tampered with at rest. A distro that does not match its own lock
//! installs nothing, and the same lock gives the same fleet in another home.
#![allow(
    clippy::disallowed_methods,
    reason = "the test drives the real astrid binary as a device"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{astrid, build_packages, failed, ok, write_distro_toml, StopDaemon};
use serde_json::Value;

fn json(out: Output, what: &str) -> Value {
    serde_json::from_str(&ok(out, what)).unwrap()
}

/// `capsule list --json` as name → (hash, state, error).
fn installed(home: &Path) -> Vec<(String, String, String, String)> {
    let list = json(astrid(home, &["capsule", "list", "--json"]), "capsule list");
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("name"), s("hash"), s("state"), s("error"))
        })
        .collect()
}

fn audit(home: &Path) -> Vec<Value> {
    let out = ok(astrid(home, &["audit", "show", "--json"]), "audit show");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn hash_of(lock: &str, name: &str) -> String {
    let v: toml::Value = toml::from_str(lock).unwrap();
    v["capsule"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str() == Some(name))
        .unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `echo` and `counter` with a Distro.toml and a Distro.lock, plus echo 0.2.0 (the same
/// name, another artifact) outside it.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    distro: PathBuf,
    echo_v2: PathBuf,
    lock: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let distro = build_packages(&root, &["echo", "counter"]);
    write_distro_toml(&distro, "pinned", &["echo", "counter"]);
    let v2 = build_packages(&root.join("v2"), &["testdata/echo-v2"]);
    let out = ok(
        astrid(
            &root.join("unused"),
            &["distro", "lock", distro.to_str().unwrap()],
        ),
        "distro lock",
    );
    assert!(out.contains("wrote"), "{out}");
    let lock = std::fs::read_to_string(distro.join("Distro.lock")).unwrap();
    Fixture {
        _dir: dir,
        root,
        distro,
        echo_v2: v2.join("echo-0.2.0.capsule"),
        lock,
    }
}

#[test]
fn a_pinned_distro_refuses_other_artifacts_at_install_and_at_boot() {
    let f = fixture();
    let echo = hash_of(&f.lock, "echo");
    let counter = hash_of(&f.lock, "counter");
    assert_ne!(echo, counter);
    let v2_hash = astrid_build::load_package(&f.echo_v2)
        .unwrap()
        .hash
        .to_string();
    assert_ne!(v2_hash, echo);

    let home = f.root.join("home");
    let _stop = StopDaemon(home.clone());
    let out = ok(
        astrid(&home, &["distro", "install", f.distro.to_str().unwrap()]),
        "distro install",
    );
    assert!(
        out.contains("every package matches its Distro.lock"),
        "{out}"
    );
    assert!(out.contains("pinned pinned 1.0.0"), "{out}");
    let shown = json(astrid(&home, &["distro", "show", "--json"]), "distro show");
    assert_eq!(shown["lock"]["name"], "pinned");
    let states: Vec<&str> = shown["capsules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["as pinned", "as pinned"]);
    // The daemon keeps the very lock the distro shipped.
    assert_eq!(
        std::fs::read_to_string(home.join("Distro.lock")).unwrap(),
        f.lock
    );

    // Installing another artifact under a pinned name: refused, both hashes named, recorded.
    let e = failed(
        astrid(&home, &["capsule", "update", f.echo_v2.to_str().unwrap()]),
        "updating a pinned capsule",
    );
    assert!(
        e.contains("pinned by Distro.lock") && e.contains(&echo) && e.contains(&v2_hash),
        "{e}"
    );
    let denied = audit(&home)
        .into_iter()
        .find(|e| e["action"] == "capsule.update" && e["decision"] == "denied")
        .expect("the refused update is in the audit chain");
    assert_eq!(denied["resource"], "capsule:echo");
    assert!(denied["outcome"].as_str().unwrap().contains(&v2_hash));
    assert!(installed(&home)
        .iter()
        .any(|(n, h, s, _)| n == "echo" && *h == echo && s != "Failed"));

    // At rest: the installed list now says echo is counter's artifact, which exists and
    // verifies on its own. The lock is what catches it at the next boot.
    ok(astrid(&home, &["stop"]), "stop");
    let list_path = home.join("state/installed.json");
    let list = std::fs::read_to_string(&list_path).unwrap();
    assert!(list.contains(&echo));
    std::fs::write(&list_path, list.replace(&echo, &counter)).unwrap();
    let now = installed(&home);
    let (_, hash, state, error) = now.iter().find(|(n, ..)| n == "echo").unwrap();
    assert_eq!(
        (hash.as_str(), state.as_str()),
        (counter.as_str(), "Failed")
    );
    assert!(
        error.contains("pinned by Distro.lock")
            && error.contains(&echo)
            && error.contains(&counter),
        "{error}"
    );
    assert!(now
        .iter()
        .any(|(n, _, s, _)| n == "counter" && s != "Failed"));
    let e = failed(
        astrid(&home, &["distro", "show"]),
        "distro show with a refusal",
    );
    assert!(e.contains("refused: installed"), "{e}");
    let boot = audit(&home)
        .into_iter()
        .find(|e| e["action"] == "capsule.boot" && e["decision"] == "denied")
        .expect("the boot refusal is in the audit chain");
    assert!(boot["outcome"].as_str().unwrap().contains(&counter));

    // Installing the distro again repairs it: echo is installed anew as pinned.
    ok(
        astrid(&home, &["distro", "install", f.distro.to_str().unwrap()]),
        "distro install again",
    );
    assert!(installed(&home)
        .iter()
        .all(|(_, h, s, _)| s != "Failed" && (*h == echo || *h == counter)));

    // A lock that cannot be read refuses everything, and says so; pinning a good one again
    // brings the fleet back.
    ok(astrid(&home, &["stop"]), "stop");
    std::fs::write(home.join("Distro.lock"), "name = [\n").unwrap();
    let now = installed(&home);
    assert!(
        now.iter()
            .all(|(_, _, s, e)| s == "Failed" && e.contains("Distro.lock")),
        "{now:?}"
    );
    ok(
        astrid(&home, &["distro", "install", f.distro.to_str().unwrap()]),
        "distro install after a broken lock",
    );
    assert!(installed(&home).iter().all(|(_, _, s, _)| s != "Failed"));

    // Another principal installing the same distro shares the artifacts it already runs and
    // holds every capsule of it afterwards.
    ok(astrid(&home, &["agent", "create", "alice"]), "agent create");
    ok(
        astrid(
            &home,
            &[
                "--principal",
                "alice",
                "distro",
                "install",
                f.distro.to_str().unwrap(),
            ],
        ),
        "distro install for alice",
    );
    let hers = json(
        astrid(
            &home,
            &["--principal", "alice", "capsule", "list", "--json"],
        ),
        "alice's list",
    );
    let mut names: Vec<&str> = hers
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["counter", "echo"]);

    // The same lock in another home: the same artifacts, byte for byte.
    let other = f.root.join("other");
    let _stop_other = StopDaemon(other.clone());
    ok(
        astrid(&other, &["distro", "install", f.distro.to_str().unwrap()]),
        "distro install in another home",
    );
    let fleet = installed(&other);
    assert_eq!(fleet.len(), 2, "{fleet:?}");
    for (name, hash, ..) in fleet {
        let hex = hash.trim_start_matches("blake3:");
        let a = std::fs::read(home.join("capsules").join(hex).join("component.wasm")).unwrap();
        let b = std::fs::read(other.join("capsules").join(hex).join("component.wasm")).unwrap();
        assert!(a == b, "{name}: artifacts differ");
    }
}

#[test]
fn a_distro_that_does_not_match_its_lock_installs_nothing() {
    let f = fixture();
    let echo = hash_of(&f.lock, "echo");
    let home = f.root.join("home");
    let _stop = StopDaemon(home.clone());
    ok(astrid(&home, &["start"]), "start");
    let run = |what: &str| {
        failed(
            astrid(&home, &["distro", "install", f.distro.to_str().unwrap()]),
            what,
        )
    };

    // One package swapped for another validly built artifact of the same name.
    let original = f.distro.join("echo-0.1.0.capsule");
    let kept = std::fs::read(&original).unwrap();
    std::fs::copy(&f.echo_v2, &original).unwrap();
    let e = run("a swapped package");
    assert!(
        e.contains("but Distro.lock pins") && e.contains(&echo),
        "{e}"
    );
    // One byte of a package flipped: the package's own hash check stops it.
    let mut flipped = kept.clone();
    // The component is most of the archive: its middle is component bytes.
    let at = flipped.len() / 2;
    flipped[at] ^= 0x40;
    std::fs::write(&original, &flipped).unwrap();
    let e = run("a flipped byte");
    assert!(
        e.contains("echo-0.1.0.capsule") && e.contains("hash mismatch"),
        "{e}"
    );
    std::fs::write(&original, &kept).unwrap();

    // Distro.toml changed after the lock was made.
    let toml_path = f.distro.join("Distro.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    std::fs::write(
        &toml_path,
        toml.replace("version = \"*\"", "version = \">=0.1\""),
    )
    .unwrap();
    let e = run("an edited Distro.toml");
    assert!(e.contains("made for another Distro.toml"), "{e}");
    // ... and a requirement the package does not meet (re-locking cannot hide that).
    std::fs::write(
        &toml_path,
        toml.replacen("version = \"*\"", "version = \"^0.2\"", 1),
    )
    .unwrap();
    let e = failed(
        astrid(&home, &["distro", "lock", f.distro.to_str().unwrap()]),
        "locking an unmet requirement",
    );
    assert!(
        e.contains("`echo` is version 0.1.0") && e.contains("^0.2"),
        "{e}"
    );
    std::fs::write(&toml_path, &toml).unwrap();

    // Nothing was installed, and nothing was pinned.
    assert!(installed(&home).is_empty());
    let shown = json(astrid(&home, &["distro", "show", "--json"]), "distro show");
    assert!(shown["lock"].is_null(), "{shown}");
    // A device acting for the operator's principal may not pin a lock.
    let issued = ok(
        astrid(
            &home,
            &[
                "pair-device",
                "issue",
                "-a",
                "default",
                "--scope",
                "use-only",
            ],
        ),
        "pair-device issue",
    );
    let token = issued
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("astrid-device.default."))
        .unwrap_or_else(|| panic!("no token in {issued}"))
        .to_string();
    let as_device = std::process::Command::new(env!("CARGO_BIN_EXE_astrid"))
        .arg("--home")
        .arg(&home)
        .args(["distro", "install", f.distro.to_str().unwrap()])
        .env("ASTRID_DEVICE_TOKEN", &token)
        .output()
        .unwrap();
    let e = failed(as_device, "a device pinning a lock");
    assert!(e.contains("needs the operator"), "{e}");
    assert!(audit(&home)
        .iter()
        .any(|e| e["action"] == "control.distro-install" && e["decision"] == "denied"));

    // With everything put back, it installs.
    ok(
        astrid(&home, &["distro", "install", f.distro.to_str().unwrap()]),
        "distro install",
    );
    assert_eq!(installed(&home).len(), 2);
}
