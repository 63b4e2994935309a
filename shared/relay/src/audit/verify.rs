//! `relay audit verify`: recomputes the hash chain from the genesis hash (or, in a pruned log,
//! from the hash the newest signed prune checkpoint vouches for, see [`super::prune`]), checks
//! every checkpoint's signature against the audit public key and that it matches the entries
//! before it, and, given an anchor (an entry exported earlier), that the log still holds that
//! entry with that hash. Reports the first bad entry.
//!
//! [`Walk`] is the check itself, fed one row at a time with no I/O; [`verify_db`] feeds it
//! from the database in id order, holding one row at a time, inside one read transaction.

use super::chain::{self, Fields, GENESIS};
use super::checkpoint::{self, Checkpoint};
use super::prune;
use crate::db::{Database, DbError};
use ed25519_dalek::VerifyingKey;
use rusqlite::{Connection, Transaction, TransactionBehavior};

/// The first bad entry and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry #{entry}: {what}")]
pub struct Bad {
    /// Its id.
    pub entry: i64,
    /// What is wrong.
    pub what: String,
}

fn bad(entry: i64, what: impl Into<String>) -> Bad {
    Bad {
        entry,
        what: what.into(),
    }
}

/// A good log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Entries checked.
    pub entries: u64,
    /// The last checkpoint's id and time (Unix seconds), if there is one.
    pub last_checkpoint: Option<(i64, u64)>,
    /// In a pruned log: the first entry kept and when the newest prune was (Unix seconds).
    pub pruned: Option<(i64, u64)>,
}

/// An entry exported earlier that the log must still hold, unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// Its id.
    pub id: i64,
    /// Its hash.
    pub hash: [u8; 32],
}

/// An anchor line that is not an exported entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an exported audit entry (a line of `relay audit --jsonl` with id and hash): {0}")]
pub struct AnchorError(String);

impl Anchor {
    /// Parses one line of `relay audit --jsonl` (best a checkpoint's, which is signed).
    pub fn parse(line: &str) -> Result<Self, AnchorError> {
        #[derive(serde::Deserialize)]
        struct Exported {
            id: i64,
            hash: String,
        }
        let e: Exported =
            serde_json::from_str(line.trim()).map_err(|e| AnchorError(e.to_string()))?;
        let hash = chain::parse_hash(&e.hash).ok_or_else(|| AnchorError("bad hash".into()))?;
        Ok(Self { id: e.id, hash })
    }
}

/// One stored row, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Entry id.
    pub id: i64,
    /// Stored time.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// The account.
    pub subject: Option<String>,
    /// Details.
    pub detail: Option<String>,
    /// The session.
    pub session: Option<String>,
    /// The stored hash.
    pub hash: Option<String>,
}

/// The check, one row at a time in id order.
#[derive(Debug, Clone)]
pub struct Walk {
    key: Option<VerifyingKey>,
    anchor: Option<(Anchor, bool)>,
    prev_id: i64,
    prev_hash: [u8; 32],
    /// Entries since genesis, pruned ones included (what checkpoints count).
    count: u64,
    /// Rows checked.
    checked: u64,
    last_checkpoint: Option<(i64, u64)>,
    /// The newest prune checkpoint's last pruned entry and time.
    pruned: Option<(i64, u64)>,
}

impl Walk {
    /// A walk from the genesis hash, checking checkpoints against `key` (none: any checkpoint
    /// is bad) and the log against `anchor`.
    pub fn new(key: Option<&VerifyingKey>, anchor: Option<Anchor>) -> Self {
        Self {
            key: key.copied(),
            anchor: anchor.map(|a| (a, false)),
            prev_id: 0,
            prev_hash: GENESIS,
            count: 0,
            checked: 0,
            last_checkpoint: None,
            pruned: None,
        }
    }

    /// A walk from the hash that the prune checkpoint `row` (the newest one in the log)
    /// vouches for: rows up to the entry it covers are skipped (pruned, or waiting to be
    /// deleted), the next must link to that hash. An anchor in the pruned part is accepted
    /// when it is the entry the prune checkpoint covers with the same hash, or older.
    pub fn after_prune(
        key: Option<&VerifyingKey>,
        anchor: Option<Anchor>,
        row: &Row,
    ) -> Result<Self, Bad> {
        let (cp, hash) = Self::check_prune(key, row)?;
        let mut walk = Self::new(key, anchor);
        walk.prev_id = cp.entry;
        walk.prev_hash = hash;
        walk.count = cp.count;
        walk.pruned = Some((cp.entry, cp.at));
        if let Some((anchor, seen)) = &mut walk.anchor {
            if anchor.id <= cp.entry {
                if anchor.id == cp.entry && anchor.hash != hash {
                    return Err(bad(
                        anchor.id,
                        "differs from the anchor (the prune checkpoint vouches for another hash)",
                    ));
                }
                *seen = true;
            }
        }
        Ok(walk)
    }

