//! The audit log: who changed which account, every login to an existing account, and the
//! relay's signed checkpoints, in the database next to what it describes. `relay audit` shows
//! and exports it, `relay audit verify` checks it.
//!
//! Entries form a hash chain ([`chain`]): each is appended inside one `BEGIN IMMEDIATE`
//! transaction that reads the previous hash, so the relay and concurrent `relay` commands
//! cannot fork it. A relay given its audit key ([`Checkpointer`]) adds a signed
//! [`checkpoint`] every `every` entries in the same transaction.
//!
//! Old entries are deleted by the retention policy behind a signed prune checkpoint
//! ([`prune`]), so `relay audit verify` still proves what is left.
//!
//! Entries never hold a secret: no password, code, TOTP secret or recovery code.

pub mod chain;
pub mod checkpoint;
pub mod export;
pub mod key;
pub mod prune;
pub mod verify;

use crate::store::db::{Database, DbError};
use checkpoint::Checkpoint;
use ed25519_dalek::SigningKey;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Position in the log (increasing; stable, so exports can resume after it).
    pub id: i64,
    /// When, Unix seconds.
    pub at: u64,
    /// Who: `cli` for the relay's command line, `relay` for the relay itself, else the source
    /// address of a login.
    pub actor: String,
    /// What, e.g. `user.add`, `login.ok`, `login.failed`, `audit.checkpoint`.
    pub action: String,
    /// The account concerned.
    pub subject: Option<String>,
    /// Details (the rule that failed, the changed settings, a checkpoint's signed JSON).
    pub detail: Option<String>,
    /// The session concerned (hex session id).
    pub session: Option<String>,
    /// The entry's chain hash, 64 hex digits (absent only in a damaged log).
    pub hash: Option<String>,
}

/// An entry to append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEntry<'a> {
    /// When, Unix seconds.
    pub at: u64,
    /// Who (see [`Entry::actor`]).
    pub actor: &'a str,
    /// What.
    pub action: &'a str,
    /// The account concerned.
    pub subject: Option<&'a str>,
    /// Details.
    pub detail: Option<&'a str>,
    /// The session concerned (hex session id).
    pub session: Option<&'a str>,
}

/// The audit key and how often the relay signs a checkpoint with it.
pub struct Checkpointer {
    /// The audit signing key.
    pub key: SigningKey,
    /// A checkpoint follows once this many entries have been written since the last one.
    pub every: u64,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("key", &key::public_hex(&self.key))
            .field("every", &self.every)
            .finish()
    }
}

/// Appends an entry with no session.
pub fn record(
    db: &Database,
    at: u64,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    detail: Option<&str>,
) -> Result<(), DbError> {
    let entry = NewEntry {
        at,
        actor,
        action,
        subject,
        detail,
        session: None,
    };
    append(db, &entry).map(drop)
}

/// Appends an entry, then a checkpoint if one is due and `db` has a [`Checkpointer`]; returns
/// the entry's id. Inside the caller's transaction if it has one, else in its own immediate one.
pub fn append(db: &Database, entry: &NewEntry<'_>) -> Result<i64, DbError> {
    let conn = db.conn();
    let tx = begin(conn)?;
    let id = insert(conn, entry)?;
    if let Some(cp) = db.audit_checkpointer() {
        let last = conn
            .query_row(
                "SELECT max(id) FROM audit WHERE action = ?1",
                [checkpoint::ACTION],
                |r| r.get::<_, Option<i64>>(0),
            )?
            .unwrap_or(0);
        if u64::try_from(id.saturating_sub(last)).unwrap_or(0) >= cp.every {
            insert_checkpoint(conn, &cp.key, entry.at)?;
        }
    }
    if let Some(tx) = tx {
        tx.commit()?;
    }
    Ok(id)
}

