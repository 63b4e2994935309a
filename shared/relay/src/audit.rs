//! The audit log: who changed which account, and every login to an existing account, in the
//! database next to what it describes. `relay audit` shows it.
//!
//! Entries never hold a secret: no password, code, TOTP secret or recovery code.

use crate::db::{Database, DbError};
use rusqlite::params;

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// When, Unix seconds.
    pub at: u64,
    /// Who: `cli` for the relay's command line, else the source address of a login.
    pub actor: String,
    /// What, e.g. `user.add`, `login.ok`, `login.failed`.
    pub action: String,
    /// The account concerned.
    pub subject: Option<String>,
    /// Details (the rule that failed, the changed settings).
    pub detail: Option<String>,
}

/// Appends an entry.
pub fn record(
    db: &Database,
    at: u64,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    detail: Option<&str>,
) -> Result<(), DbError> {
    record_in(db.conn(), at, actor, action, subject, detail)
}

/// Appends an entry on `conn` (a transaction that writes what the entry describes).
pub fn record_in(
    conn: &rusqlite::Connection,
    at: u64,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    detail: Option<&str>,
) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO audit (at, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            i64::try_from(at).unwrap_or(i64::MAX),
            actor,
            action,
            subject,
            detail
        ],
    )?;
    Ok(())
}

/// The newest `limit` entries, oldest first.
pub fn recent(db: &Database, limit: usize) -> Result<Vec<Entry>, DbError> {
    let mut stmt = db.conn().prepare(
        "SELECT at, actor, action, subject, detail FROM
            (SELECT * FROM audit ORDER BY id DESC LIMIT ?1) ORDER BY id",
    )?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
        Ok(Entry {
            at: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
            actor: r.get(1)?,
            action: r.get(2)?,
            subject: r.get(3)?,
            detail: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(&dir.path().join("relay.db")).unwrap();
        for i in 0..5u64 {
            record(&db, i, "cli", "user.add", Some(&format!("u{i}")), None).unwrap();
        }
        let last = recent(&db, 2).unwrap();
        assert_eq!(last.len(), 2);
        assert_eq!(last[0].subject.as_deref(), Some("u3"));
        assert_eq!(last[1].subject.as_deref(), Some("u4"));
        assert_eq!(recent(&db, 100).unwrap().len(), 5);
    }
}
