//! The distro: a directory of `*.capsule` packages that `astrid init` installs, and the
//! `Distro.lock` that pins what it installed by BLAKE3 hash.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use astrid_client::Client;
use astrid_types::wire::{CapsuleInfo, ControlCommand, ControlResponse};
use serde::{Deserialize, Serialize};

use super::capsule::upload;
use super::unexpected;
use crate::output::short_hash;

pub const LOCK_FILE: &str = "Distro.lock";

/// Where the distro was found, for telling the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    BesideExe,
    WorkDir,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Source::Flag => "from --distro",
            Source::Env => "from $ASTRID_DISTRO",
            Source::BesideExe => "installed beside the astrid executable",
            Source::WorkDir => "./dist/distro in the current directory",
        }
    }
}

/// `--distro`, else `$ASTRID_DISTRO`, else `<exe dir>/../share/astrid/distro`, else
/// `./dist/distro`. An explicitly named directory that does not exist is an error rather than
/// a reason to look elsewhere: the operator meant that one.
pub fn locate(
    flag: Option<&Path>,
    env: Option<OsString>,
    exe: Option<&Path>,
    cwd: &Path,
) -> anyhow::Result<(PathBuf, Source)> {
    if let Some(dir) = flag {
        return existing(dir.to_path_buf(), Source::Flag);
    }
    if let Some(dir) = env.filter(|e| !e.is_empty()) {
        return existing(PathBuf::from(dir), Source::Env);
    }
    let mut looked = Vec::new();
    if let Some(bin_dir) = exe.and_then(Path::parent) {
        let dir = bin_dir.join("../share/astrid/distro");
        if dir.is_dir() {
            return Ok((dir, Source::BesideExe));
        }
        looked.push(dir.display().to_string());
    }
    let dir = cwd.join("dist/distro");
    if dir.is_dir() {
        return Ok((dir, Source::WorkDir));
    }
    looked.push(dir.display().to_string());
    bail!(
        "no distro found (looked in {}); pass --distro DIR or set ASTRID_DISTRO to a directory \
         of .capsule packages",
        looked.join(", ")
    )
}

fn existing(dir: PathBuf, source: Source) -> anyhow::Result<(PathBuf, Source)> {
    if dir.is_dir() {
        Ok((dir, source))
    } else {
        bail!(
            "distro directory {} ({}) does not exist",
            dir.display(),
            source.describe()
        )
    }
}

/// The `*.capsule` files in `dir`, sorted by name so installs happen in a stable order.
pub fn packages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "capsule") {
            out.push(path);
        }
    }
    out.sort();
    if out.is_empty() {
        bail!("the distro {} holds no .capsule packages", dir.display());
    }
    Ok(out)
}

/// What to do with one package given what is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Install,
    Update,
    Unchanged,
}

