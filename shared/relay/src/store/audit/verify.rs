//! `relay audit verify`: feeds the log from the database, in id order and one row at a time
//! inside one read transaction, to the pure check [`Walk`] of [`sightline_core::audit_chain`],
//! starting from genesis or, in a pruned log, from the newest signed prune checkpoint
//! ([`start`], see [`super::prune`]).

pub use sightline_core::audit_chain::{Anchor, AnchorError, Bad, Row, Summary, Walk};

use super::prune;
use crate::store::db::{Database, DbError};
use ed25519_dalek::VerifyingKey;
use rusqlite::{Connection, Transaction, TransactionBehavior};

fn bad(entry: i64, what: impl Into<String>) -> Bad {
    Bad {
        entry,
        what: what.into(),
    }
}

/// The columns [`read`] expects, in order.
pub(super) const COLUMNS: &str = "id, at, actor, action, subject, detail, session, hash";

/// Reads one row; a value of the wrong type (a hand edit) is a bad entry, not an error.
pub(super) fn read(r: &rusqlite::Row<'_>) -> Result<Result<Row, Bad>, DbError> {
    let id: i64 = r.get(0)?;
    let wrong = |column: &str| bad(id, format!("unreadable: {column} has the wrong type"));
    let row = (|| {
        Ok(Row {
            id,
            at: r.get(1).map_err(|_| wrong("at"))?,
            actor: r.get(2).map_err(|_| wrong("actor"))?,
            action: r.get(3).map_err(|_| wrong("action"))?,
            subject: r.get(4).map_err(|_| wrong("subject"))?,
            detail: r.get(5).map_err(|_| wrong("detail"))?,
            session: r.get(6).map_err(|_| wrong("session"))?,
            hash: r.get(7).map_err(|_| wrong("hash"))?,
        })
    })();
    Ok(row)
}

/// A walk from where the log starts: after the newest prune checkpoint if there is one, else
/// from genesis.
pub fn start(
    conn: &Connection,
    key: Option<&VerifyingKey>,
    anchor: Option<Anchor>,
) -> Result<Result<Walk, Bad>, DbError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM audit WHERE action = ?1 ORDER BY id DESC LIMIT 1"
    ))?;
    let mut rows = stmt.query([prune::ACTION])?;
    Ok(match rows.next()? {
        None => Ok(Walk::new(key, anchor)),
        Some(r) => read(r)?.and_then(|row| Walk::after_prune(key, anchor, &row)),
    })
}

/// Checks the whole log in `db`. The outer error is a database failure; the inner one the
/// first bad entry.
pub fn verify_db(
    db: &Database,
    key: Option<&VerifyingKey>,
    anchor: Option<Anchor>,
) -> Result<Result<Summary, Bad>, DbError> {
    // One snapshot: a prune running meanwhile cannot move the start under the walk.
    let _snapshot = match db.conn().is_autocommit() {
        true => Some(Transaction::new_unchecked(
            db.conn(),
            TransactionBehavior::Deferred,
        )?),
        false => None,
    };
    let mut walk = match start(db.conn(), key, anchor)? {
        Ok(walk) => walk,
        Err(b) => return Ok(Err(b)),
    };
    let mut stmt = db
        .conn()
        .prepare(&format!("SELECT {COLUMNS} FROM audit ORDER BY id"))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let checked = read(r)?.and_then(|row| walk.push(&row));
        if let Err(b) = checked {
            return Ok(Err(b));
        }
    }
    Ok(walk.finish())
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
