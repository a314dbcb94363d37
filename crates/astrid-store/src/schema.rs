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
    // v3: the user's per-capsule settings overrides, capsule secrets (ciphertext only; the
    // key lives outside the database), and the local-network targets the user let each
    // capsule reach (opaque strings here; the kernel parses them).
    "
    CREATE TABLE config (
        capsule TEXT NOT NULL,
        key     TEXT NOT NULL,
        value   TEXT NOT NULL,
        PRIMARY KEY (capsule, key)
    ) WITHOUT ROWID;
    CREATE TABLE secrets (
        capsule    TEXT NOT NULL,
        name       TEXT NOT NULL,
        origin     TEXT NOT NULL,
        nonce      BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (capsule, name)
    ) WITHOUT ROWID;
    CREATE TABLE egress (
        capsule    TEXT NOT NULL,
        target     TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (capsule, target)
    ) WITHOUT ROWID;
    ",
    // v4: the principal's paired devices. Only a BLAKE3 hash of each device secret is kept:
    // a copy of this file lets nobody log in. Revoked rows stay as the record.
    "
    CREATE TABLE devices (
        id          BLOB PRIMARY KEY,
        secret_hash BLOB NOT NULL,
        label       TEXT NOT NULL,
        scope       TEXT NOT NULL,
        created_ms  INTEGER NOT NULL,
        expires_ms  INTEGER,
        revoked_ms  INTEGER
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

    #[test]
    fn upgrading_a_v2_file_keeps_its_data_and_adds_v3_tables() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("s.db")).unwrap();
        // A file as the previous release left it.
        for step in &MIGRATIONS[..2] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute(
            "INSERT INTO kv (ns, key, value) VALUES ('n', X'6b', X'76')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO tokens (id, token, created_ms) VALUES (X'01', X'02', 3)",
            [],
        )
        .unwrap();

        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        let kv: Vec<u8> = conn
            .query_row("SELECT value FROM kv WHERE ns = 'n'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kv, b"v");
        let keys: i64 = conn
            .query_row("SELECT keys FROM kv_ns WHERE ns = 'n'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(keys, 1);
        for table in ["config", "secrets", "egress", "tokens"] {
            let n: i64 = conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, i64::from(table == "tokens"), "{table}");
        }
    }
}
