//! Filesystem confinement through a real daemon: `fsprobe` (roots `~/data` read-only and
//! `~/data/out` writable, `~` being `$ASTRID_HOME/principals/default/home`) may touch only its
//! roots, and every escape comes back as a typed `denied` error while the daemon keeps serving.

mod common;

use astrid_client::Client;
use common::{ask, assert_echo_serves, install, Capsule, Daemon, TestHome};
use serde_json::{json, Value};

const SECRET: &str = "the secret outside every root";

struct Fixture {
    home: TestHome,
    _daemon: Daemon,
    c: Client,
}

/// A daemon with echo and fsprobe installed, `~/data/hello.txt` inside the read root,
/// `~/secret.txt` beside it and `<tmp>/outside.txt` outside the home altogether.
async fn fixture() -> Fixture {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;
    install(&c, Capsule::FsProbe).await;
    let ph = home.principal_home();
    std::fs::create_dir_all(ph.join("data/out")).unwrap();
    std::fs::write(ph.join("data/hello.txt"), "inside").unwrap();
    std::fs::write(ph.join("secret.txt"), SECRET).unwrap();
    std::fs::write(home.outside().join("outside.txt"), SECRET).unwrap();
    Fixture {
        home,
        _daemon: daemon,
        c,
    }
}

/// Runs one fsprobe operation; its `{"ok": ..}` or `{"err": ..}` reply.
async fn probe(c: &Client, op: Value) -> Value {
    let reply = ask(c, "fsprobe.v1.op", op.to_string().as_bytes()).await;
    serde_json::from_str(&reply).unwrap()
}

/// The operation must come back `denied`, must not leak the secret, and the daemon must keep
/// serving afterwards.
async fn assert_denied(c: &Client, op: Value) {
    let reply = probe(c, op.clone()).await;
    let err = reply["err"]
        .as_str()
        .unwrap_or_else(|| panic!("{op} was not refused: {reply}"));
    assert!(
        err.starts_with("denied: "),
        "{op}: expected denied, got {err}"
    );
    assert!(!reply.to_string().contains(SECRET), "{op} leaked: {reply}");
    assert_echo_serves(c).await;
}

fn read(path: &str) -> Value {
    json!({ "op": "read", "path": path })
}

#[tokio::test]
async fn reads_and_writes_inside_the_roots_work() {
    let f = fixture().await;
    assert_eq!(
        probe(&f.c, read("~/data/hello.txt")).await,
        json!({ "ok": "inside" })
    );
    let write = json!({ "op": "write", "path": "~/data/out/new.txt", "data": "written" });
    assert_eq!(probe(&f.c, write).await, json!({ "ok": true }));
    let written = f.home.principal_home().join("data/out/new.txt");
    assert_eq!(std::fs::read_to_string(written).unwrap(), "written");
    // A write root is readable too.
    assert_eq!(
        probe(&f.c, read("~/data/out/new.txt")).await,
        json!({ "ok": "written" })
    );
}

#[tokio::test]
async fn dot_dot_and_absolute_paths_are_denied() {
    let f = fixture().await;
    assert_denied(&f.c, read("~/data/../secret.txt")).await;
    assert_denied(&f.c, read("~/data/out/../../secret.txt")).await;
    assert_denied(&f.c, read("/etc/passwd")).await;
    let outside = f.home.outside().join("outside.txt");
    assert_denied(&f.c, read(outside.to_str().unwrap())).await;
    assert_denied(&f.c, read("~/secret.txt")).await;
}

#[tokio::test]
async fn symlink_out_of_the_root_is_denied() {
    let f = fixture().await;
    let data = f.home.principal_home().join("data");
    std::os::unix::fs::symlink(f.home.outside().join("outside.txt"), data.join("abs-link"))
        .unwrap();
    std::os::unix::fs::symlink("../secret.txt", data.join("rel-link")).unwrap();
    std::os::unix::fs::symlink("/etc", data.join("etc")).unwrap();
    assert_denied(&f.c, read("~/data/abs-link")).await;
    assert_denied(&f.c, read("~/data/rel-link")).await;
    assert_denied(&f.c, read("~/data/etc/passwd")).await;
}

#[tokio::test]
async fn hard_link_to_a_file_outside_the_root_is_denied() {
    let f = fixture().await;
    let data = f.home.principal_home().join("data");
    std::fs::hard_link(f.home.outside().join("outside.txt"), data.join("hard.txt")).unwrap();
    std::fs::hard_link(
        f.home.principal_home().join("secret.txt"),
        data.join("out/hard.txt"),
    )
    .unwrap();
    assert_denied(&f.c, read("~/data/hard.txt")).await;
    assert_denied(&f.c, read("~/data/out/hard.txt")).await;
    // Writing through the link must not change the file outside either.
    let write = json!({ "op": "write", "path": "~/data/out/hard.txt", "data": "overwritten" });
    assert_denied(&f.c, write).await;
    let secret = f.home.principal_home().join("secret.txt");
    assert_eq!(std::fs::read_to_string(secret).unwrap(), SECRET);
}

#[tokio::test]
async fn writes_into_the_read_only_root_are_denied() {
    let f = fixture().await;
    let data = f.home.principal_home().join("data");
    assert_denied(
        &f.c,
        json!({ "op": "write", "path": "~/data/x", "data": "no" }),
    )
    .await;
    assert!(!data.join("x").exists());
    assert_denied(
        &f.c,
        json!({ "op": "write", "path": "~/data/hello.txt", "data": "no" }),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(data.join("hello.txt")).unwrap(),
        "inside"
    );
    assert_denied(&f.c, json!({ "op": "remove", "path": "~/data/hello.txt" })).await;
    assert!(data.join("hello.txt").exists());
    let rename = json!({ "op": "rename", "path": "~/data/out/a", "to": "~/data/a" });
    std::fs::write(data.join("out/a"), "a").unwrap();
    assert_denied(&f.c, rename).await;
    assert!(!data.join("a").exists());
}

#[tokio::test]
async fn a_capsule_without_fs_roots_has_no_filesystem() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;
    install(&c, Capsule::Misbehave).await;
    let reply = ask(&c, "misbehave.v1.fs_denied", b"").await;
    assert!(reply.starts_with("denied: "), "{reply}");
    assert!(reply.contains("declares no filesystem roots"), "{reply}");
    assert!(!reply.contains("root:"), "leaked /etc/passwd: {reply}");
    assert_echo_serves(&c).await;
}
