//! Session recordings: ciphertext the viewer encrypted with age to the help desk's auditors,
//! uploaded over the operator's attached connection while the session runs and stored unread,
//! one file per session (`recordings/<session id>.age` in the data directory, mode 0600 in a
//! 0700 directory), indexed by the `recordings` table.
//!
//! The file only grows, by appends made durable before they are acknowledged ([`writer`]),
//! judged by [`rules`] (no hole, nothing rewritten, nothing after the last piece). The audit
//! log vouches for the bytes: `recording.started` at the first byte, one `recording.chunk` per
//! segment (its index, offset, length and the SHA-256 of exactly those bytes), then
//! `recording.completed` with the size and the whole file's SHA-256. A row's `bytes` is the
//! part those entries cover: segment entry and row change are one transaction.
//!
//! Retention deletes the file and its row once the recording is older than
//! `retention.recordings_days` ([`prune_batch`]), leaving a `recording.deleted` entry that says
//! what was deleted.

pub mod file;
pub mod lookup;
pub mod rules;
pub mod writer;

use crate::store::audit::{self, NewEntry};
use crate::store::db::{Database, DbError};
use crate::store::paths::DataDir;
use rusqlite::{params, OptionalExtension, Row, Transaction, TransactionBehavior};

/// Hex digits of a session id (16 bytes).
pub const ID_LEN: usize = 32;
/// Fewest hex digits that `relay recordings get` accepts as a prefix.
pub const MIN_PREFIX: usize = 8;
/// The audit log's actor for what the relay records about recordings.
const ACTOR: &str = "relay";

/// One recording's row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Recording {
    /// The session id, 32 hex digits.
    pub session: String,
    /// The operator's account.
    pub operator: String,
    /// The first byte arrived, Unix seconds.
    pub created_at: u64,
    /// Bytes covered by `recording.chunk` audit entries (all of them once complete).
    pub bytes: u64,
    /// `recording.chunk` entries written.
    pub segments: u32,
    /// The last piece arrived.
    pub complete: bool,
    /// When, Unix seconds.
    pub completed_at: Option<u64>,
    /// SHA-256 of the whole file, hex, once complete.
    pub sha256: Option<String>,
    /// Last upload recorded (a segment or the completion), Unix seconds.
    pub last_activity: u64,
}

