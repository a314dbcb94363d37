//! Runs `cargo build` for a capsule crate and finds the `.wasm` it produced.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::error::BuildError;

/// The only target capsules are built for: it has no WASI, so the component imports nothing
/// but what wit-bindgen declares.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The parts of cargo's `compiler-artifact` JSON message we read.
#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    manifest_path: Option<PathBuf>,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
}

#[derive(Deserialize)]
struct Target {
    #[serde(default)]
    crate_types: Vec<String>,
}

/// Builds the crate at `manifest` in release mode for [`WASM_TARGET`] and returns the path of
/// its cdylib. `target_dir` overrides `CARGO_TARGET_DIR`; without either cargo decides.
pub fn build_wasm(
    manifest: &Path,
    target_dir: Option<&Path>,
    show_output: bool,
) -> Result<PathBuf, BuildError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    #[expect(
        clippy::disallowed_methods,
        reason = "building a capsule runs the developer's cargo: an operator's tool, not a capsule's effect"
    )]
    let mut cmd = Command::new(&cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(WASM_TARGET)
        .arg("--manifest-path")
        .arg(manifest)
        // Artifact messages are the reliable way to learn the output path: it depends on the
        // workspace, the target dir and the crate's lib name, none of which we should guess.
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped())
        .stderr(if show_output {
            Stdio::inherit()
        } else {
            Stdio::piped()
        });
    if let Some(dir) = manifest.parent() {
        // So the capsule's own `.cargo/config.toml` and toolchain file apply.
        cmd.current_dir(dir);
    }
    if let Some(dir) = target_dir {
        cmd.env("CARGO_TARGET_DIR", dir);
    }
    let fail = |reason: String| BuildError::Cargo {
        manifest: manifest.to_path_buf(),
        reason,
    };
    let out = cmd
        .output()
        .map_err(|e| fail(format!("cannot run {}: {e}", cargo.to_string_lossy())))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let reason = if stderr.trim().is_empty() {
            format!("cargo exited with {}", out.status)
        } else {
            format!("cargo exited with {}:\n{}", out.status, stderr.trim_end())
        };
        return Err(fail(reason));
    }
    find_artifact(&out.stdout, manifest).ok_or_else(|| {
        fail(format!(
            "no {WASM_TARGET} cdylib artifact was produced; is `crate-type = [\"cdylib\"]` set \
             under [lib]?"
        ))
    })
}

/// The `.wasm` file of the cdylib built from `manifest`, from cargo's JSON messages.
fn find_artifact(stdout: &[u8], manifest: &Path) -> Option<PathBuf> {
    let wanted = std::fs::canonicalize(manifest).unwrap_or_else(|_| manifest.to_path_buf());
    let mut found = None;
    for line in stdout.split(|b| *b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<Message>(line) else {
            continue;
        };
        if msg.reason != "compiler-artifact" {
            continue;
        }
        let same_crate = msg
            .manifest_path
            .as_deref()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()) == wanted)
            .unwrap_or(false);
        let is_cdylib = msg
            .target
            .as_ref()
            .is_some_and(|t| t.crate_types.iter().any(|c| c == "cdylib"));
        if !same_crate || !is_cdylib {
            continue;
        }
        if let Some(wasm) = msg
            .filenames
            .into_iter()
            .find(|f| f.extension().is_some_and(|e| e == "wasm"))
        {
            found = Some(wasm);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_cdylib_of_the_requested_crate() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        std::fs::write(&manifest, "").unwrap();
        let other = dir.path().join("other.toml");
        let lines = [
            r#"{"reason":"compiler-message"}"#.to_string(),
            format!(
                r#"{{"reason":"compiler-artifact","manifest_path":{:?},"target":{{"crate_types":["lib"]}},"filenames":["/t/libserde.rlib"]}}"#,
                other.display().to_string()
            ),
            format!(
                r#"{{"reason":"compiler-artifact","manifest_path":{:?},"target":{{"crate_types":["cdylib"]}},"filenames":["/t/echo.wasm"]}}"#,
                manifest.display().to_string()
            ),
            r#"{"reason":"build-finished","success":true}"#.to_string(),
        ];
        let stdout = lines.join("\n");
        assert_eq!(
            find_artifact(stdout.as_bytes(), &manifest),
            Some(PathBuf::from("/t/echo.wasm"))
        );
        assert_eq!(find_artifact(stdout.as_bytes(), &other), None);
    }
}
