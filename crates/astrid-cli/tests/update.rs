//! `astrid update` against a release channel served on loopback by the test, with two really
//! built releases: the binaries of this build, and the same sources built again with another
//! version (`ASTRID_RELEASE_VERSION`; scripts/test.sh builds it and passes its directory in
//! `ASTRID_TEST_NEXT_RELEASE`). A release install is made from nothing (`--root`), its daemon
//! started, and then every way in is tried: an untrusted channel, a publisher trusted for
//! capsules but not releases, a channel edited after signing, an archive whose bytes differ
//! from the signed hash, and the updater killed (SIGKILL) mid-download and after each step.
//! After each, the old daemon still runs (or runs again at the next start) from the old
//! release. Then the update itself, a refused and a forced downgrade, and a new release whose
//! daemon does not come up, rolled back.
#![allow(
    clippy::disallowed_methods,
    reason = "the test drives the real astrid binaries of two releases"
)]

mod common;

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::static_http::{StaticServer, Throttle};
use common::{astrid, failed, keygen, ok, text};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The directory of this build's binaries.
fn this_release() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_astrid"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The second build's binaries; the test cannot run without them.
fn next_release() -> PathBuf {
    let dir = std::env::var_os("ASTRID_TEST_NEXT_RELEASE")
        .map(PathBuf::from)
        .expect(
            "ASTRID_TEST_NEXT_RELEASE must name a directory with the five binaries built with \
         another ASTRID_RELEASE_VERSION (scripts/test.sh builds it)",
        );
    for bin in astrid_registry::channel::BINARIES {
        assert!(
            dir.join(bin).is_file(),
            "{} is missing",
            dir.join(bin).display()
        );
    }
    dir
}

/// What `BIN --version` says: `astrid X` → `X`.
fn version_of(bin: &Path) -> String {
    let out = ok(
        Command::new(bin).arg("--version").output().unwrap(),
        "--version",
    );
    out.split_whitespace().nth(1).unwrap().to_string()
}

fn publish(root: &Path, channel: &Path, key: &Path, version: &str, from: &Path) -> PathBuf {
    let out = ok(
        astrid(
            root,
            &[
                "release",
                "publish",
                s(channel),
                "--key",
                s(key),
                "--version",
                version,
                "--from",
                s(from),
            ],
        ),
        "release publish",
    );
    let file = out
        .lines()
        .find_map(|l| l.split(" as ").nth(1))
        .and_then(|l| l.split(" (").next())
        .unwrap_or_else(|| panic!("no archive path in {out}"));
    PathBuf::from(file)
}

/// One installed release tree and the home its daemon serves.
struct Install {
    root: PathBuf,
    home: PathBuf,
}

