use rusqlite::{params, OptionalExtension};

use crate::{PrincipalStore, StoreError};

/// The principal's capability tokens and revocations. Tokens are stored as their encoded
/// bytes: decoding and signature checks are the caller's (the store trusts nothing in them).
impl PrincipalStore {
    /// Stores a token under its 16-byte id; storing the same id again is a no-op.
    pub fn token_put(&self, id: &[u8; 16], token: &[u8], now_ms: u64) -> Result<(), StoreError> {
        let conn = self.conn.lock();
        conn.prepare_cached(
            "INSERT INTO tokens (id, token, created_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![&id[..], token, now_ms as i64])?;
        Ok(())
    }

    /// Every stored token (revoked ones included), oldest first.
    pub fn token_list(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached("SELECT token FROM tokens ORDER BY created_ms, id")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn token_get(&self, id: &[u8; 16]) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached("SELECT token FROM tokens WHERE id = ?1")?;
        Ok(stmt
            .query_row(params![&id[..]], |row| row.get(0))
            .optional()?)
    }

    /// Records a revocation durably; revoking twice keeps the first time.
    pub fn revoked_add(&self, id: &[u8; 16], now_ms: u64) -> Result<(), StoreError> {
        let conn = self.conn.lock();
        conn.prepare_cached(
            "INSERT INTO revoked (id, revoked_ms) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![&id[..], now_ms as i64])?;
        Ok(())
    }

    pub fn revoked_list(&self) -> Result<Vec<[u8; 16]>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached("SELECT id FROM revoked ORDER BY id")?;
        let rows = stmt.query_map([], |row| row.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for r in rows {
            let bytes = r?;
            let id: [u8; 16] = bytes.as_slice().try_into().map_err(|_| {
                StoreError::Schema(format!("revoked id of {} bytes, not 16", bytes.len()))
            })?;
            out.push(id);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_revocations_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let s = PrincipalStore::open(&path).unwrap();
            s.token_put(&[1; 16], b"first", 10).unwrap();
            s.token_put(&[2; 16], b"second", 20).unwrap();
            s.token_put(&[1; 16], b"ignored", 30).unwrap();
            s.revoked_add(&[2; 16], 40).unwrap();
            s.revoked_add(&[2; 16], 50).unwrap();
        }
        let s = PrincipalStore::open(&path).unwrap();
        assert_eq!(
            s.token_list().unwrap(),
            vec![b"first".to_vec(), b"second".to_vec()]
        );
        assert_eq!(s.token_get(&[1; 16]).unwrap(), Some(b"first".to_vec()));
        assert_eq!(s.token_get(&[9; 16]).unwrap(), None);
        assert_eq!(s.revoked_list().unwrap(), vec![[2; 16]]);
    }
}
