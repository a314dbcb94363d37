//! The principal's paired devices. The store keeps what the kernel verifies a device token
//! against, never the secret itself: its hash is computed by the kernel, opaque here.

use rusqlite::{params, OptionalExtension, Row};

use crate::{check_text, PrincipalStore, StoreError};

/// Longest device label and scope text accepted.
const MAX_DEVICE_TEXT: usize = 4096;

/// One device as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub id: [u8; 16],
    pub secret_hash: [u8; 32],
    pub label: String,
    /// The kernel's encoding of the scope; opaque here.
    pub scope: String,
    pub created_ms: u64,
    pub expires_ms: Option<u64>,
    pub revoked_ms: Option<u64>,
}

impl PrincipalStore {
    /// Stores a new device; an id that already exists is an error (ids are random).
    pub fn device_put(&self, row: &DeviceRow) -> Result<(), StoreError> {
        if !row.label.is_empty() {
            check_text("device label", &row.label, MAX_DEVICE_TEXT)?;
        }
        check_text("device scope", &row.scope, MAX_DEVICE_TEXT)?;
        let conn = self.conn.lock();
        conn.prepare_cached(
            "INSERT INTO devices (id, secret_hash, label, scope, created_ms, expires_ms, revoked_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            &row.id[..],
            &row.secret_hash[..],
            row.label,
            row.scope,
            row.created_ms as i64,
            row.expires_ms.map(|v| v as i64),
            row.revoked_ms.map(|v| v as i64),
        ])?;
        Ok(())
    }

    pub fn device_get(&self, id: &[u8; 16]) -> Result<Option<DeviceRow>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, secret_hash, label, scope, created_ms, expires_ms, revoked_ms
             FROM devices WHERE id = ?1",
        )?;
        stmt.query_row(params![&id[..]], raw)
            .optional()?
            .map(decode)
            .transpose()
    }

    /// Every device, revoked ones included, oldest first.
    pub fn device_list(&self) -> Result<Vec<DeviceRow>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, secret_hash, label, scope, created_ms, expires_ms, revoked_ms
             FROM devices ORDER BY created_ms, id",
        )?;
        let rows = stmt.query_map([], raw)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(decode(r?)?);
        }
        Ok(out)
    }

    /// Marks a device revoked; returns false if there is no such device. Revoking twice
    /// keeps the first time.
    pub fn device_revoke(&self, id: &[u8; 16], now_ms: u64) -> Result<bool, StoreError> {
        let conn = self.conn.lock();
        let n = conn
            .prepare_cached(
                "UPDATE devices SET revoked_ms = coalesce(revoked_ms, ?2) WHERE id = ?1",
            )?
            .execute(params![&id[..], now_ms as i64])?;
        Ok(n == 1)
    }
}

type RawRow = (
    Vec<u8>,
    Vec<u8>,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);

fn raw(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn decode(r: RawRow) -> Result<DeviceRow, StoreError> {
    let (id, hash, label, scope, created, expires, revoked) = r;
    let bad = |what: &str, n: usize| StoreError::Schema(format!("device {what} of {n} bytes"));
    Ok(DeviceRow {
        id: id.as_slice().try_into().map_err(|_| bad("id", id.len()))?,
        secret_hash: hash
            .as_slice()
            .try_into()
            .map_err(|_| bad("secret hash", hash.len()))?,
        label,
        scope,
        created_ms: created as u64,
        expires_ms: expires.map(|v| v as u64),
        revoked_ms: revoked.map(|v| v as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u8) -> DeviceRow {
        DeviceRow {
            id: [id; 16],
            secret_hash: [7; 32],
            label: "phone".into(),
            scope: "use-only".into(),
            created_ms: u64::from(id),
            expires_ms: Some(99),
            revoked_ms: None,
        }
    }

    #[test]
    fn devices_persist_and_revocation_keeps_the_first_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let s = PrincipalStore::open(&path).unwrap();
            s.device_put(&row(1)).unwrap();
            s.device_put(&row(2)).unwrap();
            assert!(s.device_put(&row(1)).is_err(), "ids are unique");
            assert!(s.device_revoke(&[2; 16], 40).unwrap());
            assert!(s.device_revoke(&[2; 16], 50).unwrap());
            assert!(!s.device_revoke(&[9; 16], 50).unwrap());
        }
        let s = PrincipalStore::open(&path).unwrap();
        let list = s.device_list().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0], row(1));
        assert_eq!(list[1].revoked_ms, Some(40));
        assert_eq!(s.device_get(&[1; 16]).unwrap(), Some(row(1)));
        assert_eq!(s.device_get(&[9; 16]).unwrap(), None);
    }
}
