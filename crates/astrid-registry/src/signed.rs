//! A signed text file in one piece: the first line names the publisher's key and carries its
//! ed25519 signature over a context string and every byte after that line. One file, so a
//! publisher replaces it with one atomic rename and a reader never sees a body with another
//! body's signature.

use astrid_crypto::{KeyPair, PublicKey};

/// How the first line starts.
const PREFIX: &str = "#signed-by ";

/// What a signed file is for; each kind signs under its own context, so a signature over a
/// registry index is never valid as one over a release channel (or a distro lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Index,
    Channel,
}

impl Purpose {
    fn context(self) -> &'static [u8] {
        match self {
            Purpose::Index => b"astrid-registry-v1 index.toml\n",
            Purpose::Channel => b"astrid-release-v1 channel.toml\n",
        }
    }
}

fn message(purpose: Purpose, body: &str) -> Vec<u8> {
    let mut m = purpose.context().to_vec();
    m.extend_from_slice(body.as_bytes());
    m
}

/// `body` with its signature line in front.
pub fn sign(purpose: Purpose, body: &str, key: &KeyPair) -> String {
    let sig = key.sign(&message(purpose, body));
    format!("{PREFIX}{} {}\n{body}", key.public_key(), hex::encode(sig))
}

/// The signer and the body of a signed file, or why it is not one. The signature is checked
/// here; whether the signer is trusted is the caller's question.
pub fn open(purpose: Purpose, text: &str) -> Result<(PublicKey, &str), String> {
    let (first, body) = text
        .split_once('\n')
        .ok_or("it has no signature line (the first line must be `#signed-by KEY SIGNATURE`)")?;
    let rest = first
        .strip_prefix(PREFIX)
        .ok_or("it is not signed (the first line must be `#signed-by KEY SIGNATURE`)")?;
    let (key, sig) = rest
        .split_once(' ')
        .ok_or("the signature line has no signature")?;
    let key: PublicKey = key
        .parse()
        .map_err(|e| format!("the signature line's key: {e}"))?;
    let sig: [u8; 64] = hex::decode(sig)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the signature is not 128 hex characters")?;
    key.verify(&message(purpose, body), &sig).map_err(|_| {
        format!(
            "the signature does not verify: the file was changed after {} signed it, or \
             another key signed it",
            key.key_id()
        )
    })?;
    Ok((key, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_body_opens_and_any_change_does_not() {
        let key = KeyPair::from_seed(&[7; 32]);
        let text = sign(Purpose::Index, "serial = 1\n", &key);
        let (who, body) = open(Purpose::Index, &text).unwrap();
        assert_eq!(who, *key.public_key());
        assert_eq!(body, "serial = 1\n");
        let edited = text.replace("serial = 1", "serial = 2");
        assert!(open(Purpose::Index, &edited)
            .unwrap_err()
            .contains("does not verify"));
        // Another purpose's context: the same bytes are not a channel.
        assert!(open(Purpose::Channel, &text).is_err());
        // Re-signed by another key but naming the first: refused.
        let other = KeyPair::from_seed(&[8; 32]);
        let forged = sign(Purpose::Index, "serial = 2\n", &other).replace(
            &other.public_key().to_string(),
            &key.public_key().to_string(),
        );
        assert!(open(Purpose::Index, &forged).is_err());
        assert!(open(Purpose::Index, "serial = 1\n").is_err());
        assert!(open(Purpose::Index, "").is_err());
    }
}
