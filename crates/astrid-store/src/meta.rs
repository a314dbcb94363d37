use rusqlite::{params, OptionalExtension};

use crate::{PrincipalStore, StoreError};

/// Kernel bookkeeping for the principal (for example which capsules have run `install`).
/// Not visible to capsules, so no quota applies.
impl PrincipalStore {
    pub fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?;
        Ok(stmt.query_row(params![key], |row| row.get(0)).optional()?)
    }

    pub fn meta_set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let conn = self.conn.lock();
        conn.prepare_cached(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![key, value])?;
        Ok(())
    }

    /// True when the key existed.
    pub fn meta_delete(&self, key: &str) -> Result<bool, StoreError> {
        let conn = self.conn.lock();
        let removed = conn
            .prepare_cached("DELETE FROM meta WHERE key = ?1")?
            .execute(params![key])?;
        Ok(removed > 0)
    }
}
