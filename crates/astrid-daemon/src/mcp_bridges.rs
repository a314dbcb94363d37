//! The MCP bridges: one `astrid mcp bridge` per principal that has MCP servers added
//! (`<home>/mcp/<principal>/*.json`), kept running by the daemon so that `astrid mcp add` is
//! all a user does before the agent can use a server.
//!
//! The kernel learns nothing of MCP: a bridge is the same client a user could start by hand
//! (the `astrid` beside this daemon, the operator's credential from the home, serving tools
//! for its principal), and every call it serves is still gated by the kernel. The home is
//! looked at again every `SCAN_EVERY`, so a principal's first `mcp add` gets its bridge
//! without a restart; a bridge re-reads its principal's servers itself at every tool listing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use astrid_types::{AstridHome, PrincipalId};

use crate::child::{ChildSpec, Supervisor};

/// How often the home is looked at for principals that gained MCP servers.
const SCAN_EVERY: Duration = Duration::from_secs(2);

pub struct Bridges {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Vec<Supervisor>>,
}

impl Bridges {
    /// Watches `home` for principals with MCP servers and keeps a bridge running for each.
    /// `None` when there is no `astrid` beside this daemon to run (then the user runs
    /// `astrid mcp bridge` by hand, as the log says).
    pub fn start(home: AstridHome) -> Option<Bridges> {
        let astrid = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("astrid")))
            .filter(|p| p.is_file());
        let Some(astrid) = astrid else {
            tracing::warn!(
                "no `astrid` beside this daemon: MCP servers added with `astrid mcp add` are \
                 served only while `astrid mcp bridge` runs"
            );
            return None;
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("mcp-bridges".into())
            .spawn(move || watch(&home, &astrid, &stopped))
            .expect("starting the MCP bridge watcher");
        Some(Bridges { stop, thread })
    }

    /// Stops the watcher, then every bridge (each waits for its process).
    pub fn stop(self) {
        let _ = self.stop.send(());
        if let Ok(bridges) = self.thread.join() {
            for b in bridges {
                b.stop();
            }
        }
    }
}

fn watch(home: &AstridHome, astrid: &Path, stopped: &mpsc::Receiver<()>) -> Vec<Supervisor> {
    let mut running: BTreeMap<PrincipalId, Supervisor> = BTreeMap::new();
    loop {
        // A bridge connects to the socket; before the daemon serves there is nothing to reach
        // (and a client that found no daemon might try to start one).
        if home.socket().exists() {
            for p in principals_with_servers(home.root()) {
                if let std::collections::btree_map::Entry::Vacant(slot) = running.entry(p) {
                    tracing::info!(principal = %slot.key(), "starting the MCP bridge");
                    let spec = bridge_spec(home, astrid, slot.key());
                    slot.insert(Supervisor::start(spec));
                }
            }
        }
        match stopped.recv_timeout(SCAN_EVERY) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return running.into_values().collect(),
        }
    }
}

fn bridge_spec(home: &AstridHome, astrid: &Path, principal: &PrincipalId) -> ChildSpec {
    ChildSpec {
        name: format!("mcp-bridge-{principal}"),
        program: astrid.to_path_buf(),
        args: vec![
            "--home".into(),
            home.root().into(),
            "--principal".into(),
            principal.to_string().into(),
            "mcp".into(),
            "bridge".into(),
        ],
        // The sandbox finds bwrap on PATH and masks the credential stores under HOME.
        pass_env: &["PATH", "HOME", "LANG"],
        announce_to: None,
    }
}

/// The principals with at least one added server, by the directory names a principal id can
/// have (anything else under `mcp/` is not a principal's and is ignored).
fn principals_with_servers(root: &Path) -> Vec<PrincipalId> {
    let Ok(entries) = std::fs::read_dir(root.join("mcp")) else {
        return Vec::new();
    };
    let mut out: Vec<PrincipalId> = entries
        .flatten()
        .filter(|e| has_server(&e.path()))
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    out.sort();
    out
}

fn has_server(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| {
        entries.any(|e| {
            e.is_ok_and(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.ends_with(".json") && !name.starts_with('.')
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_principals_with_a_server_record_get_a_bridge() {
        let dir = tempfile::tempdir().unwrap();
        let mcp = dir.path().join("mcp");
        assert!(principals_with_servers(dir.path()).is_empty());
        for (p, file) in [
            ("alice", Some("files.json")),
            ("bob", None),
            ("carol", Some(".files.json.tmp")),
            ("Not A Principal", Some("x.json")),
            ("default", Some("notes.json")),
        ] {
            std::fs::create_dir_all(mcp.join(p)).unwrap();
            if let Some(f) = file {
                std::fs::write(mcp.join(p).join(f), "{}").unwrap();
            }
        }
        let got: Vec<String> = principals_with_servers(dir.path())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["alice", "default"]);
    }
}
