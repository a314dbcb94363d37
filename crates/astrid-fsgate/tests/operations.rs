//! Normal use of the gate on a real filesystem.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use astrid_fsgate::{Access, DirEntryInfo, FileKind, FsGateError, FsRoots};

fn p(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

/// A home directory with `~/work` writable and `~/data` readable.
fn setup() -> (tempfile::TempDir, PathBuf, FsRoots) {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().canonicalize().unwrap();
    fs::create_dir_all(home.join("work")).unwrap();
    fs::create_dir_all(home.join("data")).unwrap();
    fs::write(home.join("data/in.txt"), b"input").unwrap();
    let gate = FsRoots::new(&home, &["~/data".into()], &["~/work/".into()]).unwrap();
    (tmp, home, gate)
}

#[test]
fn write_read_append_round_trip() {
    let (_tmp, home, gate) = setup();
    gate.write("~/work/a.txt", b"hello").unwrap();
    assert_eq!(gate.read("~/work/a.txt", 100).unwrap(), b"hello");
    gate.append("~/work/a.txt", b" world").unwrap();
    assert_eq!(fs::read(home.join("work/a.txt")).unwrap(), b"hello world");
    // Write truncates.
    gate.write("~/work/a.txt", b"hi").unwrap();
    assert_eq!(gate.read("~/work/a.txt", 100).unwrap(), b"hi");
    // Append creates.
    gate.append("~/work/b.txt", b"new").unwrap();
    assert_eq!(gate.read("~/work/./b.txt", 100).unwrap(), b"new");
    // Home-relative and absolute spellings reach the same file.
    let abs = p(&home.join("work/a.txt"));
    assert_eq!(gate.read(&abs, 100).unwrap(), b"hi");
    assert_eq!(gate.read("~/data/in.txt", 100).unwrap(), b"input");
}

#[test]
fn read_enforces_max_bytes_and_reports_kinds() {
    let (_tmp, _home, gate) = setup();
    gate.write("~/work/big", &[7u8; 10]).unwrap();
    assert_eq!(gate.read("~/work/big", 10).unwrap().len(), 10);
    assert!(
        matches!(gate.read("~/work/big", 9), Err(FsGateError::TooLarge(m)) if m.contains("~/work/big"))
    );
    assert!(
        matches!(gate.read("~/work/missing", 9), Err(FsGateError::NotFound(m)) if m == "~/work/missing")
    );
    assert!(matches!(
        gate.read("~/work", 9),
        Err(FsGateError::IsADirectory(_))
    ));
    assert!(matches!(
        gate.write("~/work", b"x"),
        Err(FsGateError::IsADirectory(_))
    ));
    assert!(matches!(
        gate.list_dir("~/work/big"),
        Err(FsGateError::NotADirectory(_))
    ));
    assert!(matches!(
        gate.read("~/work/big/x", 9),
        Err(FsGateError::NotADirectory(_))
    ));
    assert!(matches!(
        gate.write("~/work/nodir/x", b"x"),
        Err(FsGateError::NotFound(_))
    ));
}

#[test]
fn list_dir_is_sorted_with_kinds() {
    let (_tmp, home, gate) = setup();
    gate.write("~/work/b.txt", b"b").unwrap();
    gate.mkdir("~/work/a", false).unwrap();
    symlink("b.txt", home.join("work/c")).unwrap();
    let entries = gate.list_dir("~/work").unwrap();
    let expect = |name: &str, kind| DirEntryInfo {
        name: name.into(),
        kind,
    };
    assert_eq!(
        entries,
        vec![
            expect("a", FileKind::Directory),
            expect("b.txt", FileKind::File),
            expect("c", FileKind::Symlink),
        ]
    );
    // A relative symlink that stays inside the root is followed.
    assert_eq!(gate.read("~/work/c", 10).unwrap(), b"b");
}

#[test]
fn stat_reports_kind_size_time_and_writability() {
    let (_tmp, home, gate) = setup();
    gate.write("~/work/f", b"12345").unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let m = gate.stat("~/work/f").unwrap();
    assert_eq!((m.kind, m.size, m.readonly), (FileKind::File, 5, false));
    assert!(m.modified_ms > 0 && m.modified_ms <= before + 1000);
    assert_eq!(gate.stat("~/work").unwrap().kind, FileKind::Directory);
    symlink("f", home.join("work/l")).unwrap();
    assert_eq!(gate.stat("~/work/l").unwrap().kind, FileKind::Symlink);
    // The data root is granted for read only.
    assert!(gate.stat("~/data/in.txt").unwrap().readonly);
}

#[test]
fn mkdir_and_remove() {
    let (_tmp, home, gate) = setup();
    gate.mkdir("~/work/x/y/z", true).unwrap();
    assert!(home.join("work/x/y/z").is_dir());
    gate.mkdir("~/work/x/y/z", true).unwrap();
    assert!(matches!(
        gate.mkdir("~/work/x", false),
        Err(FsGateError::AlreadyExists(_))
    ));
    assert!(matches!(
        gate.mkdir("~/work/q/r", false),
        Err(FsGateError::NotFound(_))
    ));
    gate.write("~/work/file", b"f").unwrap();
    assert!(matches!(
        gate.mkdir("~/work/file", true),
        Err(FsGateError::AlreadyExists(_))
    ));

    gate.write("~/work/x/y/z/leaf.txt", b"leaf").unwrap();
    assert!(matches!(
        gate.remove("~/work/x", false),
        Err(FsGateError::InvalidArgument(m)) if m.contains("not empty")
    ));
    gate.remove("~/work/x", true).unwrap();
    assert!(!home.join("work/x").exists());
    gate.remove("~/work/file", false).unwrap();
    assert!(!home.join("work/file").exists());
    assert!(matches!(
        gate.remove("~/work/file", false),
        Err(FsGateError::NotFound(_))
    ));
    gate.mkdir("~/work/empty", false).unwrap();
    gate.remove("~/work/empty", false).unwrap();
    assert!(!home.join("work/empty").exists());
}

#[test]
fn remove_of_symlink_removes_only_the_link() {
    let (_tmp, home, gate) = setup();
    fs::create_dir(home.join("outside")).unwrap();
    fs::write(home.join("outside/keep"), b"k").unwrap();
    symlink("../outside", home.join("work/out")).unwrap();
    gate.remove("~/work/out", true).unwrap();
    assert!(!home.join("work/out").exists());
    assert_eq!(fs::read(home.join("outside/keep")).unwrap(), b"k");
}

#[test]
fn rename_within_and_across_roots() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().canonicalize().unwrap();
    fs::create_dir_all(home.join("a")).unwrap();
    fs::create_dir_all(home.join("b")).unwrap();
    let gate = FsRoots::new(&home, &[], &["~/a".into(), p(&home.join("b"))]).unwrap();
    gate.write("~/a/one", b"1").unwrap();
    gate.rename("~/a/one", "~/a/two").unwrap();
    assert!(!home.join("a/one").exists());
    gate.rename("~/a/two", "~/b/three").unwrap();
    assert_eq!(fs::read(home.join("b/three")).unwrap(), b"1");
    gate.mkdir("~/a/dir", false).unwrap();
    gate.rename("~/a/dir", "~/b/dir").unwrap();
    assert!(home.join("b/dir").is_dir());
    assert!(matches!(
        gate.rename("~/a/nope", "~/b/x"),
        Err(FsGateError::NotFound(_))
    ));
}

