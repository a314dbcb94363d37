//! The locations no capsule may touch, as one list shared by every layer that gates the
//! filesystem: the filesystem host calls (`astrid-fsgate`) and the subprocess sandbox
//! (`astrid-process`).
//!
//! Two kinds, with two rules:
//! - **Astrid's own state** (`$ASTRID_HOME`: keys, socket token, stores, audit logs, capsule
//!   artifacts, cache, config). Nothing opens it: not a manifest, not a token, not an
//!   approval. A capsule holding the runtime key could mint itself any token and re-sign
//!   history, so no answer to a prompt may hand it over.
//! - **The user's credentials** ([`CREDENTIAL_LOCATIONS`] under the operator's home). Not
//!   approvable: only a token the operator granted beforehand that names the location
//!   concretely opens one (see [`concretely_names`]).
//!
//! Checks compare resolved paths ([`resolve`]): a symlink, `..` after a symlink, or a
//! relative or symlinked `$ASTRID_HOME` all land on the same canonical path.

mod resolve;

pub use resolve::{resolve, resolve_entry};

use std::path::{Path, PathBuf};

/// Credential stores under the operator's home, relative to it. Directories cover
/// everything beneath them.
pub const CREDENTIAL_LOCATIONS: &[&str] = &[
    // Remote shells and signing keys.
    ".ssh",
    ".gnupg",
    // Cloud and cluster CLIs.
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".docker",
    ".terraform.d/credentials.tfrc.json",
    ".vault-token",
    // Git hosts and generic network logins.
    ".netrc",
    ".git-credentials",
    ".config/git/credentials",
    ".config/gh",
    ".config/hub",
    // Package-registry tokens.
    ".npmrc",
    ".yarnrc.yml",
    ".pypirc",
    ".config/pip",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".gem/credentials",
    ".m2/settings.xml",
    ".gradle/gradle.properties",
    ".composer/auth.json",
    // Browser profiles (saved passwords, cookies, sessions).
    ".mozilla",
    ".config/google-chrome",
    ".config/chromium",
    ".config/BraveSoftware",
    ".config/microsoft-edge",
    ".config/vivaldi",
    ".thunderbird",
    // Keychains and password managers.
    ".local/share/keyrings",
    ".password-store",
    ".pki",
    ".config/op",
];

/// What a protected path is protected as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protection {
    /// Inside Astrid's own state; `root` is the home as resolved.
    AstridState { root: PathBuf },
    /// Inside (or, for a whole-tree operation, holding) the credential location `location`.
    Credential { location: PathBuf },
}

/// How much of the file tree below a path an operation reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// The path itself (read, write, stat, list).
    Path,
    /// The path and everything beneath it (remove, rename): a protected location below the
    /// path would go with it.
    Tree,
}

/// A protected location in the forms a path can be compared against: as configured
/// (absolute) and resolved. Both are checked, so a location that is itself a symlink is
/// covered under either name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Location {
    forms: Vec<PathBuf>,
}

impl Location {
    fn new(path: PathBuf) -> Location {
        let mut forms = vec![path.clone()];
        // A location whose resolution loops cannot be reached under another name.
        if let Ok(resolved) = resolve(&path) {
            if resolved != path {
                forms.push(resolved);
            }
        }
        Location { forms }
    }

    fn holds(&self, path: &Path) -> bool {
        self.forms.iter().any(|f| path.starts_with(f))
    }

    fn beneath(&self, path: &Path) -> bool {
        self.forms.iter().any(|f| f.starts_with(path))
    }

    fn canonical(&self) -> &Path {
        self.forms.last().expect("a location has at least one form")
    }
}

/// The protected locations of one daemon, resolved once. Paths given to [`Self::classify`]
/// must already be resolved (see [`resolve`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProtectedSet {
    astrid: Option<Location>,
    /// Inside the Astrid home but not Astrid's: a principal's own home, which its capsules
    /// see as `~`.
    exempt: Vec<Location>,
    credentials: Vec<Location>,
    /// The home the credential locations were taken under, as given (absolute).
    user_home: Option<PathBuf>,
}

impl ProtectedSet {
    /// Nothing protected (tests of other layers, and callers that add locations).
    pub fn empty() -> ProtectedSet {
        ProtectedSet::default()
    }

    /// `$ASTRID_HOME` and the credential locations under `operator_home`. Relative inputs
    /// are taken against the current directory, so a relative `ASTRID_HOME` protects the
    /// same directory the daemon uses.
    pub fn new(astrid_home: &Path, operator_home: Option<&Path>) -> ProtectedSet {
        ProtectedSet {
            astrid: Some(Location::new(absolute(astrid_home))),
            exempt: Vec::new(),
            credentials: operator_home
                .map(|h| credential_paths(&absolute(h)))
                .unwrap_or_default()
                .into_iter()
                .map(Location::new)
                .collect(),
            user_home: operator_home.map(absolute),
        }
    }

    /// The operator's home the credential locations lie under, if one was given: what a
    /// manifest's `$user_home` root names, so both layers mean the same directory.
    pub fn user_home(&self) -> Option<&Path> {
        self.user_home.as_deref()
    }

    /// The same set with `dir` (inside the Astrid home) open again: a principal's home.
    /// Everything else under the Astrid home stays protected, including what a symlink in
    /// `dir` points at.
    pub fn exempting(mut self, dir: &Path) -> ProtectedSet {
        self.exempt.push(Location::new(absolute(dir)));
        self
    }

    /// The Astrid home as resolved, if this set protects one.
    pub fn astrid_home(&self) -> Option<&Path> {
        self.astrid.as_ref().map(Location::canonical)
    }

    /// The credential locations as configured (absolute).
    pub fn credential_locations(&self) -> impl Iterator<Item = &Path> {
        self.credentials.iter().map(|l| l.forms[0].as_path())
    }

    /// Whether `resolved` (an absolute, resolved path) is protected for an operation of
    /// `extent`. Astrid's state outranks a credential.
    pub fn classify(&self, resolved: &Path, extent: Extent) -> Option<Protection> {
        if let Some(astrid) = &self.astrid {
            let inside = astrid.holds(resolved) && !self.exempt.iter().any(|e| e.holds(resolved));
            if inside || (extent == Extent::Tree && astrid.beneath(resolved)) {
                return Some(Protection::AstridState {
                    root: astrid.canonical().to_path_buf(),
                });
            }
        }
        self.credentials
            .iter()
            .find(|c| c.holds(resolved) || (extent == Extent::Tree && c.beneath(resolved)))
            .map(|c| Protection::Credential {
                location: c.forms[0].clone(),
            })
    }
}

/// The operator's home as `$HOME` gives it, when it is absolute.
pub fn operator_home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute())
}

/// The credential locations under `home`, absolute.
pub fn credential_paths(home: &Path) -> Vec<PathBuf> {
    CREDENTIAL_LOCATIONS.iter().map(|c| home.join(c)).collect()
}

/// Whether a path pattern's literal prefix (its segments up to the first wildcard) lies
/// inside `location`: `/h/.ssh/id_ed25519` and `/h/.ssh/**` name `/h/.ssh`, `/h/**` and `/**`
/// do not. Only such a deliberate grant opens a credential location.
pub fn concretely_names(literal_prefix: &Path, location: &Path) -> bool {
    literal_prefix.starts_with(location)
        || resolve(location).is_ok_and(|r| literal_prefix.starts_with(r))
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

#[cfg(test)]
mod tests;
