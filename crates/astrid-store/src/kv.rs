use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use crate::{PrincipalStore, StoreError};

impl PrincipalStore {
    /// The value stored under `key` in namespace `ns`.
    pub fn kv_get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check_key(ns, key)?;
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached("SELECT value FROM kv WHERE ns = ?1 AND key = ?2")?;
        Ok(stmt
            .query_row(params![ns, key.as_bytes()], |row| row.get(0))
            .optional()?)
    }

    /// Store `value` under `key`, replacing any previous value.
    pub fn kv_set(&self, ns: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.kv_set_capped(ns, key, value, u64::MAX)
    }

    /// Like [`kv_set`](Self::kv_set), but refuses (changing nothing) a write that would grow
    /// the store's keys and values past `cap` bytes: the principal's storage quota.
    pub fn kv_set_capped(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        cap: u64,
    ) -> Result<(), StoreError> {
        self.check_key(ns, key)?;
        self.check_value(value)?;
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old = stored_len(&tx, ns, key)?;
        let total = self.grown_total(&tx, key, old, Some(value.len()), cap)?;
        let updated = tx
            .prepare_cached("UPDATE kv SET value = ?3 WHERE ns = ?1 AND key = ?2")?
            .execute(params![ns, key.as_bytes(), value])?;
        if updated == 0 {
            self.insert_new(&tx, ns, key, value)?;
        }
        tx.commit()?;
        *self.kv_bytes.lock() = Some(total);
        Ok(())
    }

    /// Bytes of keys and values the store holds: what counts against the storage quota.
    pub fn kv_bytes(&self) -> Result<u64, StoreError> {
        let conn = self.conn.lock();
        if let Some(n) = *self.kv_bytes.lock() {
            return Ok(n);
        }
        let n = count_kv_bytes(&conn)?;
        *self.kv_bytes.lock() = Some(n);
        Ok(n)
    }

    /// The total after replacing a value of `old` bytes (absent: `None`) under `key` with
    /// one of `new` bytes; an error when that grows the total past `cap`. Shrinking is
    /// always allowed, so a principal over its quota can still clean up.
    fn grown_total(
        &self,
        tx: &Transaction<'_>,
        key: &str,
        old: Option<usize>,
        new: Option<usize>,
        cap: u64,
    ) -> Result<u64, StoreError> {
        let cached = *self.kv_bytes.lock();
        let total = match cached {
            Some(n) => n,
            None => count_kv_bytes(tx)?,
        };
        let size = |v: Option<usize>| v.map_or(0, |v| (key.len() + v) as u64);
        let after = total.saturating_sub(size(old)).saturating_add(size(new));
        if after > total && after > cap {
            return Err(StoreError::QuotaExceeded(format!(
                "storage quota of {cap} bytes for the key-value store would be exceeded \
                 ({total} bytes used, this write needs {} more)",
                after - total
            )));
        }
        Ok(after)
    }

    /// Remove `key`; true when it existed.
    pub fn kv_delete(&self, ns: &str, key: &str) -> Result<bool, StoreError> {
        self.check_key(ns, key)?;
        let conn = self.conn.lock();
        let removed = conn
            .prepare_cached("DELETE FROM kv WHERE ns = ?1 AND key = ?2")?
            .execute(params![ns, key.as_bytes()])?;
        if removed > 0 {
            // Counted afresh on next use.
            *self.kv_bytes.lock() = None;
        }
        Ok(removed > 0)
    }

    /// Keys in `ns` that start with `prefix`, in byte order. `%` and `_` are ordinary
    /// characters: the match is a byte range, not a LIKE pattern.
    pub fn kv_list(&self, ns: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        check_ns(ns)?;
        let lower = prefix.as_bytes();
        let conn = self.conn.lock();
        let mut keys = Vec::new();
        let mut push = |row: &rusqlite::Row<'_>| -> rusqlite::Result<()> {
            let bytes: Vec<u8> = row.get(0)?;
            // Only `&str` keys are ever written, so this cannot fail on our own data.
            keys.push(String::from_utf8_lossy(&bytes).into_owned());
            Ok(())
        };
        match successor(lower) {
            Some(upper) => {
                let mut stmt = conn.prepare_cached(
                    "SELECT key FROM kv WHERE ns = ?1 AND key >= ?2 AND key < ?3 ORDER BY key",
                )?;
                let mut rows = stmt.query(params![ns, lower, upper])?;
                while let Some(row) = rows.next()? {
                    push(row)?;
                }
            }
            None => {
                let mut stmt = conn.prepare_cached(
                    "SELECT key FROM kv WHERE ns = ?1 AND key >= ?2 ORDER BY key",
                )?;
                let mut rows = stmt.query(params![ns, lower])?;
                while let Some(row) = rows.next()? {
                    push(row)?;
                }
            }
        }
        Ok(keys)
    }

    /// Atomically replace the value under `key` when it currently equals `expected`
    /// (`None` = absent). `new` of `None` deletes. True when the swap happened.
    pub fn kv_cas(
        &self,
        ns: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        self.kv_cas_capped(ns, key, expected, new, u64::MAX)
    }

    /// [`kv_cas`](Self::kv_cas) within a storage cap, as [`kv_set_capped`](Self::kv_set_capped).
    pub fn kv_cas_capped(
        &self,
        ns: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        cap: u64,
    ) -> Result<bool, StoreError> {
        self.check_key(ns, key)?;
        if let Some(value) = new {
            self.check_value(value)?;
        }
        let mut conn = self.conn.lock();
        // IMMEDIATE takes the write lock before the read, so no other connection on the
        // file can change the value between the comparison and the write.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<Vec<u8>> = tx
            .prepare_cached("SELECT value FROM kv WHERE ns = ?1 AND key = ?2")?
            .query_row(params![ns, key.as_bytes()], |row| row.get(0))
            .optional()?;
        if current.as_deref() != expected {
            return Ok(false);
        }
        let total = self.grown_total(
            &tx,
            key,
            current.as_ref().map(Vec::len),
            new.map(<[u8]>::len),
            cap,
        )?;
        match (current.is_some(), new) {
            (true, Some(value)) => {
                tx.prepare_cached("UPDATE kv SET value = ?3 WHERE ns = ?1 AND key = ?2")?
                    .execute(params![ns, key.as_bytes(), value])?;
            }
            (false, Some(value)) => self.insert_new(&tx, ns, key, value)?,
            (true, None) => {
                tx.prepare_cached("DELETE FROM kv WHERE ns = ?1 AND key = ?2")?
                    .execute(params![ns, key.as_bytes()])?;
            }
            (false, None) => {}
        }
        tx.commit()?;
        *self.kv_bytes.lock() = Some(total);
        Ok(true)
    }

    /// Insert a key known to be absent, enforcing the namespace's key quota.
    fn insert_new(
        &self,
        tx: &Transaction<'_>,
        ns: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), StoreError> {
        let count: i64 = tx
            .prepare_cached("SELECT keys FROM kv_ns WHERE ns = ?1")?
            .query_row(params![ns], |row| row.get(0))
            .optional()?
            .unwrap_or(0);
        let max = self.limits.max_keys_per_namespace;
        if u64::try_from(count).unwrap_or(0) >= max {
            return Err(StoreError::QuotaExceeded(format!(
                "namespace {ns} already holds {max} keys"
            )));
        }
        tx.prepare_cached("INSERT INTO kv (ns, key, value) VALUES (?1, ?2, ?3)")?
            .execute(params![ns, key.as_bytes(), value])?;
        Ok(())
    }

    fn check_key(&self, ns: &str, key: &str) -> Result<(), StoreError> {
        check_ns(ns)?;
        if key.is_empty() {
            return Err(StoreError::InvalidArgument("key must not be empty".into()));
        }
        let max = self.limits.max_key_bytes;
        if key.len() > max {
            return Err(StoreError::InvalidArgument(format!(
                "key of {} bytes exceeds the {max}-byte limit",
                key.len()
            )));
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<(), StoreError> {
        let max = self.limits.max_value_bytes;
        if value.len() > max {
            return Err(StoreError::QuotaExceeded(format!(
                "value of {} bytes exceeds the {max}-byte limit",
                value.len()
            )));
        }
        Ok(())
    }
}

/// Length of the value stored under `key`, if any.
fn stored_len(tx: &Transaction<'_>, ns: &str, key: &str) -> Result<Option<usize>, StoreError> {
    let len: Option<i64> = tx
        .prepare_cached("SELECT length(value) FROM kv WHERE ns = ?1 AND key = ?2")?
        .query_row(params![ns, key.as_bytes()], |row| row.get(0))
        .optional()?;
    Ok(len.map(|n| usize::try_from(n).unwrap_or(0)))
}

fn count_kv_bytes(conn: &rusqlite::Connection) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached("SELECT COALESCE(SUM(length(key) + length(value)), 0) FROM kv")?
        .query_row([], |row| row.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn check_ns(ns: &str) -> Result<(), StoreError> {
    if ns.is_empty() {
        return Err(StoreError::InvalidArgument(
            "namespace must not be empty".into(),
        ));
    }
    Ok(())
}

/// The smallest byte string greater than every string starting with `prefix`, or `None`
/// when there is none (empty prefix, or all 0xFF).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut upper = prefix.to_vec();
    while let Some(last) = upper.pop() {
        if last < 0xFF {
            upper.push(last + 1);
            return Some(upper);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::successor;

    #[test]
    fn successor_bounds_the_prefix_range() {
        assert_eq!(successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(successor(b"\xff\xff"), None);
        assert_eq!(successor(b""), None);
    }
}
