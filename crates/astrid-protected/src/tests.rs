use std::os::unix::fs::symlink;

use super::*;

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let astrid = base.join("astrid");
    let user = base.join("user");
    std::fs::create_dir_all(astrid.join("keys")).unwrap();
    std::fs::create_dir_all(astrid.join("principals/default/home")).unwrap();
    std::fs::create_dir_all(user.join(".ssh")).unwrap();
    (dir, astrid, user)
}

#[test]
fn resolve_follows_intermediate_and_dangling_final_symlinks() {
    let (_d, astrid, user) = setup();
    symlink(&astrid, user.join("a")).unwrap();
    assert_eq!(
        resolve(&user.join("a/keys/x")).unwrap(),
        astrid.join("keys/x")
    );
    // A dangling symlink leads to its (missing) target: creating through it lands there.
    symlink(astrid.join("keys/new.key"), user.join("dangling")).unwrap();
    assert_eq!(
        resolve(&user.join("dangling")).unwrap(),
        astrid.join("keys/new.key")
    );
    assert_eq!(
        resolve_entry(&user.join("dangling")).unwrap(),
        user.join("dangling")
    );
    // `..` applies after resolution, as the kernel does it.
    symlink(astrid.join("keys"), user.join("k")).unwrap();
    assert_eq!(
        resolve(&user.join("k/../principals")).unwrap(),
        astrid.join("principals")
    );
    symlink("loop", user.join("loop")).unwrap();
    assert!(resolve(&user.join("loop")).is_err());
}

#[test]
fn astrid_state_is_protected_but_the_principal_home_is_not() {
    let (_d, astrid, user) = setup();
    let set =
        ProtectedSet::new(&astrid, Some(&user)).exempting(&astrid.join("principals/default/home"));
    let state = Some(Protection::AstridState {
        root: astrid.clone(),
    });
    assert_eq!(
        set.classify(&astrid.join("keys/runtime.key"), Extent::Path),
        state
    );
    assert_eq!(set.classify(&astrid, Extent::Path), state);
    assert_eq!(
        set.classify(
            &astrid.join("principals/default/store.sqlite"),
            Extent::Path
        ),
        state
    );
    assert_eq!(
        set.classify(&astrid.join("principals/default/home/notes"), Extent::Path),
        None
    );
    // Removing or renaming a directory that holds the home takes the home with it.
    assert_eq!(set.classify(astrid.parent().unwrap(), Extent::Path), None);
    assert_eq!(set.classify(astrid.parent().unwrap(), Extent::Tree), state);
}

#[test]
fn a_symlinked_astrid_home_is_protected_under_both_names() {
    let (_d, astrid, user) = setup();
    let link = user.join("astrid-link");
    symlink(&astrid, &link).unwrap();
    let set = ProtectedSet::new(&link, None);
    assert_eq!(set.astrid_home(), Some(astrid.as_path()));
    for p in [
        link.join("keys/secrets.key"),
        astrid.join("keys/secrets.key"),
    ] {
        assert!(
            matches!(
                set.classify(&p, Extent::Path),
                Some(Protection::AstridState { .. })
            ),
            "{p:?}"
        );
    }
}

#[test]
fn credentials_are_classified_with_their_location() {
    let (_d, astrid, user) = setup();
    let set = ProtectedSet::new(&astrid, Some(&user));
    let ssh = Some(Protection::Credential {
        location: user.join(".ssh"),
    });
    assert_eq!(
        set.classify(&user.join(".ssh/id_ed25519"), Extent::Path),
        ssh
    );
    assert_eq!(set.classify(&user.join(".sshx"), Extent::Path), None);
    assert_eq!(set.classify(&user.join("notes.txt"), Extent::Path), None);
    assert!(set.classify(&user, Extent::Tree).is_some());
    assert!(set.credential_locations().any(|l| l == user.join(".aws")));
}

#[test]
fn only_a_concrete_prefix_names_a_credential_location() {
    let ssh = Path::new("/h/.ssh");
    assert!(concretely_names(Path::new("/h/.ssh/id_ed25519"), ssh));
    assert!(concretely_names(Path::new("/h/.ssh"), ssh));
    assert!(!concretely_names(Path::new("/h"), ssh));
    assert!(!concretely_names(Path::new("/"), ssh));
}
