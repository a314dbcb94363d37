//! Subresource integrity: the caller names the digest the body must have, and a body that
//! does not match is an error before any byte of it is handed on.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::digest;

use crate::EgressError;

/// The digest algorithms of the W3C SRI format, weakest first (the order matters: only the
/// strongest one named is checked, as browsers do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum IntegrityAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl IntegrityAlgorithm {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "sha256" => Some(Self::Sha256),
            "sha384" => Some(Self::Sha384),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    fn ring(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }
}

/// Expected digests, parsed from `sha256-<base64> sha512-<base64> …` (the `integrity`
/// attribute's format; `?options` after a digest are ignored). A body matches when it has
/// any of the digests of the strongest algorithm listed. Unlike a browser, an unknown
/// algorithm or a malformed digest is an error rather than skipped: a caller who asked for
/// integrity and misspelt it must not get an unchecked body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integrity {
    expected: Vec<(IntegrityAlgorithm, Vec<u8>)>,
}

/// Longest integrity string accepted (several SHA-512 digests fit easily).
const MAX_INTEGRITY: usize = 1024;

impl Integrity {
    pub fn parse(s: &str) -> Result<Integrity, EgressError> {
        let bad = |why: String| EgressError::InvalidArgument(format!("integrity: {why}"));
        if s.len() > MAX_INTEGRITY {
            return Err(bad(format!("longer than {MAX_INTEGRITY} bytes")));
        }
        let mut expected = Vec::new();
        for item in s.split_ascii_whitespace() {
            let item = item.split('?').next().unwrap_or_default();
            let Some((alg, b64)) = item.split_once('-') else {
                return Err(bad(format!("`{item}` is not ALGORITHM-BASE64")));
            };
            let Some(alg) = IntegrityAlgorithm::parse(alg) else {
                return Err(bad(format!("`{alg}` is not sha256, sha384 or sha512")));
            };
            let digest = STANDARD
                .decode(b64)
                .map_err(|e| bad(format!("the {} digest is not base64: {e}", alg.name())))?;
            if digest.len() != alg.ring().output_len() {
                return Err(bad(format!(
                    "a {} digest is {} bytes, this one is {}",
                    alg.name(),
                    alg.ring().output_len(),
                    digest.len()
                )));
            }
            expected.push((alg, digest));
        }
        if expected.is_empty() {
            return Err(bad("no digest given".into()));
        }
        Ok(Integrity { expected })
    }

    /// The strongest algorithm named.
    fn strongest(&self) -> IntegrityAlgorithm {
        self.expected
            .iter()
            .map(|(a, _)| *a)
            .max()
            .unwrap_or(IntegrityAlgorithm::Sha512)
    }

    /// `Ok` when `body` has one of the expected digests of the strongest algorithm;
    /// otherwise the digest it has, for the error message.
    pub fn check(&self, body: &[u8]) -> Result<(), String> {
        let alg = self.strongest();
        let got = digest::digest(alg.ring(), body);
        let matches = self
            .expected
            .iter()
            .any(|(a, d)| *a == alg && d.as_slice() == got.as_ref());
        if matches {
            Ok(())
        } else {
            Err(format!("{}-{}", alg.name(), STANDARD.encode(got.as_ref())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sri(alg: &'static digest::Algorithm, name: &str, body: &[u8]) -> String {
        format!("{name}-{}", STANDARD.encode(digest::digest(alg, body)))
    }

    #[test]
    fn a_matching_body_passes_and_another_does_not() {
        let i = Integrity::parse(&sri(&digest::SHA256, "sha256", b"hello")).unwrap();
        assert!(i.check(b"hello").is_ok());
        let got = i.check(b"hellO").unwrap_err();
        assert_eq!(got, sri(&digest::SHA256, "sha256", b"hellO"));
    }

    #[test]
    fn only_the_strongest_algorithm_listed_counts() {
        // A correct sha256 next to a wrong sha512: the sha512 decides, so it fails.
        let s = format!(
            "{} {}",
            sri(&digest::SHA256, "sha256", b"x"),
            sri(&digest::SHA512, "sha512", b"y")
        );
        assert!(Integrity::parse(&s).unwrap().check(b"x").is_err());
        // Two sha384 candidates: either may match.
        let s = format!(
            "{}?ct=text/plain {}",
            sri(&digest::SHA384, "sha384", b"a"),
            sri(&digest::SHA384, "sha384", b"b")
        );
        let i = Integrity::parse(&s).unwrap();
        assert!(i.check(b"a").is_ok() && i.check(b"b").is_ok() && i.check(b"c").is_err());
    }

    #[test]
    fn malformed_integrity_is_refused_not_skipped() {
        for (s, says) in [
            ("", "no digest"),
            ("   ", "no digest"),
            ("md5-AAAA", "not sha256"),
            ("sha256", "ALGORITHM-BASE64"),
            ("sha256-***", "not base64"),
            ("sha256-AAAA", "32 bytes"),
        ] {
            let e = Integrity::parse(s).unwrap_err().to_string();
            assert!(e.contains(says), "{s:?}: {e}");
        }
        assert!(Integrity::parse(&"a".repeat(2000)).is_err());
    }
}
