//! From a distro directory to what will be installed: `Distro.toml` says which capsules at
//! which versions, the `.capsule` packages beside it provide them, and `Distro.lock` (when
//! the distro ships one) says which exact artifacts. Everything is checked before anything is
//! installed, so a distro that does not match its lock installs nothing.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use astrid_build::LoadedPackage;
use astrid_types::distro::{
    DistroLock, DistroManifest, LockedCapsule, LOCK_FILE, MANIFEST_FILE, MAX_FILE_BYTES,
};
use astrid_types::ArtifactHash;

/// A distro checked and ready to install.
pub struct Resolved {
    pub manifest: DistroManifest,
    /// The packages, in `Distro.toml` order.
    pub packages: Vec<LoadedPackage>,
    /// The lock to pin: the distro's own, or one made from its packages.
    pub lock: DistroLock,
    /// Whether the distro shipped the lock (else it was made here).
    pub shipped_lock: bool,
}

/// What one package is, for matching without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    pub version: semver::Version,
    pub hash: ArtifactHash,
    /// BLAKE3 of the package's `Capsule.toml` text.
    pub manifest: ArtifactHash,
    pub file: PathBuf,
}

impl Found {
    fn of(package: &LoadedPackage, file: &Path) -> Self {
        Found {
            name: package.manifest.package.name.to_string(),
            version: package.manifest.package.version.clone(),
            hash: package.hash,
            manifest: ArtifactHash::of(package.manifest_text.as_bytes()),
            file: file.to_path_buf(),
        }
    }
}

/// Reads `dir`'s `Distro.toml`, its packages and its lock, and checks them against each
/// other. Blocking: it reads and hashes every component.
pub fn resolve(dir: &Path) -> anyhow::Result<Resolved> {
    resolve_with(dir, true)
}

/// The lock of `dir`'s packages as they are now, whatever `Distro.lock` says: what a
/// publisher writes after changing a package.
pub fn lock_packages(dir: &Path) -> anyhow::Result<DistroLock> {
    resolve_with(dir, false).map(|r| r.lock)
}

fn resolve_with(dir: &Path, use_shipped: bool) -> anyhow::Result<Resolved> {
    let manifest_path = dir.join(MANIFEST_FILE);
    if !manifest_path.is_file() {
        bail!(
            "{} has no {MANIFEST_FILE}: a distro names its capsules and their versions there \
             (see docs/DISTROS.md)",
            dir.display()
        );
    }
    let manifest_text = read_small(&manifest_path)?;
    let manifest = DistroManifest::parse(&manifest_text, &manifest_path)?;
    let mut loaded = Vec::new();
    for path in super::distro::packages(dir)? {
        let package = astrid_build::load_package(&path)
            .with_context(|| format!("loading {}", path.display()))?;
        let found = Found::of(&package, &path);
        loaded.push((found, package));
    }
    let found: Vec<Found> = loaded.iter().map(|(f, _)| f.clone()).collect();
    let lock_path = dir.join(LOCK_FILE);
    let shipped = if use_shipped && lock_path.exists() {
        Some(DistroLock::parse(&read_small(&lock_path)?, &lock_path)?)
    } else {
        None
    };
    let manifest_hash = ArtifactHash::of(manifest_text.as_bytes());
    let order = match_packages(&manifest, manifest_hash, &found, shipped.as_ref())?;
    let lock = match &shipped {
        Some(lock) => lock.clone(),
        None => lock_of(&manifest, manifest_hash, &order, &found),
    };
    let mut slots: Vec<Option<LoadedPackage>> = loaded.into_iter().map(|(_, p)| Some(p)).collect();
    let packages = order
        .iter()
        .map(|&i| slots[i].take().expect("each package is used once"))
        .collect();
    Ok(Resolved {
        manifest,
        packages,
        lock,
        shipped_lock: shipped.is_some(),
    })
}

fn read_small(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() > MAX_FILE_BYTES {
        bail!("{}: {} bytes is too large", path.display(), bytes.len());
    }
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))
}