#[test]
fn longest_root_wins_and_missing_roots_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().canonicalize().unwrap();
    fs::create_dir_all(home.join("proj")).unwrap();
    let gate = FsRoots::new(&home, &["~/proj".into()], &["~/proj/out".into()]).unwrap();

    // The write root does not exist yet: nothing to write into, and not an error at setup.
    assert!(matches!(
        gate.write("~/proj/out/r.txt", b"x"),
        Err(FsGateError::NotFound(_))
    ));
    // Reads fall back to the enclosing read root.
    assert!(matches!(
        gate.read("~/proj/out/r.txt", 9),
        Err(FsGateError::NotFound(_))
    ));
    // Once created, the write root is picked up; its failed open was not cached.
    fs::create_dir(home.join("proj/out")).unwrap();
    gate.write("~/proj/out/r.txt", b"x").unwrap();
    assert_eq!(gate.read("~/proj/out/r.txt", 9).unwrap(), b"x");
    let r = gate.resolve("~/proj/out/r.txt", Access::Read).unwrap();
    assert_eq!(r.rel(), Path::new("r.txt"));
    // The parent is only readable.
    assert!(matches!(
        gate.write("~/proj/x", b"x"),
        Err(FsGateError::Denied(_))
    ));
}

#[test]
fn invalid_specs_and_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    for bad in ["relative", "/a/../b", "/a//b", "~x/y"] {
        assert!(
            matches!(
                FsRoots::new(home, &[bad.into()], &[]),
                Err(FsGateError::InvalidArgument(_))
            ),
            "{bad}"
        );
    }
    assert!(FsRoots::new(Path::new("rel/home"), &[], &[]).is_err());
    let gate = FsRoots::new(home, &["~".into()], &[]).unwrap();
    assert!(matches!(
        gate.read("", 1),
        Err(FsGateError::InvalidArgument(_))
    ));
    assert!(matches!(
        gate.read("x.txt", 1),
        Err(FsGateError::InvalidArgument(_))
    ));
    assert!(matches!(
        gate.read("~/a\0b", 1),
        Err(FsGateError::InvalidArgument(_))
    ));
}

#[test]
fn gate_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<FsRoots>();
    assert_send_sync::<astrid_fsgate::Resolved>();
    let (_tmp, _home, gate) = setup();
    let gate = std::sync::Arc::new(gate);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let g = std::sync::Arc::clone(&gate);
            std::thread::spawn(move || {
                let path = format!("~/work/t{i}");
                g.write(&path, path.as_bytes()).unwrap();
                assert_eq!(g.read(&path, 64).unwrap(), path.as_bytes());
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(gate.list_dir("~/work").unwrap().len(), 4);
}
