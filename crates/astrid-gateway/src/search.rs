//! Full-text search over a principal's threads: an in-memory SQLite FTS5 index per principal,
//! filled only from what that principal's own daemon connection returned (`session.v1.list`
//! and `session.v1.history`), so an index can hold nothing its principal could not read.
//! It is refreshed on each search for the threads whose update time or message count
//! changed, and forgets deleted threads. The gateway keeps no copy on disk: the session
//! capsule's store stays the only record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use astrid_client::Client;
use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::agent::{self, Thread};
use crate::error::ApiError;

/// One principal's index and what it was built from.
struct Index {
    db: Connection,
    /// thread id → (updated_ms, messages) when indexed.
    seen: HashMap<String, (u64, u64)>,
}

#[derive(Default)]
pub struct Search {
    by_principal: Mutex<HashMap<String, Arc<Mutex<Index>>>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Hit {
    pub thread: Thread,
    /// Position of the message in the thread's history, from 0.
    pub message: u64,
    pub role: String,
    /// The matching passage, matches between `«` and `»`.
    pub snippet: String,
    /// FTS5's bm25 score: lower is a better match.
    pub rank: f64,
}

fn index_err(e: rusqlite::Error) -> ApiError {
    ApiError::upstream(format!("search index: {e}"))
}

fn new_index() -> Result<Index, ApiError> {
    let db = Connection::open_in_memory().map_err(index_err)?;
    db.execute_batch(
        "CREATE VIRTUAL TABLE msg USING fts5(thread UNINDEXED, seq UNINDEXED, role UNINDEXED, \
         text, tokenize = 'unicode61 remove_diacritics 2');",
    )
    .map_err(index_err)?;
    Ok(Index {
        db,
        seen: HashMap::new(),
    })
}

/// The searchable text of a normalised message: its content, and a tool call's arguments.
fn message_text(m: &Value) -> String {
    let mut text = m["content"].as_str().unwrap_or_default().to_string();
    if let Some(calls) = m["tool_calls"].as_array() {
        for c in calls {
            text.push('\n');
            text.push_str(c["name"].as_str().unwrap_or_default());
            text.push(' ');
            text.push_str(&c["arguments"].to_string());
        }
    }
    text
}

/// A person's words as an FTS5 query: every word must appear (each quoted, so nothing they
/// type is taken as query syntax).
pub fn fts_query(q: &str) -> Option<String> {
    let terms: Vec<String> = q
        .split_whitespace()
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

impl Search {
    fn index_of(&self, principal: &str) -> Result<Arc<Mutex<Index>>, ApiError> {
        let mut all = self.by_principal.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = all.get(principal) {
            return Ok(i.clone());
        }
        let i = Arc::new(Mutex::new(new_index()?));
        all.insert(principal.to_string(), i.clone());
        Ok(i)
    }

    /// Brings `principal`'s index up to date through `client` (a connection acting for that
    /// principal), then searches it.
    pub async fn search(
        &self,
        principal: &str,
        client: &Client,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Hit>, ApiError> {
        let q = fts_query(query).ok_or_else(|| ApiError::bad_request("the query `q` is empty"))?;
        let index = self.index_of(principal)?;
        let threads = agent::list(client).await?;
        let stale: Vec<&Thread> = {
            let i = index.lock().unwrap_or_else(|e| e.into_inner());
            threads
                .iter()
                .filter(|t| i.seen.get(&t.id) != Some(&(t.updated_ms, t.messages)))
                .collect()
        };
        let mut fresh = Vec::new();
        for t in stale {
            fresh.push((t, agent::history(client, &t.id).await?));
        }
        let by_id: HashMap<&str, &Thread> = threads.iter().map(|t| (t.id.as_str(), t)).collect();
        let mut i = index.lock().unwrap_or_else(|e| e.into_inner());
        let Index { db, seen } = &mut *i;
        let tx = db.transaction().map_err(index_err)?;
        let gone: Vec<String> = seen
            .keys()
            .filter(|id| !by_id.contains_key(id.as_str()))
            .cloned()
            .collect();
        for id in gone.iter().chain(fresh.iter().map(|(t, _)| &t.id)) {
            tx.execute("DELETE FROM msg WHERE thread = ?1", params![id])
                .map_err(index_err)?;
        }
        for (t, messages) in &fresh {
            for (n, m) in messages.iter().enumerate() {
                tx.execute(
                    "INSERT INTO msg (thread, seq, role, text) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        t.id,
                        n as i64,
                        m["role"].as_str().unwrap_or_default(),
                        message_text(m)
                    ],
                )
                .map_err(index_err)?;
            }
        }
        tx.commit().map_err(index_err)?;
        for id in gone {
            seen.remove(&id);
        }
        for (t, _) in fresh {
            seen.insert(t.id.clone(), (t.updated_ms, t.messages));
        }
        let mut stmt = db
            .prepare(
                "SELECT thread, seq, role, snippet(msg, 3, '«', '»', '…', 12), bm25(msg) \
                 FROM msg WHERE msg MATCH ?1 ORDER BY bm25(msg) LIMIT ?2",
            )
            .map_err(index_err)?;
        let rows = stmt
            .query_map(params![q, limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, f64>(4)?,
                ))
            })
            .map_err(index_err)?;
        let mut hits = Vec::new();
        for row in rows {
            let (thread, seq, role, snippet, rank) = row.map_err(index_err)?;
            if let Some(t) = by_id.get(thread.as_str()) {
                hits.push(Hit {
                    thread: (*t).clone(),
                    message: seq as u64,
                    role,
                    snippet,
                    rank,
                });
            }
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_words_never_become_query_syntax() {
        assert_eq!(fts_query("oat  milk"), Some("\"oat\" \"milk\"".into()));
        assert_eq!(
            fts_query("a\"b OR c*"),
            Some("\"a\"\"b\" \"OR\" \"c*\"".into())
        );
        assert_eq!(fts_query("  "), None);
    }

    #[test]
    fn the_index_ranks_matches_and_marks_them() {
        let i = new_index().unwrap();
        for (seq, text) in [
            (0, "buy oat milk and oat flakes"),
            (1, "call the plumber"),
            (2, "oat"),
        ] {
            i.db.execute(
                "INSERT INTO msg (thread, seq, role, text) VALUES ('t', ?1, 'user', ?2)",
                params![seq, text],
            )
            .unwrap();
        }
        let q = fts_query("oat").unwrap();
        let mut stmt = i
            .db
            .prepare("SELECT seq, snippet(msg, 3, '«', '»', '…', 12) FROM msg WHERE msg MATCH ?1 ORDER BY bm25(msg)")
            .unwrap();
        let got: Vec<(i64, String)> = stmt
            .query_map([q], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (2, "«oat»".to_string()));
        assert_eq!(got[1].1, "buy «oat» milk and «oat» flakes");
    }
}