pub fn action(installed: Option<&CapsuleInfo>, hash: &str) -> Action {
    match installed {
        None => Action::Install,
        Some(c) if c.hash.eq_ignore_ascii_case(hash) => Action::Unchanged,
        Some(_) => Action::Update,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockEntry {
    pub name: String,
    pub version: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistroLock {
    /// The directory the packages came from.
    pub distro: String,
    #[serde(rename = "capsule")]
    pub capsules: Vec<LockEntry>,
}

/// Writes the lock so that readers see either the old file or the new one, never a mix.
pub fn write_lock(path: &Path, lock: &DistroLock) -> anyhow::Result<()> {
    let body = toml::to_string(lock).map_err(|e| anyhow!("encoding {LOCK_FILE}: {e}"))?;
    let text = format!(
        "# Written by `astrid init`: the distro's capsules, pinned by BLAKE3 hash.\n{body}"
    );
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".{LOCK_FILE}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow!("writing {}: {e}", path.display())
    })
}

#[cfg(test)]
pub fn read_lock(path: &Path) -> anyhow::Result<DistroLock> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Installs every package of the distro, updating those whose hash differs and skipping
/// those already installed as they are. Returns the lock entries, in package order.
pub async fn install(client: &Client, dir: &Path) -> anyhow::Result<Vec<LockEntry>> {
    let installed = match client.control(ControlCommand::List).await? {
        ControlResponse::Capsules(c) => c,
        other => return Err(unexpected(other)),
    };
    let mut entries = Vec::new();
    let paths = packages(dir)?;
    let progress = crate::progress::steps(paths.len());
    let result = install_each(client, &installed, &paths, &progress, &mut entries).await;
    progress.finish_and_clear();
    result.map(|()| entries)
}

async fn install_each(
    client: &Client,
    installed: &[CapsuleInfo],
    paths: &[PathBuf],
    progress: &indicatif::ProgressBar,
    entries: &mut Vec<LockEntry>,
) -> anyhow::Result<()> {
    for path in paths {
        progress.set_message(
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        let p = path.clone();
        let package = tokio::task::spawn_blocking(move || astrid_build::load_package(&p))
            .await?
            .with_context(|| format!("loading {}", path.display()))?;
        let entry = LockEntry {
            name: package.manifest.package.name.to_string(),
            version: package.manifest.package.version.to_string(),
            hash: package.hash.to_string(),
        };
        let current = installed.iter().find(|c| c.name == entry.name);
        let (verb, command) = match action(current, &entry.hash) {
            Action::Unchanged => ("unchanged", None),
            Action::Install => ("installed", Some(ControlCommand::Install(upload(package)))),
            Action::Update => ("updated", Some(ControlCommand::Update(upload(package)))),
        };
        if let Some(command) = command {
            match client.control(command).await {
                Ok(ControlResponse::Installed(info)) => {
                    if let Some(err) = info.error {
                        progress.suspend(|| {
                            outln!("  warning: {} is {}: {err}", info.name, info.state)
                        });
                    }
                }
                Ok(other) => return Err(unexpected(other)),
                Err(e) => bail!("installing {}: {e}", path.display()),
            }
        }
        progress.suspend(|| {
            outln!(
                "  {verb:<9} {} {} ({})",
                entry.name,
                entry.version,
                short_hash(&entry.hash)
            )
        });
        progress.inc(1);
        entries.push(entry);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use astrid_types::wire::LifecycleState;

    fn info(hash: &str) -> CapsuleInfo {
        CapsuleInfo {
            hash: hash.into(),
            ..crate::test_support::capsule("agent", LifecycleState::Ready)
        }
    }

    #[test]
    fn install_update_or_skip_by_hash() {
        assert_eq!(action(None, "blake3:aa"), Action::Install);
        assert_eq!(
            action(Some(&info("blake3:aa")), "blake3:aa"),
            Action::Unchanged
        );
        assert_eq!(
            action(Some(&info("blake3:aa")), "blake3:bb"),
            Action::Update
        );
    }

    #[test]
    fn lock_is_written_atomically_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home").join(LOCK_FILE);
        let lock = DistroLock {
            distro: "/opt/distro".into(),
            capsules: vec![
                LockEntry {
                    name: "agent".into(),
                    version: "0.1.0".into(),
                    hash: format!("blake3:{}", "ab".repeat(32)),
                },
                LockEntry {
                    name: "session".into(),
                    version: "0.2.0".into(),
                    hash: format!("blake3:{}", "cd".repeat(32)),
                },
            ],
        };
        write_lock(&path, &lock).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Written by `astrid init`"), "{text}");
        assert_eq!(text.matches("[[capsule]]").count(), 2, "{text}");
        assert!(text.contains("name = \"session\""), "{text}");
        assert_eq!(read_lock(&path).unwrap(), lock);

        // Rewriting replaces the file and leaves no temporary behind.
        let smaller = DistroLock {
            capsules: lock.capsules[..1].to_vec(),
            ..lock.clone()
        };
        write_lock(&path, &smaller).unwrap();
        assert_eq!(read_lock(&path).unwrap(), smaller);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [LOCK_FILE]);
    }

    #[test]
    fn distro_is_located_in_order_and_missing_ones_are_named() {
        let root = tempfile::tempdir().unwrap();
        let flag = root.path().join("flagged");
        let env = root.path().join("env");
        let bin = root.path().join("prefix/bin");
        let share = root.path().join("prefix/share/astrid/distro");
        let cwd = root.path().join("work");
        for d in [&flag, &env, &bin, &share, &cwd.join("dist/distro")] {
            std::fs::create_dir_all(d).unwrap();
        }
        let exe = bin.join("astrid");
        let got = |f: Option<&Path>, e: Option<&Path>, x: Option<&Path>| {
            locate(f, e.map(|p| p.as_os_str().to_owned()), x, &cwd)
        };
        assert_eq!(
            got(Some(&flag), Some(&env), Some(&exe)).unwrap(),
            (flag.clone(), Source::Flag)
        );
        assert_eq!(
            got(None, Some(&env), Some(&exe)).unwrap(),
            (env.clone(), Source::Env)
        );
        let (dir, src) = got(None, None, Some(&exe)).unwrap();
        assert_eq!(
            (dir.canonicalize().unwrap(), src),
            (share.clone(), Source::BesideExe)
        );
        let (dir, src) = got(None, None, Some(&root.path().join("elsewhere/astrid"))).unwrap();
        assert_eq!((dir, src), (cwd.join("dist/distro"), Source::WorkDir));

        let missing = root.path().join("nope");
        let err = got(Some(&missing), None, None).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("--distro"), "{err}");
        let err = got(None, Some(&missing), None).unwrap_err().to_string();
        assert!(err.contains("ASTRID_DISTRO"), "{err}");
        std::fs::remove_dir_all(cwd.join("dist")).unwrap();
        let err = got(None, None, Some(&root.path().join("x/astrid")))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("no distro found") && err.contains("dist/distro"),
            "{err}"
        );
    }

    #[test]
    fn only_capsule_files_are_packages() {
        let dir = tempfile::tempdir().unwrap();
        assert!(packages(dir.path())
            .unwrap_err()
            .to_string()
            .contains("no .capsule"));
        for f in ["b.capsule", "a.capsule", "notes.txt"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("c.capsule")).unwrap();
        let names: Vec<_> = packages(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.capsule", "b.capsule"]);
    }
}
