//! The protected locations on a real filesystem, under the widest grant there is (`/`
//! readable and writable): Astrid's own state refused by every operation and every route,
//! credentials reported for the host to decide, bad paths refused as invalid, and the
//! resolved path reported as what an operation touches.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use astrid_fsgate::{Access, FsGateError, FsRoots, ProtectedSet, Reach};

struct Fixture {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    gate: FsRoots,
}

fn p(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

/// `base/astrid` is the Astrid home (with a principal home `principals/p/home` inside it),
/// `base/user` the operator's home with `.ssh`, `base/ws` an ordinary workspace.
/// `astrid_given` names the home as the daemon was given it.
fn fixture(astrid_given: impl FnOnce(&Path) -> PathBuf) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    for d in ["astrid/keys", "astrid/principals/p/home", "user/.ssh", "ws"] {
        fs::create_dir_all(base.join(d)).unwrap();
    }
    fs::write(base.join("astrid/keys/runtime.key"), b"KEY").unwrap();
    fs::write(base.join("user/.ssh/id_ed25519"), b"SSH").unwrap();
    fs::write(base.join("ws/bait.txt"), b"bait").unwrap();
    let astrid = astrid_given(&base);
    let home = astrid.join("principals/p/home");
    let protected = ProtectedSet::new(&astrid, Some(&base.join("user"))).exempting(&home);
    let gate = FsRoots::new(&home, &[], &["/".into()])
        .unwrap()
        .with_protected(protected);
    Fixture {
        _tmp: tmp,
        base,
        gate,
    }
}

fn plain() -> Fixture {
    fixture(|b| b.join("astrid"))
}

impl Fixture {
    fn path(&self, rel: &str) -> String {
        p(&self.base.join(rel))
    }
}

fn assert_state<T: std::fmt::Debug>(r: Result<T, FsGateError>, what: &str) {
    match r {
        Err(FsGateError::Denied(m)) => {
            assert!(m.contains("Astrid's own state"), "{what}: {m}")
        }
        other => panic!("{what}: expected a denial, got {other:?}"),
    }
}

/// Every operation on every route into the home, refused, and nothing touched.
fn every_route_is_refused(f: &Fixture, astrid: &str) {
    let g = &f.gate;
    // Relative links: cap-std refuses absolute ones on its own, but follows a relative link
    // that stays under the root, and the root here is `/`.
    let name = Path::new(astrid).file_name().unwrap().to_str().unwrap();
    symlink(
        format!("../{name}/keys/runtime.key"),
        f.base.join("ws/key-link"),
    )
    .unwrap();
    symlink(format!("../{name}/keys"), f.base.join("ws/keys-link")).unwrap();
    symlink(
        format!("../{name}/keys/planted.key"),
        f.base.join("ws/dangling"),
    )
    .unwrap();
    let key = format!("{astrid}/keys/runtime.key");
    for path in [
        key.clone(),
        f.path("ws/key-link"),
        f.path("ws/keys-link/runtime.key"),
    ] {
        assert_state(g.read(&path, 1024), &format!("read {path}"));
        assert_state(g.write(&path, b"x"), &format!("write {path}"));
        assert_state(g.append(&path, b"x"), &format!("append {path}"));
        assert_state(g.stat(&path), &format!("stat {path}"));
        assert_state(g.remove(&path, false), &format!("remove {path}"));
        assert_state(
            g.rename(&path, &f.path("ws/stolen")),
            &format!("rename out {path}"),
        );
        assert_state(
            g.rename(&f.path("ws/bait.txt"), &path),
            &format!("rename in {path}"),
        );
        // Refused at the check, before any token or approval is looked at.
        for reach in [Reach::Follow, Reach::Entry, Reach::Tree] {
            assert_state(g.check(&path, Access::Read, reach), &path);
        }
    }
    for dir in [
        format!("{astrid}/keys"),
        f.path("ws/keys-link"),
        astrid.into(),
    ] {
        assert_state(g.list_dir(&dir), &format!("list {dir}"));
        assert_state(
            g.mkdir(&format!("{dir}/new"), true),
            &format!("mkdir {dir}"),
        );
    }
    // A dangling final symlink under a root holding `/proc` is refused by the gate's own
    // root check before the protected check sees it; either way it is a denial.
    assert!(matches!(
        g.write(&f.path("ws/dangling"), b"x"),
        Err(FsGateError::Denied(_))
    ));
    assert_state(
        g.write(&f.path("ws/keys-link/planted.key"), b"x"),
        "write a new file through an intermediate symlink",
    );
    assert_state(
        g.remove(&f.path(""), true),
        "remove a tree holding the home",
    );

    assert_eq!(
        fs::read(f.base.join("astrid/keys/runtime.key")).unwrap(),
        b"KEY"
    );
    assert!(!f.base.join("astrid/keys/planted.key").exists());
    assert!(!f.base.join("astrid/keys/new").exists());
    assert!(f.base.join("ws/bait.txt").exists());
    assert!(!f.base.join("ws/stolen").exists());
}