/// Writes a checkpoint over the newest entry, signed by `db`'s [`Checkpointer`], unless there
/// is none, the log is empty or it already ends with a checkpoint (a relay stopping twice with
/// nothing in between adds nothing); returns its id.
pub fn checkpoint_now(db: &Database, at: u64) -> Result<Option<i64>, DbError> {
    let Some(Checkpointer { key, .. }) = db.audit_checkpointer() else {
        return Ok(None);
    };
    let conn = db.conn();
    let tx = begin(conn)?;
    let last: Option<String> = conn
        .query_row(
            "SELECT action FROM audit ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let id = match last.as_deref() {
        None | Some(checkpoint::ACTION) => None,
        Some(_) => Some(insert_checkpoint(conn, key, at)?),
    };
    if let Some(tx) = tx {
        tx.commit()?;
    }
    Ok(id)
}

/// An immediate transaction (the write lock first, so two writers cannot both read the same
/// previous hash), or none when the caller already holds one.
fn begin(conn: &Connection) -> Result<Option<Transaction<'_>>, DbError> {
    if !conn.is_autocommit() {
        return Ok(None);
    }
    Ok(Some(Transaction::new_unchecked(
        conn,
        TransactionBehavior::Immediate,
    )?))
}

/// The newest entry's id and hash; [`DbError::AuditChain`] when its hash is missing or
/// damaged (the log is refused rather than continued from a guess).
fn head(conn: &Connection) -> Result<(i64, [u8; 32]), DbError> {
    let last: Option<(i64, Option<String>)> = conn
        .query_row(
            "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1).ok().flatten())),
        )
        .optional()?;
    match last {
        None => Ok((0, chain::GENESIS)),
        Some((id, hash)) => hash
            .as_deref()
            .and_then(chain::parse_hash)
            .map(|h| (id, h))
            .ok_or(DbError::AuditChain(id)),
    }
}

fn insert(conn: &Connection, e: &NewEntry<'_>) -> Result<i64, DbError> {
    let (prev_id, prev) = head(conn)?;
    let fields = chain::Fields {
        id: prev_id.checked_add(1).ok_or(DbError::AuditChain(prev_id))?,
        at: i64::try_from(e.at).unwrap_or(i64::MAX),
        actor: e.actor,
        action: e.action,
        subject: e.subject,
        detail: e.detail,
        session: e.session,
    };
    let hash = chain::entry_hash(&prev, &fields);
    conn.execute(
        "INSERT INTO audit (id, at, actor, action, subject, detail, session, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            fields.id,
            fields.at,
            e.actor,
            e.action,
            e.subject,
            e.detail,
            e.session,
            hex::encode(hash)
        ],
    )?;
    Ok(fields.id)
}

fn insert_checkpoint(conn: &Connection, key: &SigningKey, at: u64) -> Result<i64, DbError> {
    let (id, hash) = head(conn)?;
    let count = prune::count_since_genesis(conn)?;
    let cp = Checkpoint::sign(key, id, &hash, count, at);
    let detail = cp.to_detail();
    insert(
        conn,
        &NewEntry {
            at,
            actor: checkpoint::ACTOR,
            action: checkpoint::ACTION,
            subject: None,
            detail: Some(&detail),
            session: None,
        },
    )
}

const COLUMNS: &str = "id, at, actor, action, subject, detail, session, hash";

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        id: r.get(0)?,
        at: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
        actor: r.get(2)?,
        action: r.get(3)?,
        subject: r.get(4)?,
        detail: r.get(5)?,
        session: r.get(6)?,
        hash: r.get(7)?,
    })
}

/// The newest `limit` entries, oldest first.
pub fn recent(db: &Database, limit: usize) -> Result<Vec<Entry>, DbError> {
    let mut stmt = db.conn().prepare(&format!(
        "SELECT {COLUMNS} FROM (SELECT * FROM audit ORDER BY id DESC LIMIT ?1) ORDER BY id"
    ))?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], entry)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// At most `limit` entries with an id above `after`, oldest first.
