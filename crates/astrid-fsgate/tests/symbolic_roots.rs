//! The symbolic manifest roots on a real filesystem: `$user_home` names the user's home as
//! the daemon knows it, `$granted` admits any path but marks it as reachable only by a token,
//! and a symlink from a plain root into the rest of the system is marked the same way (where a
//! path leads decides, not how it is written).

use std::fs;
use std::os::unix::fs::symlink;

use astrid_fsgate::{Access, FsGateError, FsRoots, Reach};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn user_home_names_the_given_home_and_granted_is_token_only() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let (home, user, elsewhere) = (base.join("p"), base.join("user"), base.join("srv"));
    for d in [&home, &user, &elsewhere] {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(user.join("notes.txt"), b"n").unwrap();
    fs::write(elsewhere.join("data.txt"), b"d").unwrap();
    symlink(elsewhere.join("data.txt"), user.join("alias.txt")).unwrap();
    let roots = s(&["~/", "$user_home", "$granted"]);
    let gate = FsRoots::with_symbols(&home, Some(&user), &roots, &roots).unwrap();

    let inside = gate
        .check(
            user.join("notes.txt").to_str().unwrap(),
            Access::Read,
            Reach::Follow,
        )
        .unwrap();
    assert!(!inside.token_only(), "{inside:?}");
    let own = gate
        .check("~/new.txt", Access::Write, Reach::Follow)
        .unwrap();
    assert!(!own.token_only(), "{own:?}");

    let outside = gate
        .check(
            elsewhere.join("data.txt").to_str().unwrap(),
            Access::Read,
            Reach::Follow,
        )
        .unwrap();
    assert!(outside.token_only(), "{outside:?}");
    // Written under the user's home, leading outside it: judged by where it leads.
    let alias = gate
        .check(
            user.join("alias.txt").to_str().unwrap(),
            Access::Read,
            Reach::Follow,
        )
        .unwrap();
    assert_eq!(alias.touched(), elsewhere.join("data.txt"));
    assert!(alias.token_only(), "{alias:?}");

    // Only the plain roots bound what a human may be asked about.
    assert!(gate.grants(&user.join("x"), Access::Write));
    assert!(!gate.grants(&elsewhere, Access::Read));
    assert!(!gate.grants(std::path::Path::new("/etc"), Access::Read));
}

#[test]
fn without_granted_the_rest_is_outside_the_ceiling() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let (home, user) = (base.join("p"), base.join("user"));
    fs::create_dir_all(&home).unwrap();
    fs::create_dir_all(&user).unwrap();
    let gate = FsRoots::with_symbols(&home, Some(&user), &s(&["$user_home/docs"]), &[]).unwrap();
    match gate.check("/etc/hostname", Access::Read, Reach::Follow) {
        Err(FsGateError::Denied(m)) => assert!(m.contains("not under any root"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Read-only: a write under the root is refused.
    let docs = user.join("docs");
    fs::create_dir_all(&docs).unwrap();
    assert!(gate
        .check(
            docs.join("a").to_str().unwrap(),
            Access::Write,
            Reach::Follow
        )
        .is_err());
}

#[test]
fn symbolic_roots_are_refused_when_they_cannot_be_resolved() {
    let home = std::path::Path::new("/tmp/p");
    for bad in [
        "$user_home",
        "$user_home/x",
        "$user_homes",
        "$granted/x",
        "$other",
    ] {
        let r = FsRoots::with_symbols(home, None, &s(&[bad]), &[]);
        assert!(
            matches!(r, Err(FsGateError::InvalidArgument(_))),
            "{bad}: {r:?}"
        );
    }
    // A relative user home is not taken as one.
    let r = FsRoots::with_symbols(
        home,
        Some(std::path::Path::new("rel")),
        &s(&["$user_home"]),
        &[],
    );
    assert!(matches!(r, Err(FsGateError::InvalidArgument(_))), "{r:?}");
}
