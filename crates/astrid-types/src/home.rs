//! The layout of `$ASTRID_HOME` (default `~/.astrid`). Pure path arithmetic: creating the
//! directories with the right modes is the daemon's job.

use std::path::{Path, PathBuf};

use crate::ids::PrincipalId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AstridHome {
    root: PathBuf,
}

impl AstridHome {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        AstridHome { root: root.into() }
    }

    /// `$ASTRID_HOME`, else `$HOME/.astrid`. `None` when neither is set.
    pub fn from_env() -> Option<Self> {
        if let Some(h) = std::env::var_os("ASTRID_HOME").filter(|h| !h.is_empty()) {
            return Some(AstridHome::new(h));
        }
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
        Some(AstridHome::new(Path::new(&home).join(".astrid")))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    /// 0700: socket, token, pid and lock files.
    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }
    pub fn socket(&self) -> PathBuf {
        self.run_dir().join("astrid.sock")
    }
    pub fn token_file(&self) -> PathBuf {
        self.run_dir().join("token")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.run_dir().join("daemon.pid")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.run_dir().join("daemon.lock")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn daemon_log(&self) -> PathBuf {
        self.log_dir().join("daemon.log")
    }
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }
    /// Content-addressed artifacts: `capsules/<blake3 hex>/component.wasm`.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.root.join("capsules")
    }
    /// Precompiled components keyed by artifact hash and engine settings.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }
    /// Kernel bookkeeping such as the installed-capsule list.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn principals_dir(&self) -> PathBuf {
        self.root.join("principals")
    }
    pub fn principal_dir(&self, p: &PrincipalId) -> PathBuf {
        self.principals_dir().join(p.as_ref())
    }
    pub fn principal_store(&self, p: &PrincipalId) -> PathBuf {
        self.principal_dir(p).join("store.sqlite")
    }
    /// What `~/` means for a capsule running for this principal.
    pub fn principal_home(&self, p: &PrincipalId) -> PathBuf {
        self.principal_dir(p).join("home")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_under_the_root() {
        let h = AstridHome::new("/tmp/ah");
        let p: PrincipalId = "default".parse().unwrap();
        assert_eq!(h.socket(), Path::new("/tmp/ah/run/astrid.sock"));
        assert_eq!(
            h.principal_home(&p),
            Path::new("/tmp/ah/principals/default/home")
        );
    }
}
