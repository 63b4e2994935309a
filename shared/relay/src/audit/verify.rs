//! `relay audit verify`: feeds the log from the database, in id order and one row at a time,
//! to the pure check [`Walk`] of [`sightline_core::audit_chain`].

pub use sightline_core::audit_chain::{Anchor, AnchorError, Bad, Row, Summary, Walk};

use crate::db::{Database, DbError};
use ed25519_dalek::VerifyingKey;

fn bad(entry: i64, what: impl Into<String>) -> Bad {
    Bad {
        entry,
        what: what.into(),
    }
}

/// Reads one row; a value of the wrong type (a hand edit) is a bad entry, not an error.
fn read(r: &rusqlite::Row<'_>) -> Result<Result<Row, Bad>, DbError> {
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

/// Checks the whole log in `db`. The outer error is a database failure; the inner one the
/// first bad entry.
pub fn verify_db(
    db: &Database,
    key: Option<&VerifyingKey>,
    anchor: Option<Anchor>,
) -> Result<Result<Summary, Bad>, DbError> {
    let mut stmt = db.conn().prepare(
        "SELECT id, at, actor, action, subject, detail, session, hash FROM audit ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    let mut walk = Walk::new(key, anchor);
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
