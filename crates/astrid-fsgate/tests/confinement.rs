//! Everything the gate must refuse, on a real filesystem.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use astrid_fsgate::{FsGateError, FsRoots};

struct Fixture {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    gate: FsRoots,
}

impl Fixture {
    /// `base/rw` is a write root, `base/ro` a read root, `base/outside` is not granted.
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        for d in ["rw", "ro", "outside/dir", "home"] {
            fs::create_dir_all(base.join(d)).unwrap();
        }
        fs::write(base.join("outside/secret.txt"), b"secret").unwrap();
        fs::write(base.join("ro/readme.txt"), b"hello").unwrap();
        let gate = FsRoots::new(
            &base.join("home"),
            &[p(&base.join("ro"))],
            &[p(&base.join("rw"))],
        )
        .unwrap();
        Fixture {
            _tmp: tmp,
            base,
            gate,
        }
    }

    fn path(&self, rel: &str) -> String {
        p(&self.base.join(rel))
    }

    fn secret(&self) -> Vec<u8> {
        fs::read(self.base.join("outside/secret.txt")).unwrap()
    }
}

fn p(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

fn assert_denied<T: std::fmt::Debug>(result: Result<T, FsGateError>, needle: &str) {
    match result {
        Err(FsGateError::Denied(msg)) => {
            assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}")
        }
        other => panic!("expected Denied containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn dotdot_traversal_is_refused() {
    let f = Fixture::new();
    let sneaky = format!("{}/../outside/secret.txt", f.path("rw"));
    assert_denied(f.gate.read(&sneaky, 1024), "`..`");
    assert_denied(f.gate.write(&sneaky, b"x"), "`..`");
    assert_denied(f.gate.list_dir("~/.."), "`..`");
    assert_eq!(f.secret(), b"secret");
}

#[test]
fn absolute_path_outside_roots_is_refused() {
    let f = Fixture::new();
    let secret = f.path("outside/secret.txt");
    assert_denied(
        f.gate.read(&secret, 1024),
        "not under any root granted for read",
    );
    assert_denied(f.gate.stat(&secret), &secret);
    assert_denied(f.gate.list_dir(&f.path("outside")), "outside");
    // A sibling whose name merely starts with a root's name is not under that root.
    fs::create_dir(f.base.join("rw2")).unwrap();
    assert_denied(f.gate.write(&f.path("rw2/x"), b"x"), "granted for write");
    assert!(!f.base.join("rw2/x").exists());
}

#[test]
fn file_symlink_out_of_root_is_refused() {
    let f = Fixture::new();
    symlink("../outside/secret.txt", f.base.join("rw/link.txt")).unwrap();
    let link = f.path("rw/link.txt");
    assert_denied(f.gate.read(&link, 1024), "escapes the granted root");
    assert_denied(f.gate.write(&link, b"pwned"), "escapes the granted root");
    assert_denied(f.gate.append(&link, b"pwned"), "escapes the granted root");
    assert_eq!(f.secret(), b"secret");
}

#[test]
fn directory_symlink_out_of_root_is_refused() {
    let f = Fixture::new();
    symlink("../outside", f.base.join("rw/linkdir")).unwrap();
    assert_denied(f.gate.list_dir(&f.path("rw/linkdir")), "escapes");
    // The symlink as an intermediate directory.
    assert_denied(
        f.gate.read(&f.path("rw/linkdir/secret.txt"), 1024),
        "escapes",
    );
    assert_denied(f.gate.write(&f.path("rw/linkdir/new.txt"), b"x"), "escapes");
    assert_denied(
        f.gate.mkdir(&f.path("rw/linkdir/sub/deeper"), true),
        "escapes",
    );
    assert_denied(f.gate.stat(&f.path("rw/linkdir/secret.txt")), "escapes");
    assert_denied(
        f.gate.remove(&f.path("rw/linkdir/secret.txt"), false),
        "escapes",
    );
    assert!(!f.base.join("outside/new.txt").exists());
    assert!(!f.base.join("outside/sub").exists());
    assert_eq!(f.secret(), b"secret");
}

#[test]
fn symlinked_intermediate_dir_nested_inside_root_is_refused() {
    let f = Fixture::new();
    fs::create_dir_all(f.base.join("rw/a/b")).unwrap();
    symlink("../../../outside/dir", f.base.join("rw/a/b/up")).unwrap();
    assert_denied(
        f.gate.write(&f.path("rw/a/b/up/planted.txt"), b"x"),
        "escapes",
    );
    assert!(!f.base.join("outside/dir/planted.txt").exists());
}

#[test]
fn absolute_symlinks_are_refused_even_when_pointing_inside() {
    let f = Fixture::new();
    fs::write(f.base.join("rw/inside.txt"), b"in").unwrap();
    symlink(f.base.join("outside/secret.txt"), f.base.join("rw/abs_out")).unwrap();
    symlink(f.base.join("rw/inside.txt"), f.base.join("rw/abs_in")).unwrap();
    assert_denied(f.gate.read(&f.path("rw/abs_out"), 1024), "escapes");
    assert_denied(f.gate.read(&f.path("rw/abs_in"), 1024), "escapes");
    assert_denied(f.gate.write(&f.path("rw/abs_out"), b"x"), "escapes");
    assert_eq!(f.secret(), b"secret");
}

#[test]
fn hard_link_to_outside_file_is_refused() {
    let f = Fixture::new();
    fs::hard_link(f.base.join("outside/secret.txt"), f.base.join("rw/hl.txt")).unwrap();
    let hl = f.path("rw/hl.txt");
    assert_denied(f.gate.read(&hl, 1024), "more than one hard link");
    assert_denied(f.gate.write(&hl, b"overwrite"), "more than one hard link");
    assert_denied(f.gate.append(&hl, b"more"), "more than one hard link");
    // The outside file was neither truncated nor extended.
    assert_eq!(f.secret(), b"secret");
}

#[test]
fn read_only_root_refuses_every_mutation() {
    let f = Fixture::new();
    let readme = f.path("ro/readme.txt");
    assert_eq!(f.gate.read(&readme, 1024).unwrap(), b"hello");
    assert_denied(f.gate.write(&readme, b"x"), "granted for write");
    assert_denied(f.gate.append(&readme, b"x"), "granted for write");
    assert_denied(
        f.gate.write(&f.path("ro/new.txt"), b"x"),
        "granted for write",
    );
    assert_denied(f.gate.mkdir(&f.path("ro/sub"), false), "granted for write");
    assert_denied(f.gate.remove(&readme, false), "granted for write");
    assert_denied(
        f.gate.rename(&readme, &f.path("rw/stolen.txt")),
        "granted for write",
    );
    assert!(f.gate.stat(&readme).unwrap().readonly);
    assert_eq!(fs::read(f.base.join("ro/readme.txt")).unwrap(), b"hello");
    assert!(!f.base.join("ro/new.txt").exists());
}

#[test]
fn rename_out_of_root_is_refused() {
    let f = Fixture::new();
    fs::write(f.base.join("rw/a.txt"), b"a").unwrap();
    assert_denied(
        f.gate.rename(&f.path("rw/a.txt"), &f.path("outside/a.txt")),
        "granted for write",
    );
    symlink("../outside", f.base.join("rw/out")).unwrap();
    assert_denied(
        f.gate.rename(&f.path("rw/a.txt"), &f.path("rw/out/a.txt")),
        "escapes",
    );
    assert!(!f.base.join("outside/a.txt").exists());
}

#[test]
fn host_system_directories_are_refused_even_with_root_slash() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let gate = FsRoots::new(&base, &[], &["/".to_owned()]).unwrap();
    assert_denied(gate.read("/proc/self/status", 1 << 20), "host system");
    assert_denied(gate.read("/proc/self/environ", 1 << 20), "host system");
    assert_denied(gate.list_dir("/proc"), "host system");
    assert_denied(gate.list_dir("/sys"), "host system");
    assert_denied(gate.stat("/sys/kernel"), "host system");
    assert_denied(gate.write("/dev/null", b"x"), "host system");
    assert_denied(gate.read("/./proc/1/cmdline", 1024), "host system");

    // A relative symlink stays inside `/`, so cap-std allows it; the gate must still refuse.
    let ups = "../".repeat(base.components().count() - 1);
    symlink(format!("{ups}proc"), base.join("p")).unwrap();
    symlink(format!("{ups}dev/null"), base.join("n")).unwrap();
    let via = |name: &str| p(&base.join(name));
    // The links really lead into the host directories; only the gate stands in the way.
    assert!(fs::metadata(base.join("p/self/status")).unwrap().is_file());
    assert_denied(
        gate.read(&format!("{}/self/status", via("p")), 1 << 20),
        "host system",
    );
    assert_denied(gate.list_dir(&via("p")), "host system");
    assert_denied(gate.write(&via("n"), b"x"), "host system");
    // A dangling symlink on a root that contains /dev would be followed on create.
    symlink(format!("{ups}dev/astrid-planted"), base.join("d")).unwrap();
    assert_denied(gate.write(&via("d"), b"x"), "host system");

    // Ordinary files under the same `/` root still work.
    gate.write(&via("ok.txt"), b"fine").unwrap();
    assert_eq!(gate.read(&via("ok.txt"), 1024).unwrap(), b"fine");
}

#[test]
fn removing_a_root_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    fs::create_dir_all(base.join("work/inner")).unwrap();
    fs::create_dir_all(base.join("a/b/c")).unwrap();
    fs::write(base.join("work/inner/keep.txt"), b"keep").unwrap();
    let gate = FsRoots::new(
        &base,
        &["~/work/inner".to_owned(), "~/a/b/c".to_owned()],
        &["~".to_owned(), "~/work".to_owned()],
    )
    .unwrap();
    assert_denied(gate.remove("~", true), "granted root");
    assert_denied(gate.remove("~/work", true), "granted root");
    assert_denied(gate.remove(&p(&base.join("work")), false), "granted root");
    assert_denied(gate.remove("~/work/inner", true), "granted root");
    // A directory that merely contains a granted root is protected too.
    assert_denied(gate.remove("~/a", true), "granted root");
    assert_denied(gate.rename("~/a/b", "~/moved"), "granted root");
    assert_eq!(fs::read(base.join("work/inner/keep.txt")).unwrap(), b"keep");
    assert!(base.join("a/b/c").is_dir());
}