/// Checks the packages against `Distro.toml` (each capsule present once, at a version its
/// requirement accepts, nothing extra) and against the shipped lock (made for this
/// `Distro.toml`, pinning exactly these capsules, each package the pinned artifact). Returns
/// the index into `found` of each capsule, in `Distro.toml` order.
pub fn match_packages(
    manifest: &DistroManifest,
    manifest_hash: ArtifactHash,
    found: &[Found],
    shipped: Option<&DistroLock>,
) -> anyhow::Result<Vec<usize>> {
    for (i, f) in found.iter().enumerate() {
        if let Some(other) = found[..i].iter().find(|o| o.name == f.name) {
            bail!(
                "capsule `{}` is in the distro twice: {} and {}",
                f.name,
                other.file.display(),
                f.file.display()
            );
        }
        if !manifest.capsules.iter().any(|c| c.name.as_ref() == f.name) {
            bail!(
                "{} holds capsule `{}`, which {MANIFEST_FILE} does not list",
                f.file.display(),
                f.name
            );
        }
    }
    let mut order = Vec::new();
    for want in &manifest.capsules {
        let Some(i) = found.iter().position(|f| f.name == want.name.as_ref()) else {
            bail!(
                "{MANIFEST_FILE} lists capsule `{}` ({}), but no package provides it",
                want.name,
                want.version
            );
        };
        if !want.version.matches(&found[i].version) {
            bail!(
                "capsule `{}` is version {} ({}), which {MANIFEST_FILE}'s requirement `{}` does \
                 not accept",
                want.name,
                found[i].version,
                found[i].file.display(),
                want.version
            );
        }
        order.push(i);
    }
    if let Some(lock) = shipped {
        if lock.manifest != manifest_hash {
            bail!(
                "{LOCK_FILE} was made for another {MANIFEST_FILE} (it pins {}, this one is {})",
                lock.manifest,
                manifest_hash
            );
        }
        if lock.name != manifest.distro.name || lock.version != manifest.distro.version {
            bail!(
                "{LOCK_FILE} is for distro {} {}, {MANIFEST_FILE} says {} {}",
                lock.name,
                lock.version,
                manifest.distro.name,
                manifest.distro.version
            );
        }
        for f in found {
            match lock.pin(&f.name) {
                None => bail!("{LOCK_FILE} does not pin capsule `{}`", f.name),
                Some(pin) if pin.hash != f.hash || pin.version != f.version => bail!(
                    "capsule `{}`: {} is {} {}, but {LOCK_FILE} pins {} {}",
                    f.name,
                    f.file.display(),
                    f.version,
                    f.hash,
                    pin.version,
                    pin.hash
                ),
                Some(pin) if pin.manifest != f.manifest => bail!(
                    "capsule `{}`: the Capsule.toml in {} is {}, but {LOCK_FILE} pins {} (the \
                     manifest declares the capsule's capabilities)",
                    f.name,
                    f.file.display(),
                    f.manifest,
                    pin.manifest
                ),
                Some(_) => {}
            }
        }
        if let Some(extra) = lock
            .capsules
            .iter()
            .find(|c| !found.iter().any(|f| f.name == c.name.as_ref()))
        {
            bail!(
                "{LOCK_FILE} pins capsule `{}`, which the distro does not have",
                extra.name
            );
        }
    }
    Ok(order)
}

