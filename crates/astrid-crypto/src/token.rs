//! Capability tokens: a signed statement "principal P may touch resources matching R, from
//! `issued_at` until `expires_at`", optionally derived from (and no wider than) a parent.

use std::fmt;
use std::str::FromStr;

use astrid_types::{CapsuleName, PrincipalId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::canonical::{CanonicalReader, CanonicalWriter};
use crate::error::{CryptoError, DecodeError};
use crate::keys::PublicKey;
use crate::pattern::ResourcePattern;

/// The version of a token usable by any capsule of its principal.
pub const TOKEN_VERSION: u8 = 1;
/// The version of a token bound to one capsule: the version 1 fields, then the capsule name.
/// A token's version follows from whether it is bound, so each token has one encoding and
/// tokens minted before binding existed keep verifying.
pub const TOKEN_VERSION_BOUND: u8 = 2;
/// Domain separation tag that starts every token's canonical bytes.
pub const TOKEN_DOMAIN: &[u8] = b"astrid-capability-token-v1\0";
/// Prefix of the text form, so a token pasted in the wrong place is recognisable.
pub const TOKEN_TEXT_PREFIX: &str = "astrid-cap1.";
/// Upper bound on a stored token; real ones are a few hundred bytes.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A token's random 128-bit id, written as 32 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(pub [u8; 16]);

impl TokenId {
    pub fn random() -> Self {
        TokenId(rand::random())
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({self})")
    }
}

impl FromStr for TokenId {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, CryptoError> {
        let mut id = [0u8; 16];
        if s.len() != 32 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(DecodeError::Text(format!(
                "token id `{s}` must be 32 lowercase hex characters"
            ))
            .into());
        }
        hex::decode_to_slice(s, &mut id)
            .map_err(|_| DecodeError::Text(format!("token id `{s}` is not hex")))?;
        Ok(TokenId(id))
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct CapabilityToken {
    pub version: u8,
    pub id: TokenId,
    /// Key id (16 hex) of the key that signed this token.
    pub issuer_key_id: String,
    pub principal: PrincipalId,
    pub resource: ResourcePattern,
    pub issued_at_ms: u64,
    pub expires_at_ms: Option<u64>,
    pub parent: Option<TokenId>,
    /// The one capsule this token is good for; `None`: every capsule of the principal.
    /// `Some` exactly when `version` is [`TOKEN_VERSION_BOUND`].
    pub capsule: Option<CapsuleName>,
    pub signature: [u8; 64],
}

impl CapabilityToken {
    /// The canonical bytes the signature covers: [`TOKEN_DOMAIN`], then version, id, issuer
    /// key id, principal, resource pattern (canonical text), issued-at, expires-at, parent,
    /// and for a bound token (version 2) the capsule name, each as a length-prefixed field
    /// (see [`crate::canonical`]).
    pub fn signing_bytes(&self) -> Vec<u8> {
        self.writer().finish()
    }

    fn writer(&self) -> CanonicalWriter {
        let mut w = CanonicalWriter::new(TOKEN_DOMAIN);
        w.u8(self.version)
            .bytes(&self.id.0)
            .str(&self.issuer_key_id)
            .str(self.principal.as_str())
            .str(&self.resource.to_string())
            .u64(self.issued_at_ms)
            .opt_u64(self.expires_at_ms)
            .opt_bytes(self.parent.as_ref().map(|p| &p.0[..]));
        if let Some(capsule) = &self.capsule {
            w.str(capsule.as_ref());
        }
        w
    }

    /// Storage form: the signing bytes followed by the signature as one more field.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = self.writer();
        w.bytes(&self.signature);
        w.finish()
    }

    /// Strict inverse of [`to_bytes`](Self::to_bytes): wrong tag, version, lengths, a
    /// non-canonical pattern or trailing bytes are all errors. Does not check the signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() > MAX_TOKEN_BYTES {
            return Err(DecodeError::Invalid {
                field: "token",
                reason: format!("longer than {MAX_TOKEN_BYTES} bytes"),
            }
            .into());
        }
        let mut r = CanonicalReader::new(bytes, TOKEN_DOMAIN)?;
        let version = r.u8("version")?;
        if version != TOKEN_VERSION && version != TOKEN_VERSION_BOUND {
            return Err(DecodeError::Version(version).into());
        }
        let id = TokenId(r.fixed::<16>("id")?);
        let issuer_key_id = r.str("issuer_key_id")?;
        if issuer_key_id.len() != 16
            || !issuer_key_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid(
                "issuer_key_id",
                "must be 16 lowercase hex characters",
            ));
        }
        let principal = PrincipalId::new(r.str("principal")?)
            .map_err(|e| invalid("principal", &e.to_string()))?;
        let resource = ResourcePattern::parse_canonical(r.str("resource")?)
            .map_err(|e| invalid("resource", &e.to_string()))?;
        let issued_at_ms = r.u64("issued_at_ms")?;
        let expires_at_ms = r.opt_u64("expires_at_ms")?;
        let parent = r.opt_fixed::<16>("parent")?.map(TokenId);
        let capsule = if version == TOKEN_VERSION_BOUND {
            Some(
                CapsuleName::new(r.str("capsule")?)
                    .map_err(|e| invalid("capsule", &e.to_string()))?,
            )
        } else {
            None
        };
        let signature = r.fixed::<64>("signature")?;
        r.finish()?;
        Ok(CapabilityToken {
            version,
            id,
            issuer_key_id: issuer_key_id.to_owned(),
            principal,
            resource,
            issued_at_ms,
            expires_at_ms,
            parent,
            capsule,
            signature,
        })
    }

    /// `astrid-cap1.` followed by the storage bytes in unpadded base64url: one word that
    /// survives shells, URLs and copy-paste.
    pub fn to_text(&self) -> String {
        format!(
            "{TOKEN_TEXT_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(self.to_bytes())
        )
    }

    pub fn from_text(text: &str) -> Result<Self, CryptoError> {
        let body = text.trim().strip_prefix(TOKEN_TEXT_PREFIX).ok_or_else(|| {
            DecodeError::Text(format!("token text must start with `{TOKEN_TEXT_PREFIX}`"))
        })?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(DecodeError::Base64)?;
        Self::from_bytes(&bytes)
    }

    /// Checks the signature with `key`. The caller chooses the key; this does not look at
    /// `issuer_key_id` beyond requiring it to name `key`.
    pub fn verify_signature(&self, key: &PublicKey) -> Result<(), CryptoError> {
        if self.issuer_key_id != key.key_id() {
            return Err(CryptoError::BadSignature);
        }
        key.verify(&self.signing_bytes(), &self.signature)
    }
}

fn invalid(field: &'static str, reason: &str) -> CryptoError {
    DecodeError::Invalid {
        field,
        reason: reason.to_owned(),
    }
    .into()
}

impl fmt::Debug for CapabilityToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapabilityToken")
            .field("version", &self.version)
            .field("id", &self.id)
            .field("issuer_key_id", &self.issuer_key_id)
            .field("principal", &self.principal)
            .field("resource", &format_args!("{}", self.resource))
            .field("issued_at_ms", &self.issued_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("parent", &self.parent)
            .field("capsule", &self.capsule)
            .field(
                "signature",
                &format_args!("{}", hex::encode(self.signature)),
            )
            .finish()
    }
}

impl FromStr for CapabilityToken {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, CryptoError> {
        Self::from_text(s)
    }
}

impl fmt::Display for CapabilityToken {
    /// The text form (see [`to_text`](Self::to_text)).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}
