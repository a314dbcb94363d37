//! A distro: `Distro.toml` says which capsules (by version requirement) and which providers
//! make up a fleet; `Distro.lock` pins every one of those capsules to the BLAKE3 hash of its
//! component. The lock is what the daemon enforces, at install and at every boot.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};

use crate::ids::{ArtifactHash, CapsuleName};

/// The distro's description file, at the top of a distro directory or bundle.
pub const MANIFEST_FILE: &str = "Distro.toml";
/// The lock file, beside `Distro.toml` and in the daemon's home.
pub const LOCK_FILE: &str = "Distro.lock";

/// Largest `Distro.toml` or `Distro.lock` read: a fleet is a few dozen lines.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// What is wrong with a distro file, naming the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DistroError {
    /// Not valid TOML or not the expected shape; the message carries the line.
    #[error("{file}: {message}")]
    Syntax { file: PathBuf, message: String },
    /// Well-formed, but breaks a rule (a duplicate capsule, an empty list, …).
    #[error("{file}: {reason}")]
    Invalid { file: PathBuf, reason: String },
}

/// `Distro.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistroManifest {
    pub distro: DistroInfo,
    /// The capsules, in the order they are installed.
    #[serde(rename = "capsule")]
    pub capsules: Vec<CapsuleRequirement>,
    /// The providers `astrid init --yes` sets up when the command line names none.
    #[serde(rename = "provider", default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderDefault>,
    /// MCP servers added (as by `astrid mcp add`) for the principal installing the distro.
    #[serde(rename = "mcp", default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_servers: Vec<McpServerEntry>,
}

/// `[[mcp]]`: an MCP server the distro adds as sandboxed tools. A distro carries no native
/// code: the program must already be on the machine (a path, `~/…`, or a name in the
/// sandbox's system directories), and the tool definitions are pinned when it is added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerEntry {
    /// As `astrid mcp add NAME`: its tools become `NAME.TOOL`.
    pub name: String,
    /// The program and its arguments; `~/` at the start of any element is the operator's
    /// home.
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_read: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_write: Vec<String>,
    /// `ENV=NAME`, as `--secret`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// `HOST:PORT`, as `--allow-net`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_net: Vec<String>,
    /// `HOST:PORT`, as `--allow-local-net`: a distro asking for the user's local network
    /// says so in its own field, which `astrid distro install` prints as it adds the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_local_net: Vec<String>,
}

impl McpServerEntry {
    /// The network grants, parsed (checked when the distro was read).
    pub fn net_grants(&self) -> Result<Vec<crate::mcp::NetGrant>, String> {
        let public = self.allow_net.iter().map(|s| (s, false));
        let local = self.allow_local_net.iter().map(|s| (s, true));
        public
            .chain(local)
            .map(|(s, local)| crate::mcp::NetGrant::parse(s, local))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistroInfo {
    pub name: String,
    pub version: Version,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One capsule of the distro: its name and the versions that may fill it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapsuleRequirement {
    pub name: CapsuleName,
    pub version: VersionReq,
}

/// A provider the distro sets up by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderDefault {
    /// `openai` (any OpenAI-compatible server) or `anthropic`.
    pub kind: String,
    pub base_url: String,
    /// The model to select; without it, the first the provider lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl DistroManifest {
    pub fn parse(text: &str, file: &Path) -> Result<Self, DistroError> {
        let m: DistroManifest = parse_toml(text, file)?;
        let invalid = |reason: String| DistroError::Invalid {
            file: file.to_path_buf(),
            reason,
        };
        if m.distro.name.trim().is_empty() || m.distro.name.len() > 128 {
            return Err(invalid("[distro] name must be 1 to 128 characters".into()));
        }
        if m.capsules.is_empty() {
            return Err(invalid("the distro lists no [[capsule]]".into()));
        }
        unique("capsule", m.capsules.iter().map(|c| &c.name)).map_err(invalid)?;
        for e in &m.mcp_servers {
            let at = format!("[[mcp]] `{}`", e.name.escape_debug());
            if !crate::mcp::valid_server_name(&e.name) {
                return Err(invalid(format!(
                    "{at}: a server name is 1-32 of a-z 0-9 - starting with a letter"
                )));
            }
            if e.command.first().is_none_or(|p| p.is_empty()) {
                return Err(invalid(format!("{at}: command names no program")));
            }
            for s in &e.secrets {
                crate::mcp::McpSecretRef::parse(s)
                    .map_err(|why| invalid(format!("{at}: secrets: {why}")))?;
            }
            e.net_grants()
                .map_err(|why| invalid(format!("{at}: network: {why}")))?;
        }
        unique("[[mcp]]", m.mcp_servers.iter().map(|e| &e.name)).map_err(invalid)?;
        for p in &m.providers {
            if !matches!(p.kind.as_str(), "openai" | "anthropic") {
                return Err(invalid(format!(
                    "[[provider]] kind `{}` is not one of openai, anthropic",
                    p.kind
                )));
            }
            if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
                return Err(invalid(format!(
                    "[[provider]] base_url `{}` is not an http:// or https:// URL",
                    p.base_url
                )));
            }
        }
        Ok(m)
    }

    pub fn load(path: &Path) -> Result<Self, DistroError> {
        Self::parse(&read_capped(path)?, path)
    }
}

/// `Distro.lock`: the fleet, each capsule pinned by the hash of its component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistroLock {
    /// `[distro] name` of the distro locked.
    pub name: String,
    /// `[distro] version` of the distro locked.
    pub version: Version,
    /// The BLAKE3 hash of the `Distro.toml` locked, so a signature over the lock covers it.
    pub manifest: ArtifactHash,
    /// Sorted by name, so one fleet has exactly one lock text.
    #[serde(rename = "capsule")]
    pub capsules: Vec<LockedCapsule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedCapsule {
    pub name: CapsuleName,
    pub version: Version,
    /// The BLAKE3 of the component.
    pub hash: ArtifactHash,
    /// The BLAKE3 of the package's `Capsule.toml` as packaged: the manifest declares the
    /// capsule's capabilities, so pinning the component alone would let them change.
    pub manifest: ArtifactHash,
}

impl DistroLock {
    pub fn parse(text: &str, file: &Path) -> Result<Self, DistroError> {
        let lock: DistroLock = parse_toml(text, file)?;
        lock.validate().map_err(|reason| DistroError::Invalid {
            file: file.to_path_buf(),
            reason,
        })?;
        Ok(lock)
    }