/// A closed segment: `len` bytes from `offset`, numbered `index` from 0.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// Its number in the recording.
    pub segment: u32,
    /// Where it starts in the file.
    pub offset: u64,
    /// Its length.
    pub length: u64,
    /// SHA-256 of exactly those bytes, hex.
    pub sha256: String,
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Whether `id` is a session id as the relay writes it: 32 lowercase hex digits (so it can
/// name a file).
pub fn is_session_id(id: &str) -> bool {
    id.len() == ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn begin(db: &Database) -> Result<Transaction<'_>, DbError> {
    Ok(Transaction::new_unchecked(
        db.conn(),
        TransactionBehavior::Immediate,
    )?)
}

fn log(
    db: &Database,
    at: u64,
    action: &str,
    who: (&str, &str),
    detail: &str,
) -> Result<(), DbError> {
    let (session, operator) = who;
    audit::append(
        db,
        &NewEntry {
            at,
            actor: ACTOR,
            action,
            subject: Some(operator),
            detail: Some(detail),
            session: Some(session),
        },
    )
    .map(drop)
}

/// The first byte of `session`'s recording arrived: its row and `recording.started`.
pub fn started(db: &Database, session: &str, operator: &str, at: u64) -> Result<(), DbError> {
    let tx = begin(db)?;
    tx.execute(
        "INSERT OR IGNORE INTO recordings (session, operator, created_at, last_activity)
         VALUES (?1, ?2, ?3, ?3)",
        params![session, operator, int(at)],
    )?;
    log(
        db,
        at,
        "recording.started",
        (session, operator),
        "the first bytes of the recording arrived",
    )?;
    tx.commit()?;
    Ok(())
}

/// A segment of `session`'s recording is stored: its `recording.chunk` entry, and the row
/// covers it.
pub fn segment(
    db: &Database,
    session: &str,
    operator: &str,
    s: &Segment,
    at: u64,
) -> Result<(), DbError> {
    let detail = serde_json::to_string(s).unwrap_or_default();
    let tx = begin(db)?;
    tx.execute(
        "UPDATE recordings SET bytes = ?2, segments = ?3, last_activity = ?4 WHERE session = ?1",
        params![
            session,
            int(s.offset.saturating_add(s.length)),
            s.segment.saturating_add(1),
            int(at)
        ],
    )?;
    log(db, at, "recording.chunk", (session, operator), &detail)?;
    tx.commit()?;
    Ok(())
}

/// The last piece of `session`'s recording is stored: `size` bytes whose SHA-256 is `sha256`.
pub fn completed(
    db: &Database,
    session: &str,
    operator: &str,
    size: u64,
    sha256: &str,
    at: u64,
) -> Result<(), DbError> {
    let detail = serde_json::json!({ "bytes": size, "sha256": sha256 }).to_string();
    let tx = begin(db)?;
    tx.execute(
        "UPDATE recordings SET complete = 1, completed_at = ?2, sha256 = ?3, last_activity = ?2
         WHERE session = ?1",
        params![session, int(at), sha256],
    )?;
    log(db, at, "recording.completed", (session, operator), &detail)?;
    tx.commit()?;
    Ok(())
}

/// The relay ended `session` because its required recording stopped: `recording.stalled`.
pub fn stalled(
    db: &Database,
    session: &str,
    operator: &str,
    detail: &str,
    at: u64,
) -> Result<(), DbError> {
    log(db, at, "recording.stalled", (session, operator), detail)
}

const COLUMNS: &str =
    "session, operator, created_at, bytes, segments, complete, completed_at, sha256, last_activity";

fn row(r: &Row<'_>) -> rusqlite::Result<Recording> {
    Ok(Recording {
        session: r.get(0)?,
        operator: r.get(1)?,
        created_at: uint(r.get(2)?),
        bytes: uint(r.get(3)?),
        segments: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        complete: r.get::<_, i64>(5)? != 0,
        completed_at: r.get::<_, Option<i64>>(6)?.map(uint),
        sha256: r.get(7)?,
        last_activity: uint(r.get(8)?),
    })
}

/// The recording of `session`, if there is one.
pub fn find(db: &Database, session: &str) -> Result<Option<Recording>, DbError> {
    Ok(db
        .conn()
        .query_row(
            &format!("SELECT {COLUMNS} FROM recordings WHERE session = ?1"),
            [session],
            row,
        )
        .optional()?)
}

/// Every recording, oldest first.
pub fn list(db: &Database) -> Result<Vec<Recording>, DbError> {
    let mut stmt = db.conn().prepare(&format!(
        "SELECT {COLUMNS} FROM recordings ORDER BY created_at, session"
    ))?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The recordings whose session id starts with `prefix` (lowercase hex, checked by the
/// caller), at most `limit`.
pub fn by_prefix(db: &Database, prefix: &str, limit: usize) -> Result<Vec<Recording>, DbError> {
    let mut stmt = db.conn().prepare(&format!(
        "SELECT {COLUMNS} FROM recordings WHERE substr(session, 1, length(?1)) = ?1
         ORDER BY session LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![prefix, int(limit as u64)], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Count, bytes and the oldest start of the recordings on record, for the inventory.
pub fn totals(db: &Database) -> Result<(u64, u64, Option<u64>), DbError> {
    Ok(db.conn().query_row(
        "SELECT count(*), coalesce(sum(bytes), 0), min(created_at) FROM recordings",
        [],
        |r| {
            Ok((
                uint(r.get(0)?),
                uint(r.get(1)?),
                r.get::<_, Option<i64>>(2)?.map(uint),
            ))
        },
    )?)
}

/// Deletes at most `limit` recordings completed (or, unfinished, last uploaded to) before
/// `cut`: the file first, then the row with a `recording.deleted` entry saying what it held,
/// so an interruption leaves at worst a row whose file is already gone (deleted next time).
/// Returns how many.
pub fn prune_batch(
    db: &Database,
    data: &DataDir,
    cut: u64,
    limit: usize,
    now: u64,
) -> Result<usize, DbError> {
    let old: Vec<Recording> = {
        let mut stmt = db.conn().prepare(&format!(
            "SELECT {COLUMNS} FROM recordings WHERE coalesce(completed_at, last_activity) < ?1
             ORDER BY coalesce(completed_at, last_activity) LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![int(cut), int(limit as u64)], row)?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for r in &old {
        if is_session_id(&r.session) {
            file::remove(&data.recording(&r.session))?;
        }
        let detail = serde_json::json!({
            "reason": "retention.recordings_days",
            "bytes": r.bytes,
            "complete": r.complete,
            "sha256": r.sha256,
        })
        .to_string();
        let tx = begin(db)?;
        tx.execute("DELETE FROM recordings WHERE session = ?1", [&r.session])?;
        log(
            db,
            now,
            "recording.deleted",
            (&r.session, &r.operator),
            &detail,
        )?;
        tx.commit()?;
    }
    Ok(old.len())
}

#[cfg(test)]
#[path = "recordings_tests.rs"]
mod tests;