#[test]
fn astrid_state_is_refused_on_every_route() {
    let f = plain();
    let astrid = f.path("astrid");
    every_route_is_refused(&f, &astrid);
}

#[test]
fn a_symlinked_astrid_home_is_refused_under_both_names() {
    let f = fixture(|b| {
        // Relative: cap-std refuses an absolute link outright, which would hide the check.
        symlink("astrid", b.join("astrid-link")).unwrap();
        b.join("astrid-link")
    });
    let link = f.path("astrid-link");
    every_route_is_refused(&f, &link);
    assert_state(
        f.gate.read(&f.path("astrid/keys/runtime.key"), 1024),
        "real name",
    );
}

#[test]
fn the_principal_home_inside_it_stays_usable_but_cannot_lead_out() {
    let f = plain();
    let g = &f.gate;
    g.write("~/notes.txt", b"mine").unwrap();
    assert_eq!(g.read("~/notes.txt", 1024).unwrap(), b"mine");
    symlink("../../../keys", f.base.join("astrid/principals/p/home/k")).unwrap();
    assert_state(g.read("~/k/runtime.key", 1024), "out of the principal home");
    assert_state(g.read(&f.path("astrid/principals/p"), 1024), "beside it");
}

#[test]
fn a_hard_link_is_refused_before_anyone_is_asked() {
    let f = plain();
    fs::hard_link(
        f.base.join("astrid/keys/runtime.key"),
        f.base.join("ws/hard"),
    )
    .unwrap();
    let hard = f.path("ws/hard");
    for reach in [Reach::Follow, Reach::Entry, Reach::Tree] {
        match f.gate.check(&hard, Access::Read, reach) {
            Err(FsGateError::Denied(m)) => assert!(m.contains("hard link"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn credentials_are_reported_to_the_caller_and_refused_without_one() {
    let f = plain();
    let key = f.path("user/.ssh/id_ed25519");
    let c = f.gate.check(&key, Access::Read, Reach::Follow).unwrap();
    assert_eq!(c.credential(), Some(f.base.join("user/.ssh").as_path()));
    assert_eq!(c.touched(), f.base.join("user/.ssh/id_ed25519"));
    // Through a workspace symlink it is the same credential.
    symlink("../user/.ssh", f.base.join("ws/s")).unwrap();
    let c = f
        .gate
        .check(&f.path("ws/s/id_ed25519"), Access::Read, Reach::Follow)
        .unwrap();
    assert_eq!(c.touched(), f.base.join("user/.ssh/id_ed25519"));
    assert!(c.credential().is_some());
    // The checked read goes through once the caller has decided.
    assert_eq!(f.gate.read_checked(&c, 1024).unwrap(), b"SSH");
    // The plain API holds no grants, so it refuses.
    assert!(matches!(
        f.gate.read(&key, 1024),
        Err(FsGateError::Denied(m)) if m.contains("credential location")
    ));
}

#[test]
fn bad_paths_are_invalid_at_the_check() {
    let f = plain();
    for bad in ["", "/ws/a\0b", "~root/.ssh/id_rsa", "relative"] {
        assert!(
            matches!(
                f.gate.check(bad, Access::Read, Reach::Follow),
                Err(FsGateError::InvalidArgument(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn the_touched_path_is_the_resolved_one() {
    let f = plain();
    fs::create_dir_all(f.base.join("ws/real")).unwrap();
    symlink("real", f.base.join("ws/alias")).unwrap();
    let new = f.path("ws/alias/new.txt");
    let c = f.gate.check(&new, Access::Write, Reach::Follow).unwrap();
    assert_eq!(c.touched(), f.base.join("ws/real/new.txt"));
    assert!(c.credential().is_none());
    f.gate.write_checked(&c, b"x").unwrap();
    assert_eq!(fs::read(f.base.join("ws/real/new.txt")).unwrap(), b"x");
    // `stat` and `remove` act on the entry itself, not where it leads.
    let c = f
        .gate
        .check(&f.path("ws/alias"), Access::Write, Reach::Tree)
        .unwrap();
    assert_eq!(c.touched(), f.base.join("ws/alias"));
}
