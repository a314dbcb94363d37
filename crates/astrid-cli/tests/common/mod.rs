//! What the CLI's integration tests share: the real `astrid` binary, the real daemon beside
//! it, and capsule packages built from this repository.
#![allow(
    dead_code,
    clippy::disallowed_methods,
    reason = "each test file uses a part; tests drive real processes"
)]

pub mod static_http;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn daemon_exe() -> PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_astrid"))
        .parent()
        .expect("binary directory")
        .join("astrid-daemon");
    assert!(
        exe.is_file(),
        "{} is missing: build it first with `cargo build --release --workspace --bins` \
         (scripts/test.sh does)",
        exe.display()
    );
    exe
}

pub fn astrid(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_astrid"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env("ASTRID_DAEMON", daemon_exe())
        .env_remove("ASTRID_PRINCIPAL")
        .env_remove("ASTRID_DEVICE_TOKEN")
        .env_remove("ASTRID_DEVICE_TOKEN_FILE")
        .output()
        .expect("running astrid")
}

/// Makes a publisher key with `astrid distro keygen` in `root`; returns (key file, public key).
pub fn keygen(root: &Path, name: &str) -> (PathBuf, String) {
    let key = root.join(format!("{name}.key"));
    let out = ok(
        astrid(root, &["distro", "keygen", key.to_str().unwrap()]),
        "distro keygen",
    );
    let public = out
        .lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .unwrap_or_else(|| panic!("no public key in {out}"))
        .to_string();
    (key, public)
}

pub fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts that the command failed; returns its stdout and stderr together.
pub fn failed(out: Output, what: &str) -> String {
    assert!(
        !out.status.success(),
        "{what} should fail: {}",
        text(&out.stdout)
    );
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// `astrid init --yes` with the OpenAI-compatible scripted model at `base_url` (the LLM
/// fixture) and the distro at `distro`; `env` adds variables (e.g. `HOME`).
pub fn init_with_model(
    home: &Path,
    base_url: &str,
    api_key: &str,
    distro: &Path,
    env: &[(&str, &Path)],
) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_astrid"));
    cmd.arg("--home")
        .arg(home)
        .args([
            "init",
            "--yes",
            "--provider",
            "openai",
            "--base-url",
            base_url,
        ])
        .args(["--model", "gpt-4o-mini", "--distro"])
        .arg(distro)
        .env("ASTRID_DAEMON", daemon_exe())
        .env("OPENAI_API_KEY", api_key);
    for (k, v) in env {
        cmd.env(k, v);
    }
    ok(cmd.output().expect("running astrid init"), "astrid init");
}

/// Stops the daemon the CLI started, also when an assertion fails.
pub struct StopDaemon(pub PathBuf);

impl Drop for StopDaemon {
    fn drop(&mut self) {
        let _ = astrid(&self.0, &["stop"]);
    }
}

/// The capsules a chat needs, built with `astrid capsule build` into `dir/distro` beside a
/// `Distro.toml` naming them: the directory `astrid init --distro` installs.
pub fn build_distro(dir: &Path) -> PathBuf {
    let capsules = ["session", "registry", "provider-openai", "tool-fs", "agent"];
    let out = build_packages(dir, &capsules);
    write_distro_toml(&out, "test-chat", &capsules);
    out
}

/// A `Distro.toml` in `dir` listing `capsules`, any version.
pub fn write_distro_toml(dir: &Path, name: &str, capsules: &[&str]) {
    let mut text = format!("[distro]\nname = \"{name}\"\nversion = \"1.0.0\"\n");
    for c in capsules {
        text.push_str(&format!("\n[[capsule]]\nname = \"{c}\"\nversion = \"*\"\n"));
    }
    std::fs::write(dir.join("Distro.toml"), text).unwrap();
}

/// Each of `capsules` (paths under `capsules/`) built with `astrid capsule build` into
/// `dir/distro`.
pub fn build_packages(dir: &Path, capsules: &[&str]) -> PathBuf {
    let out = dir.join("distro");
    for capsule in capsules {
        let src = repo().join("capsules").join(capsule);
        let built = Command::new(env!("CARGO_BIN_EXE_astrid"))
            .args(["capsule", "build"])
            .arg(&src)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("running astrid capsule build");
        ok(built, &format!("building {capsule}"));
    }
    out
}

/// `node_modules` of the pinned reference MCP servers (scripts/test.sh installs them and sets
/// ASTRID_TEST_MCP_SERVERS), canonical.
pub fn mcp_servers() -> PathBuf {
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
    assert!(
        dir.join("@modelcontextprotocol/sdk").is_dir(),
        "{} has no @modelcontextprotocol/sdk",
        dir.display()
    );
    dir.canonicalize().unwrap()
}
