//! The index: every version of every capsule package and distro bundle a registry offers,
//! each with its file, size and BLAKE3 hash. It is signed as a whole ([`crate::signed`]), and
//! its `serial` rises with every publish so a client can refuse an older index replayed at it.

use std::fmt;
use std::str::FromStr;

use astrid_types::ArtifactHash;
use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};

use crate::source::is_relative_file;
use crate::RegistryError;

/// The index file at a registry's root.
pub const INDEX_FILE: &str = "index.toml";
/// The `format` line this version reads and writes.
pub const INDEX_FORMAT: &str = "astrid-registry 1";
/// Largest index read.
pub const MAX_INDEX_BYTES: u64 = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `.capsule` package.
    Capsule,
    /// A signed `.shuttle` distro bundle.
    Distro,
}

impl Kind {
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Capsule => "capsule",
            Kind::Distro => "distro",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Kind::Capsule => "capsule",
            Kind::Distro => "shuttle",
        }
    }
}

/// `@org/name`: lowercase letters, digits and `-`, each part 1 to 64 long.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackageName {
    org: String,
    name: String,
}

impl PackageName {
    pub fn org(&self) -> &str {
        &self.org
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl FromStr for PackageName {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, RegistryError> {
        let bad = || RegistryError::Name {
            name: s.to_string(),
            reason: "a registry name is @org/name (lowercase letters, digits and -)".into(),
        };
        let rest = s.strip_prefix('@').ok_or_else(bad)?;
        let (org, name) = rest.split_once('/').ok_or_else(bad)?;
        if !valid_part(org) || !valid_part(name) {
            return Err(bad());
        }
        Ok(PackageName {
            org: org.to_string(),
            name: name.to_string(),
        })
    }
}

impl TryFrom<String> for PackageName {
    type Error = RegistryError;
    fn try_from(s: String) -> Result<Self, RegistryError> {
        s.parse()
    }
}

impl From<PackageName> for String {
    fn from(n: PackageName) -> String {
        n.to_string()
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}/{}", self.org, self.name)
    }
}

/// What the operator asked for: `@org/name` or `@org/name@REQ` (a semver requirement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub name: PackageName,
    pub req: VersionReq,
}

impl FromStr for Wanted {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, RegistryError> {
        let (name, req) = match s.get(1..).and_then(|r| r.find('@')) {
            Some(i) => (&s[..i + 1], Some(&s[i + 2..])),
            None => (s, None),
        };
        let req = match req {
            None => VersionReq::STAR,
            Some(r) => r.parse().map_err(|e| RegistryError::Name {
                name: s.to_string(),
                reason: format!("`{r}` is not a version requirement: {e}"),
            })?,
        };
        Ok(Wanted {
            name: name.parse()?,
            req,
        })
    }
}

impl fmt::Display for Wanted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.req == VersionReq::STAR {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}@{}", self.name, self.req)
        }
    }
}

/// One version of one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: PackageName,
    pub version: Version,
    /// For a capsule: the name in its `Capsule.toml`, what it is installed as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capsule: Option<String>,
    /// Relative to the registry's root, or an absolute `https://` URL.
    pub file: String,
    pub size: u64,
    pub hash: ArtifactHash,
}

/// The whole index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub format: String,
    /// Raised by every publish. A client that saw serial N refuses any index below N.
    pub serial: u64,
    /// Unix seconds after which the index is refused as stale (a frozen mirror cannot hold
    /// back updates forever). None: it never goes stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    #[serde(default, rename = "capsule")]
    pub capsules: Vec<Entry>,
    #[serde(default, rename = "distro")]
    pub distros: Vec<Entry>,
}

impl Index {
    pub fn empty() -> Index {
        Index {
            format: INDEX_FORMAT.into(),
            serial: 0,
            expires: None,
            capsules: Vec::new(),
            distros: Vec::new(),
        }
    }

    /// Parses and checks an index body (its signature already verified).
    pub fn parse(body: &str) -> Result<Index, String> {
        let index: Index = toml::from_str(body).map_err(|e| e.to_string())?;
        if index.format != INDEX_FORMAT {
            return Err(format!(
                "format `{}` is not `{INDEX_FORMAT}` (a newer Astrid may read it)",
                index.format
            ));
        }
        for kind in [Kind::Capsule, Kind::Distro] {
            let entries = index.entries(kind);
            for (i, e) in entries.iter().enumerate() {
                let at = || format!("{} {} {}", kind.noun(), e.name, e.version);
                if !(is_relative_file(&e.file) || e.file.starts_with("https://")) {
                    return Err(format!(
                        "{}: file `{}` is neither a relative path inside the registry nor an \
                         https:// URL",
                        at(),
                        e.file
                    ));
                }
                if e.size > crate::MAX_DOWNLOAD_BYTES {
                    return Err(format!("{}: {} bytes is too large", at(), e.size));
                }
                match (kind, &e.capsule) {
                    (Kind::Capsule, None) => {
                        return Err(format!("{}: no `capsule` (its manifest name)", at()))
                    }
                    (Kind::Distro, Some(_)) => {
                        return Err(format!("{}: a distro has no `capsule`", at()))
                    }
                    _ => {}
                }
                if entries[..i]
                    .iter()
                    .any(|o| o.name == e.name && o.version == e.version)
                {
                    return Err(format!("{} is listed twice", at()));
                }
            }
        }
        Ok(index)
    }

