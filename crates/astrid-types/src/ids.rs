//! Validated identifiers: capsule names, principal ids and content hashes.
//!
//! Every constructor validates, so a value of these types is always well formed; this is
//! what lets the kernel use them in paths, topics and SQL without re-checking.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an identifier was rejected. The offending input is included so a user can find it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "invalid capsule name `{0}`: must be 1-64 characters of a-z, 0-9 and `-`, starting with a letter"
    )]
    CapsuleName(String),
    #[error(
        "invalid principal id `{0}`: must be 1-64 characters of a-z, 0-9, `_` and `-`, starting with a letter or digit"
    )]
    PrincipalId(String),
    #[error("invalid artifact hash `{0}`: expected `blake3:` followed by 64 lowercase hex digits")]
    ArtifactHash(String),
    #[error(
        "invalid profile fact name `{0}`: must be 1-64 characters of a-z, 0-9 and `_`, starting with a letter"
    )]
    FactName(String),
}

const MAX_ID_LEN: usize = 64;

/// Shared shape check: a first character class, then up to 63 more from a second class.
fn id_shape(s: &str, first: impl Fn(u8) -> bool, rest: impl Fn(u8) -> bool) -> bool {
    let bytes = s.as_bytes();
    match bytes.split_first() {
        Some((&head, tail)) => {
            bytes.len() <= MAX_ID_LEN && first(head) && tail.iter().all(|&b| rest(b))
        }
        None => false,
    }
}

/// Implements the string plumbing shared by the string newtypes.
macro_rules! string_id {
    ($ty:ident, $check:expr, $err:path) => {
        impl $ty {
            /// Validates `s` and wraps it.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                if $check(s.as_str()) {
                    Ok(Self(s))
                } else {
                    Err($err(s))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $ty {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $ty {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$ty> for String {
            fn from(id: $ty) -> String {
                id.0
            }
        }
    };
}

/// A capsule's name: `[a-z][a-z0-9-]{0,63}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CapsuleName(String);

fn is_capsule_name(s: &str) -> bool {
    id_shape(
        s,
        |b| b.is_ascii_lowercase(),
        |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-',
    )
}

string_id!(CapsuleName, is_capsule_name, IdError::CapsuleName);

/// A principal (user or agent identity): `[a-z0-9][a-z0-9_-]{0,63}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PrincipalId(String);

fn is_principal_id(s: &str) -> bool {
    let rest = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
    id_shape(s, |b| b.is_ascii_lowercase() || b.is_ascii_digit(), rest)
}

string_id!(PrincipalId, is_principal_id, IdError::PrincipalId);

impl PrincipalId {
    /// The principal a single-user install runs as.
    pub fn default_local() -> Self {
        Self("default".to_owned())
    }
}

/// The name of a fact in a principal's profile (`display_name`, `timezone`):
/// `[a-z][a-z0-9_]{0,63}`. What a capsule may read of it is `identity:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FactName(String);

fn is_fact_name(s: &str) -> bool {
    id_shape(
        s,
        |b| b.is_ascii_lowercase(),
        |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_',
    )
}

string_id!(FactName, is_fact_name, IdError::FactName);

/// A BLAKE3 content hash, written `blake3:<64 lowercase hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ArtifactHash([u8; 32]);

const HASH_PREFIX: &str = "blake3:";

impl ArtifactHash {
    /// Hashes `bytes` with BLAKE3.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        // Uppercase is refused so that every hash has exactly one spelling.
        _ => None,
    }
}

impl FromStr for ArtifactHash {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let bad = || IdError::ArtifactHash(s.to_owned());
        let hex = s.strip_prefix(HASH_PREFIX).ok_or_else(bad)?.as_bytes();
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            let hi = hex_val(pair[0]).ok_or_else(bad)?;
            let lo = hex_val(pair[1]).ok_or_else(bad)?;
            *byte = (hi << 4) | lo;
        }
        Ok(Self(out))
    }
}

impl fmt::Display for ArtifactHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HASH_PREFIX)?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ArtifactHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArtifactHash({self})")
    }
}

