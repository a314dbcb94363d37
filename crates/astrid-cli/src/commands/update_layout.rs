//! The release install on disk, and the moves `astrid update` makes in it:
//!
//! ```text
//! ROOT/versions/0.2.0/{astrid, astrid-daemon, astrid-gateway, astrid-emit, astrid-netfwd}
//! ROOT/current -> versions/0.2.0          the release in use: one symlink
//! ROOT/bin/astrid -> ../current/astrid    (each of them; what goes on PATH)
//! ROOT/update.toml                        only while an update is between swap and done
//! ```
//!
//! Why a symlink swap: replacing five files one by one is five moments in which the
//! binaries disagree; renaming one symlink over another is a single atomic step that swaps
//! all five, and swapping back is the same step. A new release is unpacked and tried in a
//! staging directory first and appears under `versions/` by one rename, so `versions/V`
//! either holds all five checked binaries or does not exist.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use astrid_registry::channel::BINARIES;
use semver::Version;
use serde::{Deserialize, Serialize};

const VERSIONS: &str = "versions";
const CURRENT: &str = "current";
const BIN: &str = "bin";
const JOURNAL: &str = "update.toml";
const LOCK: &str = "update.lock";
/// How long `--version` of a staged binary may take.
const SMOKE_TIMEOUT: Duration = Duration::from_secs(20);

/// What an update in progress writes before it swaps, so one killed midway can be undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    pub from: Version,
    pub to: Version,
}

pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn at(root: &Path) -> Layout {
        // Absolute, so the daemon's recorded executable path and ours compare.
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        Layout { root }
    }

    /// The install the running executable belongs to (`ROOT/versions/V/astrid`, with
    /// `ROOT/current`), if it is one.
    pub fn of_running_exe() -> Option<Layout> {
        let exe = std::env::current_exe().ok()?.canonicalize().ok()?;
        let version_dir = exe.parent()?;
        version_dir.file_name()?.to_str()?.parse::<Version>().ok()?;
        let versions = version_dir.parent()?;
        if versions.file_name()? != VERSIONS {
            return None;
        }
        let root = versions.parent()?;
        root.join(CURRENT)
            .symlink_metadata()
            .ok()
            .filter(|m| m.file_type().is_symlink())?;
        Some(Layout {
            root: root.to_path_buf(),
        })
    }

    pub fn version_dir(&self, v: &Version) -> PathBuf {
        self.root.join(VERSIONS).join(v.to_string())
    }

    /// The daemon executable through `current`, as the next start resolves it.
    pub fn current_daemon(&self) -> PathBuf {
        self.root.join(CURRENT).join("astrid-daemon")
    }

    /// The release `current` points at; None for a root with no release yet.
    pub fn current(&self) -> anyhow::Result<Option<Version>> {
        let link = self.root.join(CURRENT);
        let target = match std::fs::read_link(&link) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", link.display())),
        };
        let version = target
            .strip_prefix(VERSIONS)
            .ok()
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<Version>().ok())
            .with_context(|| {
                format!(
                    "{} points at {}, not at {VERSIONS}/VERSION: not a release install",
                    link.display(),
                    target.display()
                )
            })?;
        if !self.version_dir(&version).is_dir() {
            bail!(
                "{} points at {}, which does not exist",
                link.display(),
                target.display()
            );
        }
        Ok(Some(version))
    }

    /// Holds the install against a second `astrid update` until dropped.
    pub fn lock(&self) -> anyhow::Result<std::fs::File> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("creating {}", self.root.display()))?;
        let path = self.root.join(LOCK);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "another astrid update is running on {} (it holds {})",
                self.root.display(),
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
    }

    /// Unpacks `archive` as release `v`: into a staging directory, each binary run with
    /// `--version` (it must start and print its name and `v`), then renamed to `versions/V`.
    /// A `versions/V` left by an earlier, interrupted attempt is replaced; the one in use never.
    pub fn stage(&self, v: &Version, archive: &[u8], what: &Path) -> anyhow::Result<PathBuf> {
        if self.current()?.as_ref() == Some(v) {
            bail!("astrid {v} is the release in use; it is not replaced");
        }
        let versions = self.root.join(VERSIONS);
        std::fs::create_dir_all(&versions)
            .with_context(|| format!("creating {}", versions.display()))?;
        let staging = tempfile::Builder::new()
            .prefix(&format!(".staging-{v}-"))
            .tempdir_in(&self.root)
            .with_context(|| format!("creating a staging directory in {}", self.root.display()))?;
        astrid_registry::release_archive::unpack(archive, staging.path(), what)?;
        for bin in BINARIES {
            smoke(&staging.path().join(bin), bin, v)
                .with_context(|| format!("astrid {v}: {bin} does not run here: refused"))?;
        }
        let dest = self.version_dir(v);
        if dest.exists() {
            std::fs::remove_dir_all(&dest)
                .with_context(|| format!("removing the stale {}", dest.display()))?;
        }
        let staged = staging.keep();
        std::fs::rename(&staged, &dest)
            .with_context(|| format!("moving {} to {}", staged.display(), dest.display()))?;
        sync_dir(&versions)?;
        Ok(dest)
    }

    /// Points `current` at `v` in one rename, and makes sure the `bin/` links exist.
    pub fn point_current(&self, v: &Version) -> anyhow::Result<()> {
        let tmp = self
            .root
            .join(format!(".{CURRENT}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let target = Path::new(VERSIONS).join(v.to_string());
        std::os::unix::fs::symlink(&target, &tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        std::fs::rename(&tmp, self.root.join(CURRENT))
            .with_context(|| format!("swapping {}", self.root.join(CURRENT).display()))?;
        sync_dir(&self.root)?;
        let bin = self.root.join(BIN);
        std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
        for name in BINARIES {
            let link = bin.join(name);
            if link.symlink_metadata().is_err() {
                std::os::unix::fs::symlink(Path::new("..").join(CURRENT).join(name), &link)
                    .with_context(|| format!("creating {}", link.display()))?;
            }
        }
        Ok(())
    }

    pub fn journal(&self) -> anyhow::Result<Option<Journal>> {
        let path = self.root.join(JOURNAL);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(toml::from_str(&text).with_context(|| {
                format!("{}: not an update record", path.display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn write_journal(&self, j: &Journal) -> anyhow::Result<()> {
        let text = toml::to_string(j).context("rendering the update record")?;
        astrid_shuttle::write_atomic(&self.root.join(JOURNAL), text.as_bytes())?;
        Ok(())
    }

    pub fn clear_journal(&self) -> anyhow::Result<()> {
        let path = self.root.join(JOURNAL);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.root),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }

    /// Removes every release but `keep`, and staging directories left by killed updates.
    /// A daemon of another home may still run a removed release: its executable stays
    /// valid until it exits.
    pub fn prune(&self, keep: &[&Version]) {
        let keep: Vec<String> = keep.iter().map(|v| v.to_string()).collect();
        if let Ok(entries) = std::fs::read_dir(self.root.join(VERSIONS)) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !keep.contains(&name) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(".staging-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }

    /// The release a running process's executable belongs to, if it is one of this install's.
    pub fn release_of_pid(&self, pid: u32) -> Option<Version> {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        let versions = self.root.join(VERSIONS).canonicalize().ok()?;
        let rest = exe.strip_prefix(&versions).ok()?;
        rest.components().next()?.as_os_str().to_str()?.parse().ok()
    }
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// Runs `exe --version`; it must exit 0 within the timeout and print `NAME VERSION`: a
/// binary that does not start here, or that is not the version the channel signed, is refused.
fn smoke(exe: &Path, name: &str, version: &Version) -> anyhow::Result<()> {
    #[expect(
        clippy::disallowed_methods,
        reason = "trying a staged release binary before it replaces the running one"
    )]
    let mut child = std::process::Command::new(exe)
        .arg("--version")
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let deadline = Instant::now() + SMOKE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "`{} --version` did not finish in {SMOKE_TIMEOUT:?}",
                exe.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read;
        let _ = stdout.read_to_string(&mut out);
    }
    if !status.success() {
        bail!("`{} --version` exited with {status}", exe.display());
    }
    let expected = format!("{name} {version}");
    if out.trim() != expected {
        bail!(
            "`{} --version` printed {:?}, not {expected:?}",
            exe.display(),
            out.trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn current_swaps_in_one_step_and_bin_links_follow() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::at(dir.path());
        assert_eq!(layout.current().unwrap(), None);
        for ver in ["0.1.0", "0.2.0"] {
            let d = layout.version_dir(&v(ver));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("astrid"), ver).unwrap();
        }
        layout.point_current(&v("0.1.0")).unwrap();
        let through_bin = || std::fs::read_to_string(dir.path().join("bin/astrid")).unwrap();
        assert_eq!(through_bin(), "0.1.0");
        layout.point_current(&v("0.2.0")).unwrap();
        assert_eq!(layout.current().unwrap(), Some(v("0.2.0")));
        assert_eq!(through_bin(), "0.2.0");
        // A journal round-trips and clears.
        let j = Journal {
            from: v("0.1.0"),
            to: v("0.2.0"),
        };
        layout.write_journal(&j).unwrap();
        assert_eq!(layout.journal().unwrap(), Some(j));
        layout.clear_journal().unwrap();
        assert_eq!(layout.journal().unwrap(), None);
        // Pruning keeps what it is told to.
        layout.prune(&[&v("0.2.0")]);
        assert!(!layout.version_dir(&v("0.1.0")).exists());
        assert!(layout.version_dir(&v("0.2.0")).exists());
        // A second updater is turned away while the first holds the lock.
        let _held = layout.lock().unwrap();
        let err = layout.lock().unwrap_err().to_string();
        assert!(err.contains("another astrid update"), "{err}");
    }

    #[test]
    fn a_current_that_is_not_a_release_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/usr/bin", dir.path().join(CURRENT)).unwrap();
        let err = Layout::at(dir.path()).current().unwrap_err().to_string();
        assert!(err.contains("not a release install"), "{err}");
    }
}
