//! The relay's side of the hash chain ([`sightline_core::audit_chain`]): the one-time linking
//! of entries written before the chain existed.

pub use sightline_core::audit_chain::{entry_hash, parse_hash, Fields, ENTRY_TAG, GENESIS};

use rusqlite::Connection;

/// Gives every existing entry its hash, in id order from [`GENESIS`]. Run once, inside the
/// migration that adds the `hash` column, so that a hash later removed by hand is reported by
/// `relay audit verify` instead of being filled in again.
pub fn link_existing(conn: &Connection) -> rusqlite::Result<usize> {
    let mut read = conn
        .prepare("SELECT id, at, actor, action, subject, detail, session FROM audit ORDER BY id")?;
    let mut write = conn.prepare("UPDATE audit SET hash = ?1 WHERE id = ?2")?;
    let mut rows = read.query([])?;
    let mut prev = GENESIS;
    let mut linked = 0;
    while let Some(r) = rows.next()? {
        let (actor, action): (String, String) = (r.get(2)?, r.get(3)?);
        let (subject, detail, session): (Option<String>, Option<String>, Option<String>) =
            (r.get(4)?, r.get(5)?, r.get(6)?);
        let fields = Fields {
            id: r.get(0)?,
            at: r.get(1)?,
            actor: &actor,
            action: &action,
            subject: subject.as_deref(),
            detail: detail.as_deref(),
            session: session.as_deref(),
        };
        prev = entry_hash(&prev, &fields);
        write.execute(rusqlite::params![hex::encode(prev), fields.id])?;
        linked += 1;
    }
    Ok(linked)
}