    pub fn load(path: &Path) -> Result<Self, DistroError> {
        Self::parse(&read_capped(path)?, path)
    }

    /// The rules a lock from any source (a file, the socket) must keep.
    pub fn validate(&self) -> Result<(), String> {
        if self.capsules.is_empty() {
            return Err("the lock pins no [[capsule]]".into());
        }
        unique("capsule", self.capsules.iter().map(|c| &c.name))?;
        if !self.capsules.windows(2).all(|w| w[0].name < w[1].name) {
            return Err("[[capsule]] entries are not sorted by name".into());
        }
        Ok(())
    }

    /// The pin for `name`, if the lock has one.
    pub fn pin(&self, name: &str) -> Option<&LockedCapsule> {
        self.capsules.iter().find(|c| c.name.as_ref() == name)
    }

    /// The one text of this lock: what is written, hashed and signed.
    pub fn to_toml(&self) -> String {
        // Every field is a string, a version or a hash: serializing cannot fail.
        let body = toml::to_string(self).unwrap_or_default();
        format!("# Distro.lock: every capsule of the distro, pinned by BLAKE3 hash.\n{body}")
    }

    /// The BLAKE3 hash of [`Self::to_toml`].
    pub fn digest(&self) -> ArtifactHash {
        ArtifactHash::of(self.to_toml().as_bytes())
    }
}

/// Refuses a name listed twice; `what` says what the names are (`capsule`, `[[mcp]]`).
fn unique<'a, N: Ord + std::fmt::Display + 'a>(
    what: &str,
    names: impl Iterator<Item = &'a N>,
) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(format!("{what} `{n}` is listed twice"));
        }
    }
    Ok(())
}

fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, file: &Path) -> Result<T, DistroError> {
    toml::from_str(text).map_err(|e| DistroError::Syntax {
        file: file.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })
}

