use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

/// Migration `i` takes the schema from `user_version` i to i + 1. Append only; never edit a
/// migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // v1: KV (keys as BLOBs so comparisons are plain byte order), a per-namespace key count
    // kept by triggers so quota checks do not scan, and the kernel's meta table.
    "
    CREATE TABLE kv (
        ns    TEXT NOT NULL,
        key   BLOB NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (ns, key)
    ) WITHOUT ROWID;
    CREATE TABLE kv_ns (
        ns   TEXT PRIMARY KEY,
        keys INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TRIGGER kv_count_insert AFTER INSERT ON kv BEGIN
        INSERT INTO kv_ns (ns, keys) VALUES (NEW.ns, 1)
            ON CONFLICT (ns) DO UPDATE SET keys = keys + 1;
    END;
    CREATE TRIGGER kv_count_delete AFTER DELETE ON kv BEGIN
        UPDATE kv_ns SET keys = keys - 1 WHERE ns = OLD.ns;
    END;
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) WITHOUT ROWID;
    ",
    // v2: the principal's capability tokens (encoded bytes, opaque here) and the ids of
    // revoked ones. A revoked token stays in `tokens` so the record of what was granted stays.
    "
    CREATE TABLE tokens (
        id         BLOB PRIMARY KEY,
        token      BLOB NOT NULL,
        created_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE revoked (
        id         BLOB PRIMARY KEY,
        revoked_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    ",
];

/// Bring the schema up to date. Each step re-reads the version inside its own write
/// transaction, so two processes opening a fresh file at once do not both apply a step.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let latest = MIGRATIONS.len();
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let version = usize::try_from(version)
            .map_err(|_| StoreError::Schema(format!("bad schema version {version}")))?;
        if version > latest {
            return Err(StoreError::Schema(format!(
                "store schema version {version} is newer than this build supports ({latest})"
            )));
        }
        if version == latest {
            return Ok(());
        }
        tx.execute_batch(MIGRATIONS[version])?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_fresh_file_and_refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn).unwrap();
        // Idempotent.
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(migrate(&mut conn), Err(StoreError::Schema(m)) if m.contains("99")));
    }
}
