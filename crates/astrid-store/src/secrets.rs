//! Capsule secrets, encrypted at rest with XChaCha20-Poly1305 under a key kept outside the
//! database.

mod key;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::rngs::OsRng;
use rand::TryRngCore;
use rusqlite::{params, OptionalExtension};
use zeroize::Zeroizing;

pub use key::SecretKey;

use crate::{check_text, PrincipalStore, StoreError, MAX_NAME_BYTES};

/// Largest secret value accepted (API keys and tokens, not files).
pub(crate) const MAX_SECRET_BYTES: usize = 16 * 1024;
/// Longest origin string (who or what supplied the secret).
pub(crate) const MAX_ORIGIN_BYTES: usize = 1024;

const NONCE_LEN: usize = 24;
/// Versioned so a future format cannot be confused with this one.
const AAD_PREFIX: &[u8] = b"astrid-secret-v1\0";

/// What `secret_list` shows about a secret: never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMeta {
    pub capsule: String,
    pub name: String,
    pub origin: String,
    pub updated_ms: u64,
}

impl PrincipalStore {
    /// Encrypts and stores `value` as `capsule`'s secret `name`, replacing any previous one.
    pub fn secret_put(
        &self,
        key: &SecretKey,
        capsule: &str,
        name: &str,
        value: &[u8],
        origin: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        check_names(capsule, name)?;
        check_origin(origin)?;
        if value.len() > MAX_SECRET_BYTES {
            return Err(StoreError::InvalidArgument(format!(
                "secret value of {} bytes exceeds the {MAX_SECRET_BYTES}-byte limit",
                value.len()
            )));
        }
        // A fresh random nonce per write: 24 bytes make a collision negligible, which is
        // the point of XChaCha over ChaCha's 12-byte nonce.
        let mut nonce = [0u8; NONCE_LEN];
        OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(StoreError::Random)?;
        let aad = associated_data(capsule, name, origin);
        let ciphertext = cipher(key)
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Secret(format!("could not encrypt {capsule}/{name}")))?;
        let conn = self.conn.lock();
        conn.prepare_cached(
            "INSERT INTO secrets (capsule, name, origin, nonce, ciphertext, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (capsule, name) DO UPDATE SET origin = excluded.origin,
                 nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                 updated_ms = excluded.updated_ms",
        )?
        .execute(params![
            capsule,
            name,
            origin,
            &nonce[..],
            ciphertext,
            now_ms as i64
        ])?;
        Ok(())
    }

    /// The decrypted value of `capsule`'s secret `name` and its origin. A row that does not
    /// decrypt (another key, altered, or copied from another capsule/name/origin) is an
    /// error, never a value.
    // The tuple is the agreed signature; a type alias would only hide it from readers.
    #[allow(clippy::type_complexity)]
    pub fn secret_get(
        &self,
        key: &SecretKey,
        capsule: &str,
        name: &str,
    ) -> Result<Option<(Zeroizing<Vec<u8>>, String)>, StoreError> {
        check_names(capsule, name)?;
        let row: Option<(String, Vec<u8>, Vec<u8>)> = {
            let conn = self.conn.lock();
            let mut stmt = conn.prepare_cached(
                "SELECT origin, nonce, ciphertext FROM secrets WHERE capsule = ?1 AND name = ?2",
            )?;
            stmt.query_row(params![capsule, name], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?
        };
        let Some((origin, nonce, ciphertext)) = row else {
            return Ok(None);
        };
        let undecryptable = || {
            StoreError::Secret(format!(
                "secret {capsule}/{name} could not be decrypted: wrong key, or the stored row \
                 was altered or moved"
            ))
        };
        if nonce.len() != NONCE_LEN {
            return Err(undecryptable());
        }
        let aad = associated_data(capsule, name, &origin);
        let plaintext = cipher(key)
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| undecryptable())?;
        Ok(Some((Zeroizing::new(plaintext), origin)))
    }

    /// Every stored secret's metadata, sorted by capsule then name.
    pub fn secret_list(&self) -> Result<Vec<SecretMeta>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT capsule, name, origin, updated_ms FROM secrets ORDER BY capsule, name",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(SecretMeta {
                capsule: row.get(0)?,
                name: row.get(1)?,
                origin: row.get(2)?,
                updated_ms: row.get::<_, i64>(3)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes the secret; true when it existed.
    pub fn secret_remove(&self, capsule: &str, name: &str) -> Result<bool, StoreError> {
        check_names(capsule, name)?;
        let conn = self.conn.lock();
        let removed = conn
            .prepare_cached("DELETE FROM secrets WHERE capsule = ?1 AND name = ?2")?
            .execute(params![capsule, name])?;
        Ok(removed > 0)
    }
}

fn check_names(capsule: &str, name: &str) -> Result<(), StoreError> {
    check_text("capsule name", capsule, MAX_NAME_BYTES)?;
    check_text("secret name", name, MAX_NAME_BYTES)
}

/// The origin may be empty, but it is a field of the associated data, so it must not
/// contain the NUL separator.
fn check_origin(origin: &str) -> Result<(), StoreError> {
    if origin.is_empty() {
        return Ok(());
    }
    check_text("secret origin", origin, MAX_ORIGIN_BYTES)
}

/// Binds a ciphertext to its row: the same bytes under another capsule, name or origin fail
/// authentication. Unambiguous because none of the fields may contain NUL.
fn associated_data(capsule: &str, name: &str, origin: &str) -> Vec<u8> {
    let mut aad =
        Vec::with_capacity(AAD_PREFIX.len() + capsule.len() + name.len() + origin.len() + 2);
    aad.extend_from_slice(AAD_PREFIX);
    aad.extend_from_slice(capsule.as_bytes());
    aad.push(0);
    aad.extend_from_slice(name.as_bytes());
    aad.push(0);
    aad.extend_from_slice(origin.as_bytes());
    aad
}

fn cipher(key: &SecretKey) -> XChaCha20Poly1305 {
    // The cipher keeps its own copy of the key and zeroizes it on drop.
    XChaCha20Poly1305::new(Key::from_slice(key.bytes()))
}

#[cfg(test)]
mod tests {
    use super::associated_data;

    #[test]
    fn associated_data_separates_fields() {
        assert_eq!(
            associated_data("c", "n", "o"),
            b"astrid-secret-v1\0c\0n\0o".to_vec()
        );
        assert_ne!(
            associated_data("ab", "c", ""),
            associated_data("a", "bc", "")
        );
    }
}
