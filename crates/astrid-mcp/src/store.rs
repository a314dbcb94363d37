//! Where `astrid mcp add` keeps its servers: one JSON file per server and principal under
//! `<astrid home>/mcp/<principal>/`, written whole and renamed into place.

use std::path::{Path, PathBuf};

use crate::remote::ServerConfig;
use crate::McpError;

pub use astrid_types::mcp::{valid_server_name, MAX_SERVER_NAME};

/// The servers of one principal.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(astrid_root: &Path, principal: &str) -> Store {
        Store {
            dir: astrid_root.join("mcp").join(principal),
        }
    }

    fn file(&self, name: &str) -> Result<PathBuf, McpError> {
        if !valid_server_name(name) {
            return Err(McpError::InvalidName(name.escape_debug().to_string()));
        }
        Ok(self.dir.join(format!("{name}.json")))
    }

    pub fn get(&self, name: &str) -> Result<Option<ServerConfig>, McpError> {
        let path = self.file(name)?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| McpError::Store(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(McpError::Store(format!("{}: {e}", path.display()))),
        }
    }

    /// Every server, sorted by name.
    pub fn list(&self) -> Result<Vec<ServerConfig>, McpError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(McpError::Store(format!("{}: {e}", self.dir.display()))),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if let Some(c) = self.get(name)? {
                out.push(c);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn put(&self, config: &ServerConfig) -> Result<(), McpError> {
        let path = self.file(&config.name)?;
        let io = |e: std::io::Error| McpError::Store(format!("{}: {e}", path.display()));
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let tmp = self.dir.join(format!(".{}.json.tmp", config.name));
        let bytes = serde_json::to_vec_pretty(config)
            .map_err(|e| McpError::Store(format!("encoding {}: {e}", config.name)))?;
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Whether there was such a server.
    pub fn remove(&self, name: &str) -> Result<bool, McpError> {
        let path = self.file(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(McpError::Store(format!("{}: {e}", path.display()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_round_trip_and_bad_names_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path(), "default");
        assert!(store.list().unwrap().is_empty());
        let c = ServerConfig {
            name: "fs".into(),
            program: "/usr/bin/true".into(),
            args: vec!["/".into()],
            allow_read: vec![],
            allow_write: vec![],
            pinned: vec![],
            secrets: vec![],
            allow_net: vec![],
        };
        store.put(&c).unwrap();
        assert_eq!(store.get("fs").unwrap(), Some(c.clone()));
        assert_eq!(store.list().unwrap(), vec![c]);
        assert!(store.remove("fs").unwrap());
        assert!(!store.remove("fs").unwrap());
        for bad in ["", "../x", "Fs", "a.b", "1x", &"a".repeat(33)] {
            assert!(
                matches!(store.get(bad), Err(McpError::InvalidName(_))),
                "{bad}"
            );
        }
    }
}
