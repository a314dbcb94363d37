//! One audit entry: its fields, canonical bytes, hash and signature.

use std::fmt;
use std::str::FromStr;

use astrid_crypto::canonical::{CanonicalReader, CanonicalWriter};
use astrid_crypto::{CryptoError, DecodeError, KeyPair, PublicKey};
use astrid_types::PrincipalId;

/// Domain separation tag that starts every entry's canonical bytes.
pub const ENTRY_DOMAIN: &[u8] = b"astrid-audit-entry-v1\0";
/// Limit on `capsule`, `action` and `resource`.
pub const MAX_TEXT_FIELD: usize = 64 * 1024;
/// Limit on `outcome`, which holds the full outcome of the action.
pub const MAX_OUTCOME: usize = 16 * 1024 * 1024;

/// What was decided about the recorded action. Encoded as one byte (the code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Permitted (by manifest and capability).
    Allowed = 1,
    /// Refused by a gate.
    Denied = 2,
    /// Permitted by a human answer (once, session or always: see the outcome).
    Approved = 3,
    /// Refused by a human answer, a timeout or the absence of anyone to ask.
    Rejected = 4,
    /// An event without a decision: a token minted or revoked, a capsule installed.
    Recorded = 5,
}

impl Decision {
    pub const ALL: [Decision; 5] = [
        Decision::Allowed,
        Decision::Denied,
        Decision::Approved,
        Decision::Rejected,
        Decision::Recorded,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.code() == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Denied => "denied",
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
            Decision::Recorded => "recorded",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Decision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| format!("unknown decision `{s}`"))
    }
}

/// What a caller supplies; the log adds seq, time, principal and the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// The capsule that acted, or `kernel` for the kernel's own actions.
    pub capsule: String,
    /// e.g. `fs.read`, `capability.mint`, `capsule.install`.
    pub action: String,
    /// e.g. `fs:read:/home/me/a.txt`.
    pub resource: String,
    pub decision: Decision,
    /// The complete outcome (text or JSON), not a summary.
    pub outcome: String,
}

impl NewEntry {
    pub fn new(
        capsule: impl Into<String>,
        action: impl Into<String>,
        resource: impl Into<String>,
        decision: Decision,
        outcome: impl Into<String>,
    ) -> Self {
        NewEntry {
            capsule: capsule.into(),
            action: action.into(),
            resource: resource.into(),
            decision,
            outcome: outcome.into(),
        }
    }

    pub(crate) fn check_sizes(&self) -> Result<(), crate::AuditError> {
        let fields = [
            ("capsule", self.capsule.len(), MAX_TEXT_FIELD),
            ("action", self.action.len(), MAX_TEXT_FIELD),
            ("resource", self.resource.len(), MAX_TEXT_FIELD),
            ("outcome", self.outcome.len(), MAX_OUTCOME),
        ];
        for (field, len, max) in fields {
            if len > max {
                return Err(crate::AuditError::FieldTooLong { field, len, max });
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// 1 for a principal's first entry, then +1 each.
    pub seq: u64,
    /// Milliseconds since the Unix epoch when the entry was sequenced.
    pub time_ms: u64,
    pub principal: PrincipalId,
    pub capsule: String,
    pub action: String,
    pub resource: String,
    pub decision: Decision,
    pub outcome: String,
    /// Hash of the previous entry; 32 zero bytes for entry 1.
    pub prev_hash: [u8; 32],
}

impl AuditEntry {
    /// [`ENTRY_DOMAIN`], then seq (u64), time_ms (u64), principal, capsule, action,
    /// resource (UTF-8), decision (one byte), outcome (UTF-8), prev_hash (32 bytes), each as
    /// a `u32 big-endian length || bytes` field.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut w = CanonicalWriter::new(ENTRY_DOMAIN);
        w.u64(self.seq)
            .u64(self.time_ms)
            .str(self.principal.as_str())
            .str(&self.capsule)
            .str(&self.action)
            .str(&self.resource)
            .u8(self.decision.code())
            .str(&self.outcome)
            .bytes(&self.prev_hash);
        w.finish()
    }

    /// Strict inverse of [`canonical_bytes`](Self::canonical_bytes).
    pub fn from_canonical(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = CanonicalReader::new(bytes, ENTRY_DOMAIN)?;
        let seq = r.u64("seq")?;
        let time_ms = r.u64("time_ms")?;
        let principal =
            PrincipalId::new(r.str("principal")?).map_err(|e| DecodeError::Invalid {
                field: "principal",
                reason: e.to_string(),
            })?;
        let capsule = r.str("capsule")?.to_owned();
        let action = r.str("action")?.to_owned();
        let resource = r.str("resource")?.to_owned();
        let code = r.u8("decision")?;
        let decision = Decision::from_code(code).ok_or_else(|| DecodeError::Invalid {
            field: "decision",
            reason: format!("unknown code {code}"),
        })?;
        let outcome = r.str("outcome")?.to_owned();
        let prev_hash = r.fixed::<32>("prev_hash")?;
        r.finish()?;
        Ok(AuditEntry {
            seq,
            time_ms,
            principal,
            capsule,
            action,
            resource,
            decision,
            outcome,
            prev_hash,
        })
    }
}

/// BLAKE3 of the canonical bytes: the value the next entry links to.
pub fn entry_hash(canonical: &[u8]) -> [u8; 32] {
    *blake3::hash(canonical).as_bytes()
}

/// What the signature covers: the canonical bytes followed by their hash. Signing the
/// bytes themselves (not only the hash) means the signature is over the whole entry.
pub fn signing_message(canonical: &[u8], hash: &[u8; 32]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(canonical.len() + 32);
    msg.extend_from_slice(canonical);
    msg.extend_from_slice(hash);
    msg
}

/// An entry with its canonical bytes, hash and signature: what one record on disk holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEntry {
    pub entry: AuditEntry,
    pub canonical: Vec<u8>,
    pub hash: [u8; 32],
    pub signature: [u8; 64],
}

impl SealedEntry {
    pub fn seal(entry: AuditEntry, key: &KeyPair) -> Self {
        let canonical = entry.canonical_bytes();
        let hash = entry_hash(&canonical);
        let signature = key.sign(&signing_message(&canonical, &hash));
        SealedEntry {
            entry,
            canonical,
            hash,
            signature,
        }
    }

    /// Decodes a record's canonical bytes; does not check the signature.
    pub fn from_parts(canonical: Vec<u8>, signature: [u8; 64]) -> Result<Self, DecodeError> {
        let entry = AuditEntry::from_canonical(&canonical)?;
        let hash = entry_hash(&canonical);
        Ok(SealedEntry {
            entry,
            canonical,
            hash,
            signature,
        })
    }

    pub fn verify(&self, key: &PublicKey) -> Result<(), CryptoError> {
        key.verify(
            &signing_message(&self.canonical, &self.hash),
            &self.signature,
        )
    }
}