fn read_capped(path: &Path) -> Result<String, DistroError> {
    let syntax = |message: String| DistroError::Syntax {
        file: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| syntax(format!("cannot read: {e}")))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(syntax(format!(
            "{} bytes, more than the {MAX_FILE_BYTES} a distro file may have",
            bytes.len()
        )));
    }
    String::from_utf8(bytes).map_err(|_| syntax("not UTF-8 text".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
[distro]
name = "astrid"
version = "0.1.0"

[[capsule]]
name = "agent"
version = "^0.1"

[[capsule]]
name = "session"
version = ">=0.1, <0.3"

[[provider]]
kind = "openai"
base_url = "http://127.0.0.1:8091"
"#;

    #[test]
    fn an_mcp_entrys_network_grants_are_parsed_and_a_bad_one_refuses_the_distro() {
        let file = Path::new("Distro.toml");
        let with = |net: &str| {
            format!("{MANIFEST}\n[[mcp]]\nname = \"web\"\ncommand = [\"/usr/bin/true\"]\n{net}\n")
        };
        let m = DistroManifest::parse(
            &with("allow_net = [\"api.example.com:443\"]\nallow_local_net = [\"localhost:8080\"]"),
            file,
        )
        .unwrap();
        let grants: Vec<String> = m.mcp_servers[0]
            .net_grants()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(grants, ["api.example.com:443", "local:localhost:8080"]);
        for bad in [
            "allow_net = [\"localhost:8080\"]",
            "allow_net = [\"10.0.0.1:80\"]",
        ] {
            let err = DistroManifest::parse(&with(bad), file)
                .unwrap_err()
                .to_string();
            assert!(err.contains("[[mcp]] `web`: network:"), "{bad}: {err}");
        }
    }

    fn lock() -> DistroLock {
        DistroLock {
            name: "astrid".into(),
            version: Version::new(0, 1, 0),
            manifest: ArtifactHash::of(MANIFEST.as_bytes()),
            capsules: vec![
                LockedCapsule {
                    name: "agent".parse().unwrap(),
                    version: Version::new(0, 1, 0),
                    hash: ArtifactHash::of(b"agent"),
                    manifest: ArtifactHash::of(b"agent.toml"),
                },
                LockedCapsule {
                    name: "session".parse().unwrap(),
                    version: Version::new(0, 2, 0),
                    hash: ArtifactHash::of(b"session"),
                    manifest: ArtifactHash::of(b"session.toml"),
                },
            ],
        }
    }

    #[test]
    fn a_manifest_reads_with_requirements_and_providers() {
        let m = DistroManifest::parse(MANIFEST, Path::new("Distro.toml")).unwrap();
        assert_eq!(m.distro.name, "astrid");
        assert_eq!(m.capsules.len(), 2);
        assert!(m.capsules[1].version.matches(&Version::new(0, 2, 5)));
        assert!(!m.capsules[1].version.matches(&Version::new(0, 3, 0)));
        assert_eq!(m.providers[0].kind, "openai");
    }

    #[test]
    fn bad_manifests_name_the_file_and_the_problem() {
        let err = |text: &str| {
            DistroManifest::parse(text, Path::new("/d/Distro.toml"))
                .unwrap_err()
                .to_string()
        };
        let e = err(
            "[distro]\nname = \"x\"\nversion = \"one\"\n[[capsule]]\nname=\"a\"\nversion=\"1\"",
        );
        assert!(
            e.starts_with("/d/Distro.toml:") && e.contains("line 3"),
            "{e}"
        );
        let e = err(&MANIFEST.replace("session", "agent"));
        assert!(e.contains("`agent` is listed twice"), "{e}");
        let e = err(&MANIFEST.replace("kind = \"openai\"", "kind = \"gemini\""));
        assert!(e.contains("`gemini`"), "{e}");
        let e = err(&MANIFEST.replace("http://127", "file://127"));
        assert!(e.contains("base_url"), "{e}");
        let e = err(&MANIFEST.replace("name = \"agent\"", "name = \"Agent\""));
        assert!(e.contains("line"), "{e}");
        let e = err(&format!("{MANIFEST}\nextra = 1\n"));
        assert!(e.contains("extra"), "{e}");
        let e = err("capsule = []\n[distro]\nname = \"x\"\nversion = \"1.0.0\"\n");
        assert!(e.contains("no [[capsule]]"), "{e}");
    }

    #[test]
    fn a_lock_has_one_text_that_reads_back() {
        let lock = lock();
        let text = lock.to_toml();
        assert_eq!(text.matches("[[capsule]]").count(), 2, "{text}");
        let back = DistroLock::parse(&text, Path::new("Distro.lock")).unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.to_toml(), text);
        assert_eq!(back.digest(), ArtifactHash::of(text.as_bytes()));
        assert_eq!(lock.pin("session").unwrap().version, Version::new(0, 2, 0));
        assert!(lock.pin("tool-fs").is_none());
    }

    #[test]
    fn bad_locks_are_refused() {
        let file = Path::new("Distro.lock");
        let mut unsorted = lock();
        unsorted.capsules.reverse();
        let e = DistroLock::parse(&unsorted.to_toml(), file).unwrap_err();
        assert!(e.to_string().contains("not sorted"), "{e}");
        let mut twice = lock();
        twice.capsules[1].name = "agent".parse().unwrap();
        assert!(twice.validate().unwrap_err().contains("listed twice"));
        let text = lock().to_toml().replace("blake3:", "sha256:");
        let e = DistroLock::parse(&text, file).unwrap_err().to_string();
        assert!(e.starts_with("Distro.lock:") && e.contains("line"), "{e}");
        let e = DistroLock::parse("name = \"x\"\n", file).unwrap_err();
        assert!(e.to_string().contains("missing field"), "{e}");
    }
}
