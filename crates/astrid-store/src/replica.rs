//! Reading a principal's data out whole, for `astrid agent create --clone`: the clone is
//! written through the ordinary setters, so its own limits and quota apply.

use rusqlite::params;

use crate::{PrincipalStore, StoreError};

/// One KV entry: namespace, key, value.
pub type KvEntry = (String, String, Vec<u8>);

impl PrincipalStore {
    /// Every KV entry, by namespace then key.
    pub fn kv_dump(&self) -> Result<Vec<KvEntry>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached("SELECT ns, key, value FROM kv ORDER BY ns, key")?;
        let rows = stmt.query_map([], |row| {
            let key: Vec<u8> = row.get(1)?;
            Ok((
                row.get(0)?,
                String::from_utf8_lossy(&key).into_owned(),
                row.get(2)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every settings override, as (capsule, key, value).
    pub fn config_dump(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt =
            conn.prepare_cached("SELECT capsule, key, value FROM config ORDER BY capsule, key")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Meta entries whose key starts with `prefix` (e.g. the capsules' hook state).
    pub fn meta_dump(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached("SELECT key, value FROM meta ORDER BY key")?;
        let rows = stmt.query_map(params![], |row| Ok((row.get(0)?, row.get(1)?)))?;
        let all: Vec<(String, Vec<u8>)> = rows.collect::<Result<_, _>>()?;
        Ok(all
            .into_iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .collect())
    }
}