impl Install {
    /// `ROOT/bin/astrid --home HOME ARGS`: the installed release's own CLI.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.root.join("bin/astrid"));
        c.arg("--home")
            .arg(&self.home)
            .args(args)
            .env_remove("ASTRID_DAEMON")
            .env_remove("ASTRID_CHANNEL")
            .env_remove("ASTRID_FAILPOINT");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn update(&self, channel: &str, extra: &[&str]) -> Output {
        let mut args = vec!["update", "--channel", channel];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// The updater killed with SIGKILL at `failpoint`.
    fn update_killed_at(&self, channel: &str, failpoint: &str) {
        let out = self
            .cmd(&["update", "--channel", channel])
            .env("ASTRID_FAILPOINT", failpoint)
            .output()
            .unwrap();
        assert_eq!(
            out.status.signal(),
            Some(9),
            "the updater should die at {failpoint}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    fn current(&self) -> String {
        let link = std::fs::read_link(self.root.join("current")).unwrap();
        link.file_name().unwrap().to_str().unwrap().to_string()
    }

    fn has_version(&self, v: &str) -> bool {
        self.root.join("versions").join(v).exists()
    }

    /// The running daemon's pid and the release its executable belongs to.
    fn daemon(&self) -> Option<(u32, String)> {
        let out = self.run(&["status", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let pid = u32::try_from(status["pid"].as_u64()?).unwrap();
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        let versions = self.root.join("versions").canonicalize().unwrap();
        let rel = exe.strip_prefix(&versions).unwrap_or_else(|_| {
            panic!(
                "the daemon runs {}, outside {}",
                exe.display(),
                versions.display()
            )
        });
        assert_eq!(rel.file_name().unwrap(), "astrid-daemon");
        Some((pid, rel.parent().unwrap().to_str().unwrap().to_string()))
    }

    fn journal(&self) -> bool {
        self.root.join("update.toml").exists()
    }
}

impl Drop for Install {
    fn drop(&mut self) {
        let _ = self.run(&["stop"]);
    }
}

/// A channel with this build published as `v1`, trusted for releases in a fresh home, and an
/// install of `v1` made from nothing with its daemon started.
fn installed_v1(root: &Path) -> (Install, StaticServer, PathBuf, PathBuf, String) {
    let v1 = version_of(&this_release().join("astrid"));
    let (key, public) = keygen(root, "releases");
    let channel = root.join("channel");
    publish(root, &channel, &key, &v1, &this_release());
    let server = StaticServer::start(&channel);
    let install = Install {
        root: root.join("install"),
        home: root.join("home"),
    };
    ok(
        astrid(
            &install.home,
            &["trust", "add", "releases", &public, "--releases"],
        ),
        "trust add --releases",
    );
    let out = ok(
        astrid(
            &install.home,
            &[
                "update",
                "--root",
                s(&install.root),
                "--channel",
                &server.url,
                "--to",
                &v1,
            ],
        ),
        "bootstrap install",
    );
    assert!(out.contains(&format!("astrid {v1} installed in")), "{out}");
    assert_eq!(install.current(), v1);
    assert_eq!(version_of(&install.root.join("bin/astrid")), v1);
    assert_eq!(version_of(&install.root.join("current/astrid-netfwd")), v1);
    ok(install.run(&["start"]), "start");
    let (_, running) = install.daemon().expect("the daemon runs");
    assert_eq!(running, v1);
    (install, server, key, channel, v1)
}

#[test]
fn updates_verify_survive_kill_9_at_every_step_and_refuse_every_forgery() {
    let next = next_release();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();

    // Before anything is trusted for releases, nothing is fetched beyond the channel file.
    let (key0, public0) = keygen(root, "other");
    let untrusted = root.join("untrusted-channel");
    publish(root, &untrusted, &key0, "0.1.0", &this_release());
    let untrusted_server = StaticServer::start(&untrusted);
    let fresh = root.join("fresh-home");
    let update_fresh = |what: &str| {
        let r0 = root.join("r0");
        let args = [
            "update",
            "--root",
            s(&r0),
            "--channel",
            &untrusted_server.url,
        ];
        failed(astrid(&fresh, &args), what)
    };
    let err = update_fresh("update from an untrusted channel");
    assert!(err.contains("not a trusted publisher"), "{err}");
    // A publisher trusted for capsules and distros is not thereby trusted for Astrid itself.
    ok(
        astrid(&fresh, &["trust", "add", "capsules-only", &public0]),
        "trust add",
    );
    let err = update_fresh("update from a publisher not trusted for releases");
    assert!(err.contains("not for Astrid's own releases"), "{err}");
    assert!(!root.join("r0/current").exists());
    assert_eq!(untrusted_server.hits(), 2, "only channel.toml, twice");

    let (install, server, key, channel, v1) = installed_v1(root);
    let v2 = version_of(&next.join("astrid"));
    assert!(
        semver::Version::parse(&v2).unwrap() > semver::Version::parse(&v1).unwrap(),
        "the second build ({v2}) must be newer than this one ({v1})"
    );
    let archive2 = publish(root, &channel, &key, &v2, &next);
    let (pid1, _) = install.daemon().unwrap();

    // --check reports and changes nothing.
    let out = ok(install.update(&server.url, &["--check"]), "update --check");
    assert!(
        out.contains(&format!("update available: {v1} → {v2}")),
        "{out}"
    );
    assert!(!install.has_version(&v2));

    // An archive whose bytes differ from the signed hash: refused, naming both hashes.
    let good = std::fs::read(&archive2).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    std::fs::write(&archive2, &bad).unwrap();
    let err = failed(
        install.update(&server.url, &[]),
        "update with a flipped byte",
    );
    assert!(err.contains("but the signed index pins"), "{err}");
    std::fs::write(&archive2, &good).unwrap();
    // A channel file edited after signing (the release renumbered).
    let channel_file = channel.join("channel.toml");
    let signed = std::fs::read_to_string(&channel_file).unwrap();
    let forged = signed.replacen(&format!("version = \"{v2}\""), "version = \"9.9.9\"", 1);
    assert_ne!(signed, forged);
    std::fs::write(&channel_file, &forged).unwrap();
    let err = failed(
        install.update(&server.url, &[]),
        "update from an edited channel",
    );
    assert!(err.contains("the signature does not verify"), "{err}");
    std::fs::write(&channel_file, &signed).unwrap();
    for what in ["the flipped archive", "the edited channel"] {
        assert_eq!(install.current(), v1, "after {what}");
    }
    assert!(!install.has_version(&v2));
    assert_eq!(install.daemon(), Some((pid1, v1.clone())));

    // Killed in the middle of the download (a slow server; SIGKILL once bytes flowed).
    let slow = StaticServer::start_throttled(
        &channel,
        Throttle {
            chunk: 256 * 1024,
            pause: Duration::from_millis(20),
        },
    );
    let mut child = install
        .cmd(&["update", "--channel", &slow.url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while slow.sent() < good.len() / 4 {
        assert!(Instant::now() < deadline, "the download never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the updater ended early"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(9));
    assert!(
        slow.sent() < good.len(),
        "killed before the download finished"
    );
    assert_eq!(install.current(), v1);
    assert!(!install.has_version(&v2));
    assert_eq!(install.daemon(), Some((pid1, v1.clone())));

    // Killed after the download, after staging, after the swap: the old daemon never stopped.
    for point in ["update-downloaded", "update-staged", "update-swapped"] {
        install.update_killed_at(&server.url, point);
        assert_eq!(install.daemon(), Some((pid1, v1.clone())), "after {point}");
    }
    // The swap was made and recorded; the next start (through the new release's CLI, which
    // `bin/astrid` now reaches) puts the release in use back before anything else.
    assert_eq!(install.current(), v2);
    assert!(install.journal());
    let out = ok(install.run(&["start"]), "start after an interrupted update");
    assert!(out.contains("was interrupted"), "{out}");
    assert_eq!(install.current(), v1);
    assert!(!install.journal());
    assert_eq!(install.daemon(), Some((pid1, v1.clone())));

    // Killed after the old daemon stopped, before the new one started: no daemon runs, and
    // the next start runs the old release again.
    install.update_killed_at(&server.url, "update-stopped");
    assert_eq!(install.daemon(), None);
    ok(
        install.run(&["start"]),
        "start after an update killed with no daemon",
    );
    assert_eq!(install.current(), v1);
    let (pid1b, running) = install.daemon().unwrap();
    assert_eq!(running, v1);
    assert_ne!(pid1b, pid1);

    // The update itself: verified, swapped, the daemon restarted from the new release.
    let out = ok(install.update(&server.url, &[]), "update");
    assert!(
        out.contains(&format!("astrid updated {v1} → {v2}")),
        "{out}"
    );
    assert_eq!(install.current(), v2);
    assert_eq!(version_of(&install.root.join("bin/astrid")), v2);
    // The sandbox forwarder came with it, beside the daemon that looks for it there.
    assert_eq!(version_of(&install.root.join("current/astrid-netfwd")), v2);
    let (pid2, running) = install.daemon().unwrap();
    assert_eq!(running, v2);
    assert_ne!(pid2, pid1b);
    assert!(!install.journal());
    let out = ok(install.update(&server.url, &[]), "update again");
    assert!(out.contains("up to date"), "{out}");

    // A downgrade only with --force.
    let err = failed(install.update(&server.url, &["--to", &v1]), "downgrade");
    assert!(err.contains("a downgrade needs --force"), "{err}");
    assert_eq!(install.daemon().unwrap().0, pid2);
    let out = ok(
        install.update(&server.url, &["--to", &v1, "--force"]),
        "forced downgrade",
    );
    assert!(
        out.contains(&format!("astrid updated {v2} → {v1}")),
        "{out}"
    );
    assert_eq!(install.daemon().unwrap().1, v1);
    assert_eq!(install.current(), v1);
}

#[test]
fn a_release_whose_daemon_does_not_come_up_is_rolled_back() {
    let next = next_release();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (install, server, key, channel, v1) = installed_v1(root);
    let (pid1, _) = install.daemon().unwrap();

    // The second build, except that its daemon answers `--version` and then fails at boot:
    // it passes staging (it runs and names its version) and only starting it shows it broken.
    let v2 = version_of(&next.join("astrid"));
    let broken = root.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    for bin in ["astrid", "astrid-gateway", "astrid-emit", "astrid-netfwd"] {
        std::fs::copy(next.join(bin), broken.join(bin)).unwrap();
    }
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'astrid-daemon {v2}'; exit 0; fi\n\
         echo 'astrid-daemon: error: this build is broken' >&2\nexit 1\n"
    );
    std::fs::write(broken.join("astrid-daemon"), script).unwrap();
    std::fs::set_permissions(
        broken.join("astrid-daemon"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    publish(root, &channel, &key, &v2, &broken);

    let err = failed(
        install.update(&server.url, &[]),
        "update to a broken release",
    );
    assert!(
        err.contains(&format!("astrid {v2} did not come up")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "rolled back: astrid {v1} is in use and running again"
        )),
        "{err}"
    );
    assert_eq!(install.current(), v1);
    assert!(!install.journal());
    assert!(!install.has_version(&v2), "the broken release is removed");
    let (pid, running) = install.daemon().unwrap();
    assert_eq!(running, v1);
    assert_ne!(
        pid, pid1,
        "the old daemon was stopped for the new one, then started again"
    );
}
