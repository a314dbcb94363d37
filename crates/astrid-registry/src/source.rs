//! Where a registry or a release channel lives, and reading files from it: a local directory,
//! or an `https://` URL (plain `http://` only to the exact host and port the operator named,
//! for a registry on this machine or its LAN). Network reads go through the airlock, which
//! checks every hop and redirect before a socket is opened.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use astrid_egress::{Airlock, AirlockConfig, Consent, EgressRequest, LocalTarget, Url};

use crate::RegistryError;

/// A registry's (or a channel's) root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Dir(PathBuf),
    Url(Url),
}

impl FromStr for Location {
    type Err = RegistryError;

    /// `http://…` or `https://…` is a URL (a trailing `/` is added, so files resolve under
    /// it); anything else is a directory.
    fn from_str(s: &str) -> Result<Self, RegistryError> {
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            let mut url = Url::parse(s).map_err(|e| RegistryError::Location {
                location: s.to_string(),
                reason: e.to_string(),
            })?;
            if !url.path().ends_with('/') {
                let path = format!("{}/", url.path());
                url.set_path(&path);
            }
            url.set_query(None);
            url.set_fragment(None);
            Ok(Location::Url(url))
        } else if s.contains("://") {
            Err(RegistryError::Location {
                location: s.to_string(),
                reason: "only a directory, an https:// URL or an http:// URL is a registry".into(),
            })
        } else if s.is_empty() {
            Err(RegistryError::Location {
                location: s.to_string(),
                reason: "empty".into(),
            })
        } else {
            Ok(Location::Dir(PathBuf::from(s)))
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Dir(d) => write!(f, "{}", d.display()),
            Location::Url(u) => write!(f, "{u}"),
        }
    }
}

/// Whether `file` is a path a registry may name: relative, `/`-separated, without `..`,
/// and not hidden. A file elsewhere is named by an absolute URL instead.
pub fn is_relative_file(file: &str) -> bool {
    !file.is_empty()
        && file.len() <= 512
        && !file.contains('\\')
        && !file.contains("://")
        && file.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
        })
}

/// Reads files under a [`Location`].
pub struct Fetcher {
    location: Location,
    airlock: Option<Airlock>,
    consent: Consent,
}

impl Fetcher {
    pub fn new(location: Location) -> Result<Fetcher, RegistryError> {
        let mut consent = Consent::default();
        let airlock = match &location {
            Location::Dir(_) => None,
            Location::Url(url) => {
                // The operator named this host and port; that is the consent a plain-http or
                // loopback registry needs. Nothing else local is reachable, redirects included.
                if let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) {
                    consent.local.push(LocalTarget {
                        host: host.trim_matches(['[', ']']).to_string(),
                        port,
                    });
                }
                let cfg = AirlockConfig {
                    max_body: crate::MAX_DOWNLOAD_BYTES,
                    ..AirlockConfig::default()
                };
                Some(Airlock::new(cfg).map_err(|e| RegistryError::Fetch {
                    what: location.to_string(),
                    reason: e.to_string(),
                })?)
            }
        };
        Ok(Fetcher {
            location,
            airlock,
            consent,
        })
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Where `file` (relative to the root, or an absolute URL for a URL registry) is, for
    /// messages.
    pub fn describe(&self, file: &str) -> String {
        match (&self.location, file.contains("://")) {
            (_, true) => file.to_string(),
            (Location::Dir(d), false) => d.join(file).display().to_string(),
            (Location::Url(u), false) => u.join(file).map(|u| u.to_string()).unwrap_or_default(),
        }
    }

    /// The bytes of `file`, at most `max` of them.
    pub async fn get(&self, file: &str, max: u64) -> Result<Vec<u8>, RegistryError> {
        let what = self.describe(file);
        let fail = |reason: String| RegistryError::Fetch {
            what: what.clone(),
            reason,
        };
        match (&self.location, &self.airlock) {
            (Location::Dir(root), _) => {
                if !is_relative_file(file) {
                    return Err(fail(
                        "a directory registry names only relative paths inside it".into(),
                    ));
                }
                read_capped(&root.join(file), max).map_err(fail)
            }
            (Location::Url(base), Some(airlock)) => {
                let url = base
                    .join(file)
                    .map_err(|e| fail(format!("not a URL: {e}")))?;
                let req = EgressRequest {
                    method: "GET".into(),
                    url: url.to_string(),
                    ..EgressRequest::default()
                };
                let allow = |_: &Url| Ok(());
                let mut resp = airlock
                    .send(req, &self.consent, &allow)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                if resp.status != 200 {
                    return Err(fail(format!("the server answered HTTP {}", resp.status)));
                }
                let mut body = Vec::new();
                while let Some(chunk) = resp
                    .chunk(64 * 1024)
                    .await
                    .map_err(|e| fail(e.to_string()))?
                {
                    body.extend_from_slice(&chunk);
                    if body.len() as u64 > max {
                        return Err(fail(format!("more than {max} bytes")));
                    }
                }
                Ok(body)
            }
            (Location::Url(_), None) => Err(fail("no airlock".into())),
        }
    }
}

fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    // `is_relative_file` already refuses `..`; this keeps the helper safe on its own.
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err("`..` in the path".into());
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > max {
        return Err(format!("{} bytes, more than {max}", meta.len()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!("more than {max} bytes"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_and_relative_files() {
        assert!(matches!(
            "https://reg.example/astrid".parse::<Location>().unwrap(),
            Location::Url(u) if u.as_str() == "https://reg.example/astrid/"
        ));
        assert!(matches!(
            "./reg".parse::<Location>().unwrap(),
            Location::Dir(_)
        ));
        assert!("ftp://x/".parse::<Location>().is_err());
        assert!("".parse::<Location>().is_err());
        for good in ["capsules/acme/echo/1.0.0.capsule", "a@b/c-d_e.f"] {
            assert!(is_relative_file(good), "{good}");
        }
        for bad in [
            "../x",
            "a/../b",
            "/etc/passwd",
            "a//b",
            ".hidden",
            "a\\b",
            "https://x/y",
            "",
            "a b",
        ] {
            assert!(!is_relative_file(bad), "{bad}");
        }
    }
}
