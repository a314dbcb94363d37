//! The distro: a directory with a `Distro.toml`, its `*.capsule` packages and usually its
//! `Distro.lock`, which `astrid init` and `astrid distro install` check, pin and install.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use astrid_client::Client;
use astrid_shuttle::{Bundle, TrustStore, TRUST_FILE};
use astrid_types::home::AstridHome;
use astrid_types::wire::{CapsuleInfo, ControlCommand, ControlResponse, LifecycleState};

use super::capsule::upload;
use super::distro_resolve::Resolved;
use super::unexpected;
use crate::output::short_hash;

/// Where the distro was found, for telling the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Offline,
    Registry,
    Env,
    BesideExe,
    WorkDir,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Source::Flag => "from --distro",
            Source::Offline => "a signed bundle, from --offline",
            Source::Registry => "a signed bundle, from the registry",
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
    // A file is a .shuttle bundle; `open` says so if it is not one.
    if dir.is_dir() || dir.is_file() {
        Ok((dir, source))
    } else {
        bail!(
            "distro directory {} ({}) does not exist",
            dir.display(),
            source.describe()
        )
    }
}

/// A distro directory ready to check: the directory given, or a verified bundle's contents
/// in a private staging directory (removed when this is dropped).
pub struct Opened {
    pub dir: PathBuf,
    /// Who signed it, for a bundle.
    pub signer: Option<String>,
    /// The bundle it came from, if it did.
    bundle: Option<PathBuf>,
    _staging: Option<tempfile::TempDir>,
}

impl Opened {
    /// [`super::distro_resolve::resolve`], naming the bundle in errors (the staging directory's
    /// paths mean nothing to the operator). Blocking.
    pub fn resolve(&self) -> anyhow::Result<Resolved> {
        let resolved = super::distro_resolve::resolve(&self.dir);
        match &self.bundle {
            Some(b) => resolved.with_context(|| {
                format!(
                    "the bundle {} is signed, but its contents are not what the signed lock pins",
                    b.display()
                )
            }),
            None => resolved,
        }
    }
}

/// Opens `path`: a directory as it is; a file as a `.shuttle` bundle, whose shape, signature
/// and publisher (trusted in `home`) are checked before a byte of it is written anywhere.
/// Blocking: it reads the whole bundle.
pub fn open(path: &Path, home: &AstridHome) -> anyhow::Result<Opened> {
    if path.is_dir() {
        return Ok(Opened {
            dir: path.to_path_buf(),
            signer: None,
            bundle: None,
            _staging: None,
        });
    }
    let bundle = Bundle::read(path)?;
    bundle.verify()?;
    let trust = TrustStore::load(&home.root().join(TRUST_FILE))?;
    let who = trust.check(&bundle)?;
    let signer = format!("{} (key {})", who.name, bundle.publisher.key_id());
    let staging = tempfile::Builder::new()
        .prefix("astrid-shuttle-")
        .tempdir()
        .context("creating a staging directory for the bundle")?;
    bundle.extract(staging.path())?;
    Ok(Opened {
        dir: staging.path().to_path_buf(),
        signer: Some(signer),
        bundle: Some(path.to_path_buf()),
        _staging: Some(staging),
    })
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
        // Installed but not running (refused at boot by a lock since replaced, or broken):
        // installing the bytes again loads them anew.
        Some(c) if c.state == LifecycleState::Failed => Action::Update,
        Some(c) if c.hash.eq_ignore_ascii_case(hash) => Action::Unchanged,
        Some(_) => Action::Update,
    }
}

/// Checks the distro (see [`super::distro_resolve`]) and has the daemon install it as one
/// change: its lock pinned, every capsule installed as the lock pins it, all or nothing.
pub async fn install(client: &Client, opened: Opened) -> anyhow::Result<Resolved> {
    let spinner = crate::progress::spinner("checking the distro");
    let resolved = tokio::task::spawn_blocking(move || opened.resolve()).await;
    spinner.finish_and_clear();
    let mut resolved = resolved??;
    outln!(
        "  distro    {} {} ({}, {} capsules)",
        resolved.manifest.distro.name,
        resolved.manifest.distro.version,
        if resolved.shipped_lock {
            "every package matches its Distro.lock"
        } else {
            "no Distro.lock shipped: pinning the packages found"
        },
        resolved.packages.len()
    );
    let installed = match client.control(ControlCommand::List).await? {
        ControlResponse::Capsules(c) => c,
        other => return Err(unexpected(other)),
    };
    // Every package travels: the daemon checks each against the lock and leaves what already
    // runs exactly so alone (its check includes the manifest, which the list does not show).
    let mut lines = Vec::new();
    let mut uploads = Vec::new();
    for package in std::mem::take(&mut resolved.packages) {
        let name = package.manifest.package.name.to_string();
        let version = package.manifest.package.version.to_string();
        let hash = package.hash.to_string();
        let current = installed.iter().find(|c| c.name == name);
        let verb = match action(current, &hash) {
            Action::Unchanged => "unchanged",
            Action::Install => "installed",
            Action::Update => "updated",
        };
        uploads.push(upload(package));
        lines.push(format!(
            "  {verb:<9} {name} {version} ({})",
            short_hash(&hash)
        ));
    }
    let spinner = crate::progress::spinner(format!(
        "installing {} capsules as one change (the daemon compiles what changed)",
        uploads.len()
    ));
    let answer = client
        .control(ControlCommand::DistroInstall {
            lock: resolved.lock.clone(),
            packages: uploads,
        })
        .await;
    spinner.finish_and_clear();
    match answer {
        Ok(ControlResponse::Capsules(done)) => {
            for info in done {
                if let Some(err) = info.error {
                    outln!("  warning: {} is {}: {err}", info.name, info.state);
                }
            }
        }
        Ok(other) => return Err(unexpected(other)),
        Err(e) => bail!("installing the distro: {e}"),
    }
    for line in lines {
        outln!("{line}");
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let failed = CapsuleInfo {
            state: LifecycleState::Failed,
            ..info("blake3:aa")
        };
        assert_eq!(action(Some(&failed), "blake3:aa"), Action::Update);
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
