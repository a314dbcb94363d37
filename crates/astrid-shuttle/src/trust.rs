//! The publishers the operator trusts to sign distros: `$ASTRID_HOME/trusted-publishers.toml`,
//! a name per ed25519 public key. Capsules cannot reach the file (it is under Astrid's own
//! state, which no grant opens), so only the operator adds a publisher.

use std::path::{Path, PathBuf};

use astrid_crypto::PublicKey;
use serde::{Deserialize, Serialize};

use crate::{Bundle, ShuttleError};

/// The file's name under the home directory.
pub const TRUST_FILE: &str = "trusted-publishers.toml";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedPublisher {
    /// What the operator calls the publisher.
    pub name: String,
    /// The public key, 64 hex characters.
    pub key: String,
    /// Also trusted to sign Astrid's own releases (`astrid update`), which replace the
    /// binaries that enforce everything else: a separate, explicit grant.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub releases: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    #[serde(rename = "publisher", default)]
    publishers: Vec<TrustedPublisher>,
}

#[derive(Debug)]
pub struct TrustStore {
    path: PathBuf,
    file: TrustFile,
}

impl TrustStore {
    /// The store at `path`; a missing file trusts nobody.
    pub fn load(path: &Path) -> Result<Self, ShuttleError> {
        let bad = |reason: String| ShuttleError::TrustFile {
            path: path.to_path_buf(),
            reason,
        };
        let file = match std::fs::read_to_string(path) {
            Ok(text) => {
                let file: TrustFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
                for p in &file.publishers {
                    p.key
                        .parse::<PublicKey>()
                        .map_err(|e| bad(format!("publisher `{}`: {e}", p.name)))?;
                }
                file
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => TrustFile::default(),
            Err(e) => return Err(ShuttleError::io(path, e)),
        };
        Ok(TrustStore {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn publishers(&self) -> &[TrustedPublisher] {
        &self.file.publishers
    }

    /// Trusts `key` under `name` (for releases too when `releases`), and saves. A name or key
    /// trusted already is refused.
    pub fn add(
        &mut self,
        name: &str,
        key: &str,
        releases: bool,
    ) -> Result<TrustedPublisher, ShuttleError> {
        let bad = |reason: String| ShuttleError::TrustFile {
            path: self.path.clone(),
            reason,
        };
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b'/')
            });
        if !valid_name {
            return Err(bad(format!(
                "`{name}` is not a publisher name (1 to 64 of a-z A-Z 0-9 - _ . @ /)"
            )));
        }
        let parsed: PublicKey = key
            .parse()
            .map_err(|e| bad(format!("`{key}` is not a public key: {e}")))?;
        let key = parsed.to_string();
        if let Some(p) = self.file.publishers.iter().find(|p| p.name == name) {
            return Err(bad(format!(
                "`{name}` is trusted already, with key {}",
                p.key
            )));
        }
        if let Some(p) = self.file.publishers.iter().find(|p| p.key == key) {
            return Err(bad(format!("that key is trusted already, as `{}`", p.name)));
        }
        let entry = TrustedPublisher {
            name: name.to_string(),
            key,
            releases,
        };
        self.file.publishers.push(entry.clone());
        if let Err(e) = self.save() {
            self.file.publishers.pop();
            return Err(e);
        }
        Ok(entry)
    }

    /// Stops trusting `name`, and saves.
    pub fn remove(&mut self, name: &str) -> Result<TrustedPublisher, ShuttleError> {
        let Some(i) = self.file.publishers.iter().position(|p| p.name == name) else {
            return Err(ShuttleError::TrustFile {
                path: self.path.clone(),
                reason: format!("no trusted publisher is called `{name}`"),
            });
        };
        let removed = self.file.publishers.remove(i);
        if let Err(e) = self.save() {
            self.file.publishers.insert(i, removed);
            return Err(e);
        }
        Ok(removed)
    }

    /// The trusted publisher holding `key`, if any.
    pub fn trusted(&self, key: &PublicKey) -> Option<&TrustedPublisher> {
        let key = key.to_string();
        self.file.publishers.iter().find(|p| p.key == key)
    }

    /// The trusted publisher who signed `bundle`, or why it is refused.
    pub fn check(&self, bundle: &Bundle) -> Result<&TrustedPublisher, ShuttleError> {
        let key = bundle.publisher.to_string();
        self.file
            .publishers
            .iter()
            .find(|p| p.key == key)
            .ok_or_else(|| ShuttleError::Untrusted {
                path: bundle.path.clone(),
                key,
            })
    }

    fn save(&self) -> Result<(), ShuttleError> {
        let text = format!(
            "# Publishers whose signed distros, registries and (when marked) releases this Astrid\n# installs: `astrid trust`.\n{}",
            toml::to_string(&self.file).unwrap_or_default()
        );
        crate::write_atomic(&self.path, text.as_bytes())
    }
}
