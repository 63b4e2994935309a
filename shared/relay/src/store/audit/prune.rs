//! Pruning old entries without breaking `relay audit verify`. Deleting entries `1..=C` cuts
//! the chain at its start, so before deleting them the relay appends a *prune checkpoint*
//! (action [`ACTION`]): a [`Checkpoint`] over entry `C` (its id, its hash — the chain value
//! entry `C + 1` builds on — and the entries since genesis up to it), signed with the audit
//! key under its own tag [`TAG`], so that an ordinary checkpoint can never be passed off as
//! one. `verify` starts from the newest prune checkpoint instead of the genesis hash.
//!
//! `C` is always an ordinary signed checkpoint older than the retention cut, so the prune
//! never reaches past an anchor that a log collector holds without a checkpoint, and the
//! entries up to it are verified (chain and signature) before the prune checkpoint is signed:
//! a damaged log is kept as evidence, not pruned. The steps are small, so the running relay
//! runs them one batch at a time ([`crate::store::retention::Pass`]):
//! [`delete_pruned`], [`prune_point`], [`check_batch`], [`write`].

use super::checkpoint::{self, Checkpoint};
use super::verify::{self, Bad, Walk};
use super::NewEntry;
use crate::store::db::{Database, DbError};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

/// Action of a prune checkpoint entry, and the domain-separation tag of its signed message
/// (the signing and checking live in [`sightline_core::audit_chain::checkpoint`]).
pub use sightline_core::audit_chain::checkpoint::{PRUNE_ACTION as ACTION, PRUNE_TAG as TAG};

/// The newest prune checkpoint: its entry id and what it says. A detail that does not parse
/// is [`DbError::AuditChain`]: nothing is counted or deleted on a guess.
pub fn newest(conn: &Connection) -> Result<Option<(i64, Checkpoint)>, DbError> {
    let row: Option<(i64, Option<String>)> = conn
        .query_row(
            "SELECT id, detail FROM audit WHERE action = ?1 ORDER BY id DESC LIMIT 1",
            [ACTION],
            |r| Ok((r.get(0)?, r.get(1).ok().flatten())),
        )
        .optional()?;
    row.map(|(id, detail)| {
        Checkpoint::parse(detail.as_deref().unwrap_or_default())
            .map(|cp| (id, cp))
            .map_err(|_| DbError::AuditChain(id))
    })
    .transpose()
}

/// Entries since genesis up to the newest one, pruned ones included: what a checkpoint
/// written now counts.
pub(super) fn count_since_genesis(conn: &Connection) -> Result<u64, DbError> {
    let (after, pruned) = match newest(conn)? {
        Some((_, cp)) => (cp.entry, cp.count),
        None => (i64::MIN, 0),
    };
    let kept: i64 = conn.query_row("SELECT count(*) FROM audit WHERE id > ?1", [after], |r| {
        r.get(0)
    })?;
    Ok(pruned.saturating_add(u64::try_from(kept).unwrap_or(0)))
}

/// Deletes at most `limit` entries that the newest prune checkpoint covers (left by a prune
/// still under way, or one interrupted); returns how many.
pub fn delete_pruned(db: &Database, limit: usize) -> Result<usize, DbError> {
    let Some((_, cp)) = newest(db.conn())? else {
        return Ok(0);
    };
    Ok(db.conn().execute(
        "DELETE FROM audit WHERE id IN
            (SELECT id FROM audit WHERE id <= ?1 ORDER BY id LIMIT ?2)",
        params![cp.entry, i64::try_from(limit).unwrap_or(i64::MAX)],
    )?)
}

/// The checkpoint entry to prune up to for the cut `cut` (Unix seconds): the newest ordinary
/// checkpoint written before `cut` with no entry at or after `cut` before it, and after the
/// current prune point. `None`: nothing to prune yet.
pub fn prune_point(db: &Database, cut: u64) -> Result<Option<i64>, DbError> {
    let conn = db.conn();
    let after = newest(conn)?.map_or(0, |(_, cp)| cp.entry);
    let cut = i64::try_from(cut).unwrap_or(i64::MAX);
    // A clock set back must not let an entry newer than the cut be deleted.
    let first_new: Option<i64> = conn.query_row(
        "SELECT min(id) FROM audit WHERE id > ?1 AND at >= ?2",
        params![after, cut],
        |r| r.get(0),
    )?;
    Ok(conn.query_row(
        "SELECT max(id) FROM audit WHERE action = ?1 AND id > ?2 AND at < ?3 AND id < ?4",
        params![
            checkpoint::ACTION,
            after,
            cut,
            first_new.unwrap_or(i64::MAX)
        ],
        |r| r.get(0),
    )?)
}

/// Checks at most `limit` entries after the walk's position, up to `upto`. `Ok(true)` once
/// the walk has reached `upto`; the inner error is the first bad entry.
pub fn check_batch(
    db: &Database,
    walk: &mut Walk,
    upto: i64,
    limit: usize,
) -> Result<Result<bool, Bad>, DbError> {
    let mut stmt = db.conn().prepare(&format!(
        "SELECT {} FROM audit WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
        verify::COLUMNS
    ))?;
    let (after, _, _) = walk.head();
    let mut rows = stmt.query(params![
        after,
        upto,
        i64::try_from(limit).unwrap_or(i64::MAX)
    ])?;
    let mut any = false;
    while let Some(r) = rows.next()? {
        any = true;
        if let Err(b) = verify::read(r)?.and_then(|row| walk.push(&row)) {
            return Ok(Err(b));
        }
    }
    let (reached, _, _) = walk.head();
    if !any && reached != upto {
        return Ok(Err(Bad {
            entry: upto,
            what: "missing: the entry to prune up to is gone".into(),
        }));
    }
    Ok(Ok(reached == upto))
}

/// Appends the prune checkpoint over the entry `walk` has reached (checked up to it, an
/// ordinary checkpoint), signed with `db`'s audit key, at `now`; returns its id. `None`
/// without a key, or when the log changed since the walk (another prune, an edited entry):
/// nothing is written and the next pass starts again.
pub fn write(db: &Database, walk: &Walk, now: u64) -> Result<Option<i64>, DbError> {
    let Some(signer) = db.audit_checkpointer() else {
        return Ok(None);
    };
    let conn = db.conn();
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let (last, hash, count) = walk.head();
    let stored: Option<(String, Option<String>)> = conn
        .query_row(
            "SELECT action, hash FROM audit WHERE id = ?1",
            [last],
            |r| Ok((r.get(0)?, r.get(1).ok().flatten())),
        )
        .optional()?;
    let unchanged = stored.is_some_and(|(action, h)| {
        action == checkpoint::ACTION && h.as_deref() == Some(hex::encode(hash).as_str())
    }) && newest(conn)?.is_none_or(|(_, cp)| cp.entry < last);
    if !unchanged {
        return Ok(None);
    }
    let signed = Checkpoint::sign_prune(&signer.key, last, &hash, count, now);
    let detail = signed.to_detail();
    let id = super::append(
        db,
        &NewEntry {
            at: now,
            actor: checkpoint::ACTOR,
            action: ACTION,
            subject: None,
            detail: Some(&detail),
            session: None,
        },
    )?;
    tx.commit()?;
    Ok(Some(id))
}

#[cfg(test)]
#[path = "prune_tests.rs"]
mod tests;