/// The lock of exactly these packages.
pub fn lock_of(
    manifest: &DistroManifest,
    manifest_hash: ArtifactHash,
    order: &[usize],
    found: &[Found],
) -> DistroLock {
    let mut capsules: Vec<LockedCapsule> = order
        .iter()
        .map(|&i| LockedCapsule {
            name: found[i]
                .name
                .parse()
                .expect("a loaded manifest's name is valid"),
            version: found[i].version.clone(),
            hash: found[i].hash,
            manifest: found[i].manifest,
        })
        .collect();
    capsules.sort_by(|a, b| a.name.cmp(&b.name));
    DistroLock {
        name: manifest.distro.name.clone(),
        version: manifest.distro.version.clone(),
        manifest: manifest_hash,
        capsules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use semver::Version;

    const TOML: &str = "[distro]\nname = \"d\"\nversion = \"1.0.0\"\n\n[[capsule]]\nname = \
                        \"session\"\nversion = \"^0.1\"\n\n[[capsule]]\nname = \"agent\"\nversion \
                        = \"^0.1\"\n";

    fn manifest() -> (DistroManifest, ArtifactHash) {
        (
            DistroManifest::parse(TOML, Path::new("Distro.toml")).unwrap(),
            ArtifactHash::of(TOML.as_bytes()),
        )
    }

    fn found(name: &str, version: &str, bytes: &[u8]) -> Found {
        Found {
            name: name.into(),
            version: version.parse().unwrap(),
            hash: ArtifactHash::of(bytes),
            manifest: ArtifactHash::of(name.as_bytes()),
            file: PathBuf::from(format!("/d/{name}.capsule")),
        }
    }

    fn packages() -> Vec<Found> {
        vec![
            found("agent", "0.1.0", b"a"),
            found("session", "0.1.2", b"s"),
        ]
    }

    #[test]
    fn packages_install_in_manifest_order_and_lock_sorted() {
        let (m, h) = manifest();
        let order = match_packages(&m, h, &packages(), None).unwrap();
        assert_eq!(order, [1, 0]);
        let lock = lock_of(&m, h, &order, &packages());
        assert_eq!(lock.capsules[0].name.as_ref(), "agent");
        assert_eq!(lock.capsules[1].version, Version::new(0, 1, 2));
        assert_eq!(lock.manifest, h);
        lock.validate().unwrap();
        // The lock made here is accepted as the shipped lock of the same distro.
        match_packages(&m, h, &packages(), Some(&lock)).unwrap();
    }

    #[test]
    fn missing_extra_twice_or_wrong_version_is_refused() {
        let (m, h) = manifest();
        let err = |found: &[Found]| match_packages(&m, h, found, None).unwrap_err().to_string();
        let e = err(&packages()[..1]);
        assert!(e.contains("`session`") && e.contains("no package"), "{e}");
        let mut extra = packages();
        extra.push(found("echo", "0.1.0", b"e"));
        assert!(err(&extra).contains("does not list"));
        let mut twice = packages();
        twice.push(found("agent", "0.1.0", b"a2"));
        assert!(err(&twice).contains("twice"));
        let mut old = packages();
        old[1] = found("session", "0.2.0", b"s");
        let e = err(&old);
        assert!(e.contains("0.2.0") && e.contains("^0.1"), "{e}");
    }

    #[test]
    fn a_package_that_is_not_the_locked_artifact_is_refused_naming_both_hashes() {
        let (m, h) = manifest();
        let lock = lock_of(&m, h, &[1, 0], &packages());
        let mut swapped = packages();
        swapped[1] = found("session", "0.1.2", b"evil");
        let e = match_packages(&m, h, &swapped, Some(&lock))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&ArtifactHash::of(b"evil").to_string())
                && e.contains(&ArtifactHash::of(b"s").to_string()),
            "{e}"
        );
        // The same component with another Capsule.toml (other capabilities) is refused.
        let mut widened = packages();
        widened[0].manifest = ArtifactHash::of(b"agent with net");
        let e = match_packages(&m, h, &widened, Some(&lock))
            .unwrap_err()
            .to_string();
        assert!(e.contains("the Capsule.toml in"), "{e}");
        // A lock for another Distro.toml, or missing a capsule, is refused too.
        let other = ArtifactHash::of(b"another manifest");
        let e = match_packages(&m, other, &packages(), Some(&lock))
            .unwrap_err()
            .to_string();
        assert!(e.contains("another Distro.toml"), "{e}");
        let mut short = lock.clone();
        short.capsules.remove(0);
        let e = match_packages(&m, h, &packages(), Some(&short))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not pin capsule `agent`"), "{e}");
    }
}