impl TryFrom<String> for ArtifactHash {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}

impl From<ArtifactHash> for String {
    fn from(h: ArtifactHash) -> String {
        h.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capsule_names() {
        for ok in ["a", "echo", "my-capsule-2", "a-", &"a".repeat(64)] {
            assert_eq!(CapsuleName::new(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "1abc",
            "-a",
            "Echo",
            "a_b",
            "a.b",
            "a b",
            "é",
            &"a".repeat(65),
        ] {
            assert_eq!(
                CapsuleName::new(bad),
                Err(IdError::CapsuleName(bad.to_owned()))
            );
        }
        assert_eq!(
            CapsuleName::new("Echo").unwrap_err().to_string(),
            "invalid capsule name `Echo`: must be 1-64 characters of a-z, 0-9 and `-`, starting with a letter"
        );
    }

    #[test]
    fn principal_ids() {
        for ok in [
            "default",
            "0",
            "alice_1",
            "bob-smith",
            "9lives",
            &"z".repeat(64),
        ] {
            assert_eq!(ok.parse::<PrincipalId>().unwrap().to_string(), ok);
        }
        for bad in ["", "_a", "-a", "Alice", "a.b", "a/b", &"z".repeat(65)] {
            assert_eq!(
                bad.parse::<PrincipalId>(),
                Err(IdError::PrincipalId(bad.to_owned()))
            );
        }
        assert_eq!(PrincipalId::default_local().as_ref(), "default");
        assert_eq!(
            PrincipalId::new("A").unwrap_err().to_string(),
            "invalid principal id `A`: must be 1-64 characters of a-z, 0-9, `_` and `-`, starting with a letter or digit"
        );
    }

    #[test]
    fn string_ids_serde_validates() {
        let name: CapsuleName = serde_json::from_str("\"echo\"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"echo\"");
        let err = serde_json::from_str::<CapsuleName>("\"Bad\"").unwrap_err();
        assert!(
            err.to_string().starts_with("invalid capsule name `Bad`"),
            "{err}"
        );
        let p: PrincipalId = serde_json::from_str("\"default\"").unwrap();
        assert_eq!(p, PrincipalId::default_local());
        assert!(serde_json::from_str::<PrincipalId>("\"a b\"").is_err());
        assert!(serde_json::from_str::<PrincipalId>("3").is_err());
    }

    #[test]
    fn artifact_hash_round_trip() {
        let h = ArtifactHash::of(b"hello");
        let text = h.to_string();
        assert_eq!(
            text,
            "blake3:ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
        );
        assert_eq!(text.parse::<ArtifactHash>().unwrap(), h);
        assert_eq!(h.as_bytes(), blake3::hash(b"hello").as_bytes());
        assert_eq!(ArtifactHash::from_bytes(*h.as_bytes()), h);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<ArtifactHash>(&json).unwrap(), h);
        assert_eq!(format!("{h:?}"), format!("ArtifactHash({text})"));
        let zero = ArtifactHash::from_bytes([0; 32]).to_string();
        assert_eq!(zero, format!("blake3:{}", "0".repeat(64)));
    }

    #[test]
    fn artifact_hash_rejects() {
        let hex = "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f";
        let bad = [
            hex.to_owned(),
            format!("sha256:{hex}"),
            format!("blake3:{}", hex.to_uppercase()),
            format!("blake3:{}", &hex[..63]),
            format!("blake3:{hex}0"),
            format!("blake3:{}g", &hex[..63]),
            format!("BLAKE3:{hex}"),
            format!(" blake3:{hex}"),
            "blake3:".to_owned(),
            String::new(),
        ];
        for s in bad {
            assert_eq!(
                s.parse::<ArtifactHash>(),
                Err(IdError::ArtifactHash(s.clone()))
            );
        }
        assert_eq!(
            "blake3:xy".parse::<ArtifactHash>().unwrap_err().to_string(),
            "invalid artifact hash `blake3:xy`: expected `blake3:` followed by 64 lowercase hex digits"
        );
        assert!(serde_json::from_str::<ArtifactHash>("\"blake3:00\"").is_err());
    }
}
