//! What the sandboxed-server tests share: the reference servers from npm, a fake operator
//! home, and a server record.
#![allow(dead_code, reason = "each test file uses its own part of the helpers")]

use std::path::PathBuf;

use astrid_mcp::ServerConfig;
use astrid_process::SandboxPolicy;
use serde_json::{Map, Value};

/// `node_modules` of the pinned reference servers (scripts/test.sh installs them and sets
/// ASTRID_TEST_MCP_SERVERS).
pub fn servers() -> PathBuf {
    let dir = std::env::var_os("ASTRID_TEST_MCP_SERVERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "ASTRID_TEST_MCP_SERVERS is not set: run scripts/test.sh, or npm install \
                 @modelcontextprotocol/server-filesystem@2026.8.31 and \
                 @modelcontextprotocol/server-everything@2026.8.31 and point it at their \
                 node_modules"
            )
        });
    assert!(dir.join(".bin").is_dir(), "{} has no .bin", dir.display());
    dir
}

pub fn program(bin: &str) -> PathBuf {
    std::fs::canonicalize(servers().join(".bin").join(bin)).unwrap()
}

pub struct World {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub policy: SandboxPolicy,
}

/// A fake operator home with `~/.ssh/id_rsa`, a granted directory and one beside it.
pub fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    for d in ["home/.ssh", "granted", "other", "astrid"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("home/.ssh/id_rsa"), "PRIVATE KEY").unwrap();
    std::fs::write(root.join("home/notes.txt"), "my notes").unwrap();
    std::fs::write(root.join("granted/a.txt"), "hello from the grant").unwrap();
    std::fs::write(root.join("other/b.txt"), "not granted").unwrap();
    let policy = SandboxPolicy::with_home(&root.join("home"), &root.join("astrid")).unwrap();
    World {
        _tmp: tmp,
        root,
        policy,
    }
}

pub fn args(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("arguments must be an object"),
    }
}

pub fn config(name: &str, program: PathBuf, a: &[&str], read: Vec<PathBuf>) -> ServerConfig {
    ServerConfig {
        name: name.into(),
        program,
        args: a.iter().map(|s| s.to_string()).collect(),
        allow_read: read,
        allow_write: vec![],
        pinned: vec![],
        secrets: vec![],
        allow_net: vec![],
    }
}

/// `tests/fixtures/probe-server.mjs` (see its header), describing `probe` by DESC/description.txt.
pub fn probe_config(desc: PathBuf) -> ServerConfig {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/probe-server.mjs")
        .canonicalize()
        .unwrap();
    let sdk = servers().canonicalize().unwrap();
    let esm = sdk.join("@modelcontextprotocol/sdk/dist/esm");
    ServerConfig {
        name: "probe".into(),
        program: fixture,
        args: vec![
            desc.to_string_lossy().into_owned(),
            format!("file://{}", esm.display()),
        ],
        allow_read: vec![desc, sdk],
        allow_write: vec![],
        pinned: vec![],
        secrets: vec![],
        allow_net: vec![],
    }
}