    pub fn render(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    pub fn entries(&self, kind: Kind) -> &[Entry] {
        match kind {
            Kind::Capsule => &self.capsules,
            Kind::Distro => &self.distros,
        }
    }

    pub fn entries_mut(&mut self, kind: Kind) -> &mut Vec<Entry> {
        match kind {
            Kind::Capsule => &mut self.capsules,
            Kind::Distro => &mut self.distros,
        }
    }

    /// The newest version of `wanted` its requirement accepts.
    pub fn resolve(&self, kind: Kind, wanted: &Wanted) -> Result<&Entry, RegistryError> {
        let versions: Vec<&Entry> = self
            .entries(kind)
            .iter()
            .filter(|e| e.name == wanted.name)
            .collect();
        versions
            .iter()
            .filter(|e| wanted.req.matches(&e.version))
            .max_by(|a, b| a.version.cmp(&b.version))
            .copied()
            .ok_or_else(|| RegistryError::NotFound {
                what: format!("{} {wanted}", kind.noun()),
                available: if versions.is_empty() {
                    "it is not in the index".into()
                } else {
                    let v: Vec<String> = versions.iter().map(|e| e.version.to_string()).collect();
                    format!("the index has {}", v.join(", "))
                },
            })
    }

    /// The newest capsule package installed under the manifest name `capsule` (for `capsule
    /// update NAME`). Two registry names for one capsule name is ambiguous and refused.
    pub fn newest_for_capsule(&self, capsule: &str) -> Result<Option<&Entry>, RegistryError> {
        let matching: Vec<&Entry> = self
            .capsules
            .iter()
            .filter(|e| e.capsule.as_deref() == Some(capsule))
            .collect();
        if let Some(other) = matching.iter().find(|e| e.name != matching[0].name) {
            return Err(RegistryError::NotFound {
                what: format!("capsule `{capsule}`"),
                available: format!(
                    "both {} and {} install as `{capsule}`: name one (@org/name)",
                    matching[0].name, other.name
                ),
            });
        }
        Ok(matching
            .into_iter()
            .max_by(|a, b| a.version.cmp(&b.version)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, v: &str) -> Entry {
        Entry {
            name: name.parse().unwrap(),
            version: v.parse().unwrap(),
            capsule: Some("echo".into()),
            file: format!("capsules/{v}.capsule"),
            size: 1,
            hash: ArtifactHash::of(v.as_bytes()),
        }
    }

    #[test]
    fn names_and_requirements() {
        let w: Wanted = "@acme/echo@^1.2".parse().unwrap();
        assert_eq!(w.name.to_string(), "@acme/echo");
        assert!(w.req.matches(&"1.3.0".parse().unwrap()));
        let w: Wanted = "@acme/echo".parse().unwrap();
        assert_eq!(w.req, VersionReq::STAR);
        for bad in [
            "acme/echo",
            "@acme",
            "@Acme/echo",
            "@acme/",
            "@acme/echo@nope",
            "@/x",
        ] {
            assert!(bad.parse::<Wanted>().is_err(), "{bad}");
        }
    }

    #[test]
    fn resolve_takes_the_newest_accepted_version() {
        let mut index = Index::empty();
        index.capsules = vec![
            entry("@acme/echo", "1.0.0"),
            entry("@acme/echo", "1.4.0"),
            entry("@acme/echo", "2.0.0"),
        ];
        let text = index.render();
        let index = Index::parse(&text).unwrap();
        let get = |w: &str| {
            index
                .resolve(Kind::Capsule, &w.parse().unwrap())
                .map(|e| e.version.to_string())
        };
        assert_eq!(get("@acme/echo").unwrap(), "2.0.0");
        assert_eq!(get("@acme/echo@^1").unwrap(), "1.4.0");
        let missing = get("@acme/echo@^3").unwrap_err().to_string();
        assert!(missing.contains("1.0.0, 1.4.0, 2.0.0"), "{missing}");
        assert!(get("@acme/other").is_err());
        assert!(index
            .resolve(Kind::Distro, &"@acme/echo".parse().unwrap())
            .is_err());
        assert_eq!(
            index
                .newest_for_capsule("echo")
                .unwrap()
                .unwrap()
                .version
                .to_string(),
            "2.0.0"
        );
    }

    #[test]
    fn a_bad_index_is_refused_naming_the_entry() {
        let mut index = Index::empty();
        index.capsules = vec![entry("@acme/echo", "1.0.0"), entry("@acme/echo", "1.0.0")];
        assert!(Index::parse(&index.render()).unwrap_err().contains("twice"));
        index.capsules = vec![entry("@acme/echo", "1.0.0")];
        index.capsules[0].file = "../../etc/passwd".into();
        let e = Index::parse(&index.render()).unwrap_err();
        assert!(e.contains("@acme/echo 1.0.0"), "{e}");
        index.capsules[0].file = "http://plain.example/x.capsule".into();
        assert!(Index::parse(&index.render()).is_err());
        index.capsules[0].file = "x.capsule".into();
        index.capsules[0].capsule = None;
        assert!(Index::parse(&index.render()).is_err());
        let mut other = index.clone();
        other.format = "astrid-registry 9".into();
        assert!(Index::parse(&other.render())
            .unwrap_err()
            .contains("format"));
        assert!(Index::parse("serial = 1\nsurprise = 2\n").is_err());
    }
}