pub fn since(db: &Database, after: i64, limit: usize) -> Result<Vec<Entry>, DbError> {
    let mut stmt = db.conn().prepare(&format!(
        "SELECT {COLUMNS} FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(
        params![after, i64::try_from(limit).unwrap_or(i64::MAX)],
        entry,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn db() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(&dir.path().join("relay.db")).unwrap();
        (dir, db)
    }

    #[test]
    fn keeps_order_and_limit() {
        let (_dir, db) = db();
        for i in 0..5u64 {
            record(&db, i, "cli", "user.add", Some(&format!("u{i}")), None).unwrap();
        }
        let last = recent(&db, 2).unwrap();
        assert_eq!(last.len(), 2);
        assert_eq!(last[0].subject.as_deref(), Some("u3"));
        assert_eq!(last[1].subject.as_deref(), Some("u4"));
        assert_eq!(recent(&db, 100).unwrap().len(), 5);
        let after = since(&db, 3, 10).unwrap();
        assert_eq!(after.iter().map(|e| e.id).collect::<Vec<_>>(), [4, 5]);
    }

    #[test]
    fn each_entry_chains_on_the_one_before() {
        let (_dir, db) = db();
        record(&db, 1, "cli", "user.add", Some("a"), None).unwrap();
        let entry = NewEntry {
            at: 2,
            actor: "relay",
            action: "session.paired",
            subject: Some("a"),
            detail: None,
            session: Some("00ff"),
        };
        assert_eq!(append(&db, &entry).unwrap(), 2);
        let all = recent(&db, 10).unwrap();
        let h1 = chain::entry_hash(
            &chain::GENESIS,
            &chain::Fields {
                id: 1,
                at: 1,
                actor: "cli",
                action: "user.add",
                subject: Some("a"),
                detail: None,
                session: None,
            },
        );
        assert_eq!(all[0].hash.as_deref(), Some(hex::encode(h1).as_str()));
        let h2 = chain::entry_hash(
            &h1,
            &chain::Fields {
                id: 2,
                at: 2,
                actor: "relay",
                action: "session.paired",
                subject: Some("a"),
                detail: None,
                session: Some("00ff"),
            },
        );
        assert_eq!(all[1].hash.as_deref(), Some(hex::encode(h2).as_str()));
        assert_eq!(all[1].session.as_deref(), Some("00ff"));
    }

    #[test]
    fn a_damaged_head_is_refused_not_continued() {
        let (_dir, db) = db();
        record(&db, 1, "cli", "user.add", None, None).unwrap();
        db.conn()
            .execute("UPDATE audit SET hash = NULL", [])
            .unwrap();
        let e = record(&db, 2, "cli", "user.add", None, None).unwrap_err();
        assert!(matches!(e, DbError::AuditChain(1)), "{e}");
        assert_eq!(recent(&db, 10).unwrap().len(), 1);
    }

    #[test]
    fn checkpoints_follow_every_n_entries_and_at_request() {
        let (_dir, mut db) = db();
        let key = SigningKey::from_bytes(&[9; 32]);
        db.sign_audit_checkpoints(Checkpointer {
            key: key.clone(),
            every: 3,
        });
        for i in 0..7u64 {
            record(&db, i, "cli", "user.add", None, None).unwrap();
        }
        let actions: Vec<String> = recent(&db, 100)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        let cp = checkpoint::ACTION;
        let x = "user.add";
        // 3 entries, a checkpoint (entry 4), 3 more, another checkpoint (entry 8).
        assert_eq!(actions, [x, x, x, cp, x, x, x, cp, x]);
        assert!(checkpoint_now(&db, 10).unwrap().is_some());
        assert_eq!(checkpoint_now(&db, 11).unwrap(), None);
        let last = recent(&db, 1).unwrap().remove(0);
        let signed = Checkpoint::parse(last.detail.as_deref().unwrap()).unwrap();
        assert_eq!((signed.entry, signed.count, signed.at), (9, 9, 10));
        assert!(signed.verify(&key.verifying_key()).is_ok());
    }
}
