use rusqlite::params;

use crate::{check_text, PrincipalStore, StoreError, MAX_NAME_BYTES};

/// Longest target string accepted; a `host:port` pattern never comes close.
pub(crate) const MAX_EGRESS_TARGET_BYTES: usize = 512;

/// The local-network targets the user consented to let each capsule reach. Targets are
/// opaque here: the kernel parses and matches them, so the store cannot disagree with it.
impl PrincipalStore {
    /// Records consent for `capsule` to reach `target`. Allowing again keeps the first time.
    pub fn egress_allow(&self, capsule: &str, target: &str, now_ms: u64) -> Result<(), StoreError> {
        check_text("capsule name", capsule, MAX_NAME_BYTES)?;
        check_text("egress target", target, MAX_EGRESS_TARGET_BYTES)?;
        let conn = self.conn.lock();
        conn.prepare_cached(
            "INSERT INTO egress (capsule, target, created_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (capsule, target) DO NOTHING",
        )?
        .execute(params![capsule, target, now_ms as i64])?;
        Ok(())
    }

    /// Withdraws consent; true when it had been given.
    pub fn egress_revoke(&self, capsule: &str, target: &str) -> Result<bool, StoreError> {
        check_text("capsule name", capsule, MAX_NAME_BYTES)?;
        check_text("egress target", target, MAX_EGRESS_TARGET_BYTES)?;
        let conn = self.conn.lock();
        let removed = conn
            .prepare_cached("DELETE FROM egress WHERE capsule = ?1 AND target = ?2")?
            .execute(params![capsule, target])?;
        Ok(removed > 0)
    }

    /// `(capsule, target)` pairs sorted by capsule then target, for one capsule or all.
    pub fn egress_list(&self, capsule: Option<&str>) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn.lock();
        let pair = |row: &rusqlite::Row<'_>| Ok((row.get(0)?, row.get(1)?));
        let rows = match capsule {
            Some(capsule) => {
                check_text("capsule name", capsule, MAX_NAME_BYTES)?;
                conn.prepare_cached(
                    "SELECT capsule, target FROM egress WHERE capsule = ?1 ORDER BY target",
                )?
                .query_map(params![capsule], pair)?
                .collect::<Result<_, _>>()?
            }
            None => conn
                .prepare_cached("SELECT capsule, target FROM egress ORDER BY capsule, target")?
                .query_map([], pair)?
                .collect::<Result<_, _>>()?,
        };
        Ok(rows)
    }
}