    /// The last entry checked (or covered by the prune checkpoint): id, hash, entries since
    /// genesis up to it.
    pub fn head(&self) -> (i64, [u8; 32], u64) {
        (self.prev_id, self.prev_hash, self.count)
    }

    /// Checks the next row.
    pub fn push(&mut self, row: &Row) -> Result<(), Bad> {
        if self.pruned.is_some_and(|(last, _)| row.id <= last) {
            return Ok(());
        }
        let fields = Fields {
            id: row.id,
            at: row.at,
            actor: &row.actor,
            action: &row.action,
            subject: row.subject.as_deref(),
            detail: row.detail.as_deref(),
            session: row.session.as_deref(),
        };
        let computed = chain::entry_hash(&self.prev_hash, &fields);
        let stored = row
            .hash
            .as_deref()
            .ok_or_else(|| bad(row.id, "no chain hash"))?;
        let stored =
            chain::parse_hash(stored).ok_or_else(|| bad(row.id, "malformed chain hash"))?;
        if stored != computed {
            return Err(self.mismatch(row.id));
        }
        if row.action == checkpoint::ACTION {
            self.check_checkpoint(row)?;
            self.last_checkpoint = Some((row.id, u64::try_from(row.at).unwrap_or(0)));
        }
        if row.action == prune::ACTION {
            Self::check_prune(self.key.as_ref(), row)?;
        }
        if let Some((anchor, seen)) = &mut self.anchor {
            if anchor.id == row.id {
                if anchor.hash != computed {
                    return Err(bad(
                        row.id,
                        "differs from the anchor (the anchor's hash is another)",
                    ));
                }
                *seen = true;
            }
        }
        self.prev_id = row.id;
        self.prev_hash = computed;
        self.count += 1;
        self.checked += 1;
        Ok(())
    }

    /// A prune checkpoint's signature, and that it covers only entries before itself.
    fn check_prune(key: Option<&VerifyingKey>, row: &Row) -> Result<(Checkpoint, [u8; 32]), Bad> {
        let detail = row.detail.as_deref().unwrap_or_default();
        let cp = Checkpoint::parse(detail).map_err(|e| bad(row.id, e.to_string()))?;
        let key = key.ok_or_else(|| {
            bad(
                row.id,
                "prune checkpoint cannot be checked: no audit key (pass --key)",
            )
        })?;
        let hash = cp
            .verify_tagged(prune::TAG, key)
            .map_err(|e| bad(row.id, format!("prune {e}")))?;
        if cp.entry >= row.id {
            return Err(bad(row.id, "prune checkpoint covers entries after itself"));
        }
        Ok((cp, hash))
    }

    fn mismatch(&self, id: i64) -> Bad {
        let expected = self.prev_id.saturating_add(1);
        if id > expected {
            let what = if self.checked == 0 && self.pruned.is_some() {
                format!(
                    "missing: the log starts at #{id}, but the prune checkpoint keeps every \
                     entry from #{expected}"
                )
            } else if self.prev_id == 0 {
                format!("missing: the log starts at #{id}")
            } else {
                format!("missing: the log skips from #{} to #{id}", self.prev_id)
            };
            return bad(expected, what);
        }
        bad(
            id,
            "hash does not match the entry and those before it (changed, inserted or moved)",
        )
    }

    fn check_checkpoint(&self, row: &Row) -> Result<(), Bad> {
        let detail = row.detail.as_deref().unwrap_or_default();
        let cp = Checkpoint::parse(detail).map_err(|e| bad(row.id, e.to_string()))?;
        let key = self.key.as_ref().ok_or_else(|| {
            bad(
                row.id,
                "checkpoint cannot be checked: no audit key (pass --key)",
            )
        })?;
        let hash = cp.verify(key).map_err(|e| bad(row.id, e.to_string()))?;
        if cp.entry != self.prev_id || cp.count != self.count || hash != self.prev_hash {
            return Err(bad(
                row.id,
                format!(
                    "checkpoint signed for #{} ({} entries) does not match the log before it \
                     (#{}, {} entries): entries up to it were changed after it was signed",
                    cp.entry, cp.count, self.prev_id, self.count
                ),
            ));
        }
        Ok(())
    }

    /// Ends the walk: the anchor, if any, must have been seen.
    pub fn finish(self) -> Result<Summary, Bad> {
        if let Some((anchor, false)) = self.anchor {
            let what = if anchor.id > self.prev_id {
                format!(
                    "missing: the anchor holds it but the log ends at #{} (truncated)",
                    self.prev_id
                )
            } else {
                "missing: the anchor holds it but the log does not".to_string()
            };
            return Err(bad(anchor.id, what));
        }
        Ok(Summary {
            entries: self.checked,
            last_checkpoint: self.last_checkpoint,
            pruned: self.pruned.map(|(last, at)| (last.saturating_add(1), at)),
        })
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
