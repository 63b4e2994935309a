//! Where exported entries come from: the [`EntrySource`] trait, read by id after a cursor,
//! and its implementation over the relay's audit table ([`AuditTable`]).
//!
//! The table is the spool: the exporter keeps only a cursor, so a collector outage of any
//! length loses nothing. Columns a later schema adds go into [`ExportEntry::extra`] and so
//! reach the collector without changing the formatter.

use crate::store::db::{Database, DbError};
use serde_json::Value;
use std::collections::BTreeMap;

/// One audit entry as the collector receives it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportEntry {
    /// The entry's stable id (increasing; lets a collector drop duplicates).
    pub id: u64,
    /// When, Unix seconds.
    pub at: u64,
    /// Who: `cli`, `relay`, or a source address.
    pub actor: String,
    /// What, e.g. `login.failed`.
    pub action: String,
    /// The account concerned.
    pub subject: Option<String>,
    /// Details.
    pub detail: Option<String>,
    /// Further fields (a session id, a chain hash), flattened into the JSON object; string
    /// values with a valid parameter name are also sent as structured data.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Errors reading entries.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Entries in id order, read after a cursor. Called on a blocking thread.
pub trait EntrySource: Send + 'static {
    /// Up to `limit` entries with ids greater than `after`, in increasing id order.
    fn after(&mut self, after: u64, limit: usize) -> Result<Vec<ExportEntry>, SourceError>;

    /// The greatest id stored, 0 when empty.
    fn newest(&mut self) -> Result<u64, SourceError>;
}

/// The relay's `audit` table, through a connection of the exporter's own.
#[derive(Debug)]
pub struct AuditTable {
    db: Database,
}

impl AuditTable {
    /// Reads through `db` (open a separate connection: the relay's stays free).
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl EntrySource for AuditTable {
    fn after(&mut self, after: u64, limit: usize) -> Result<Vec<ExportEntry>, SourceError> {
        let mut stmt = self.db.conn().prepare_cached(
            "SELECT id, at, actor, action, subject, detail, session, hash FROM audit
             WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            [
                i64::try_from(after).unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX),
            ],
            |r| {
                // The session an entry concerns and its chain hash: the collector can then
                // check the chain and the checkpoints it receives.
                let mut extra = BTreeMap::new();
                for (name, column) in [("session", 6), ("hash", 7)] {
                    if let Some(v) = r.get::<_, Option<String>>(column)? {
                        extra.insert(name.to_string(), Value::String(v));
                    }
                }
                Ok(ExportEntry {
                    id: to_u64(r.get(0)?),
                    at: to_u64(r.get(1)?),
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    subject: r.get(4)?,
                    detail: r.get(5)?,
                    extra,
                })
            },
        )?;
        Ok(rows
            .collect::<rusqlite::Result<_>>()
            .map_err(DbError::from)?)
    }

    fn newest(&mut self) -> Result<u64, SourceError> {
        let id: Option<i64> = self
            .db
            .conn()
            .query_row("SELECT MAX(id) FROM audit", [], |r| r.get(0))
            .map_err(DbError::from)?;
        Ok(id.map_or(0, to_u64))
    }
}

impl From<rusqlite::Error> for SourceError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(DbError::from(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit;

    #[test]
    fn reads_after_the_cursor_in_id_order_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let db = Database::create(&path).unwrap();
        for i in 0..5u64 {
            audit::record(
                &db,
                100 + i,
                "cli",
                "user.add",
                Some(&format!("u{i}")),
                None,
            )
            .unwrap();
        }
        let mut table = AuditTable::new(Database::open(&path).unwrap());
        assert_eq!(table.newest().unwrap(), 5);
        let first = table.after(0, 2).unwrap();
        assert_eq!(first.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(first[0].subject.as_deref(), Some("u0"));
        assert_eq!(first[0].at, 100);
        assert!(first[0].extra["hash"]
            .as_str()
            .is_some_and(|h| h.len() == 64));
        let rest = table.after(2, 100).unwrap();
        assert_eq!(rest.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4, 5]);
        assert!(table.after(5, 100).unwrap().is_empty());
    }

    #[test]
    fn json_has_the_stable_id_and_the_extra_fields() {
        let mut e = ExportEntry {
            id: 7,
            at: 1,
            actor: "cli".into(),
            action: "user.add".into(),
            subject: None,
            detail: None,
            extra: BTreeMap::new(),
        };
        e.extra.insert("session".into(), Value::from("abc"));
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"id":7,"at":1,"actor":"cli","action":"user.add","subject":null,"detail":null,"session":"abc"}"#
        );
    }
}
