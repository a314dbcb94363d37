use rusqlite::params;

use crate::{check_text, PrincipalStore, StoreError, MAX_NAME_BYTES};

/// Largest settings value the user may store for one key.
pub(crate) const MAX_CONFIG_VALUE_BYTES: usize = 64 * 1024;

/// The user's overrides of capsule settings. Values are opaque text here; the kernel checks
/// them against the capsule's declared settings.
impl PrincipalStore {
    /// Sets `key` for `capsule` to `value`, or removes the override when `value` is `None`.
    pub fn config_set(
        &self,
        capsule: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        check_text("capsule name", capsule, MAX_NAME_BYTES)?;
        check_text("config key", key, MAX_NAME_BYTES)?;
        let conn = self.conn.lock();
        match value {
            Some(value) => {
                if value.len() > MAX_CONFIG_VALUE_BYTES {
                    return Err(StoreError::InvalidArgument(format!(
                        "config value of {} bytes exceeds the {MAX_CONFIG_VALUE_BYTES}-byte limit",
                        value.len()
                    )));
                }
                conn.prepare_cached(
                    "INSERT INTO config (capsule, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (capsule, key) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![capsule, key, value])?;
            }
            None => {
                conn.prepare_cached("DELETE FROM config WHERE capsule = ?1 AND key = ?2")?
                    .execute(params![capsule, key])?;
            }
        }
        Ok(())
    }

    /// Every override for `capsule`, sorted by key (byte order).
    pub fn config_all(&self, capsule: &str) -> Result<Vec<(String, String)>, StoreError> {
        check_text("capsule name", capsule, MAX_NAME_BYTES)?;
        let conn = self.conn.lock();
        let mut stmt =
            conn.prepare_cached("SELECT key, value FROM config WHERE capsule = ?1 ORDER BY key")?;
        let rows = stmt.query_map(params![capsule], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
