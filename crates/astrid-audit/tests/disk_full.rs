//! A full disk under the chain: an append whose write fails (`ENOSPC`) is refused as
//! `NotWritten` and leaves the log byte for byte as it was; the log keeps taking entries once
//! space returns, with the next seq, and the chain verifies and reopens.
//!
//! Needs root (or CAP_SYS_ADMIN) to mount a tmpfs. Without it the test fails, saying so; it
//! does not skip. The same fault through a running daemon is
//! `crates/astrid-daemon/tests/disk_full.rs`.
#![allow(
    clippy::disallowed_methods,
    reason = "the test mounts and unmounts a tmpfs with mount(8)"
)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use astrid_audit::{verify, AuditError, AuditLog};
use common::{alice, entry, key};

const ENOSPC: i32 = 28;

/// A tmpfs over a directory, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Tmpfs {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
            .arg(dir)
            .output()
            .unwrap_or_else(|e| panic!("running mount(8): {e}"));
        assert!(
            out.status.success(),
            "this test needs to mount a tmpfs over {} (run it as root or with CAP_SYS_ADMIN); \
             mount said ({}): {}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = |lazy: bool| {
            let mut c = Command::new("umount");
            if lazy {
                c.arg("-l");
            }
            c.arg(&self.0).status().is_ok_and(|s| s.success())
        };
        if !ok(false) && !ok(true) {
            eprintln!("could not unmount the tmpfs at {}", self.0.display());
        }
    }
}

/// Takes every free block, and proves it with a one-block write that fails with `ENOSPC`.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    for chunk in [64 << 10, 4096, 1] {
        let buf = vec![0x5au8; chunk];
        loop {
            match f.write(&buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    let probe = path.with_extension("probe");
    let err = std::fs::write(&probe, vec![0u8; 4096]).expect_err("the filesystem is full");
    assert_eq!(err.raw_os_error(), Some(ENOSPC), "{err}");
    std::fs::remove_file(&probe).unwrap();
}

#[test]
fn a_failed_write_refuses_only_its_batch_and_the_log_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("fs");
    std::fs::create_dir(&mnt).unwrap();
    let _tmpfs = Tmpfs::mount(&mnt);
    let path = mnt.join("principals/alice/audit.log");
    let log = AuditLog::open(&path, alice(), key()).unwrap();
    // Both head slots are written before the disk fills.
    for i in 1..=3 {
        assert_eq!(log.append(entry(i)).unwrap(), i);
    }
    let filler = mnt.join("filler");
    fill(&filler);

    // Entries go into the last block's slack until one needs a block of its own.
    let mut n = 3;
    let (err, before) = loop {
        let before = std::fs::read(&path).unwrap();
        match log.append(entry(n + 1)) {
            Ok(seq) => {
                n += 1;
                assert_eq!(seq, n);
                assert!(
                    n < 100,
                    "100 entries fit on a full 1 MiB tmpfs; is it full?"
                );
            }
            Err(e) => break (e, before),
        }
    };
    assert!(
        matches!(&err, AuditError::NotWritten(io) if io.raw_os_error() == Some(ENOSPC)),
        "{err}"
    );
    assert!(err.to_string().contains("No space left on device"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "a refused append left bytes behind"
    );
    assert_eq!(log.last_seq(), n);
    // Still full: refused again, the same way (the log did not stop).
    let again = log.append(entry(n + 1)).unwrap_err();
    assert!(matches!(again, AuditError::NotWritten(_)), "{again}");

    std::fs::remove_file(&filler).unwrap();
    assert_eq!(log.append(entry(n + 1)).unwrap(), n + 1);
    drop(log);
    let report = verify(&path, key().public_key(), &alice()).unwrap();
    assert_eq!((report.entries, report.last_seq), (n + 1, n + 1));
    let log = AuditLog::open(&path, alice(), key()).unwrap();
    assert_eq!(log.append(entry(n + 2)).unwrap(), n + 2);
}
