//! The record of relayed sessions: each is written when it is paired (before either side is
//! told, so a session the relay cannot record never starts) and completed when it ends, with
//! the reason, duration, bytes each way and how often it was resumed. Both steps also go to the
//! audit log (`code.redeemed` and `session.paired`, then `session.ended`).
//!
//! A relay that dies (SIGKILL, power cut) cannot complete its records; at its next start
//! [`close_left_open`] ends every session still open as abnormal ("the relay stopped while the
//! session ran"), so no session is left without an end.

use crate::store::audit::{self, NewEntry};
use crate::store::db::{Database, DbError};
use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

/// Why a session the relay had not finished recording ended, written at the next start.
pub const RELAY_STOPPED: &str = "the relay stopped while the session ran";

/// A session as it was paired.
#[derive(Debug, Clone)]
pub struct Opened<'a> {
    /// The session id, hex.
    pub id: &'a str,
    /// The operator's account.
    pub operator: &'a str,
    /// Where the operator and the agent connect from.
    pub addresses: (String, String),
    /// The fingerprint of the key the agent proved at join, if it did.
    pub agent_key: Option<String>,
    /// Unix seconds.
    pub at: u64,
}

/// How a session ended.
#[derive(Debug, Clone)]
pub struct Closed<'a> {
    /// Unix seconds.
    pub at: u64,
    /// Why, in words.
    pub reason: &'a str,
    /// Whether it ended other than by a side closing its connection (lost, revoked, relay
    /// stopped).
    pub abnormal: bool,
    /// Bytes to the agent and to the operator.
    pub bytes: (u64, u64),
    /// Times it was resumed after a broken connection.
    pub resumed: u32,
}

/// One session's record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    /// The session id, hex.
    pub id: String,
    /// The operator's account.
    pub operator: String,
    /// Where the operator connected from.
    pub operator_address: String,
    /// Where the agent connected from.
    pub agent_address: String,
    /// The fingerprint of the key the agent proved at join, if it did.
    pub agent_key: Option<String>,
    /// Unix seconds.
    pub started_at: u64,
    /// Unix seconds; `None` while it runs.
    pub ended_at: Option<u64>,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// Whether it ended abnormally.
    pub abnormal: bool,
    /// Bytes to the agent.
    pub bytes_to_agent: u64,
    /// Bytes to the operator.
    pub bytes_to_operator: u64,
    /// Times it was resumed.
    pub resumed: u32,
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// An immediate transaction on `db` (the audit chain's write lock first); the audit entries
/// written meanwhile join it.
fn begin(db: &Database) -> Result<Transaction<'_>, DbError> {
    Ok(Transaction::new_unchecked(
        db.conn(),
        TransactionBehavior::Immediate,
    )?)
}

/// Records a paired session and its audit entry, in one transaction.
pub fn open(db: &mut Database, s: &Opened<'_>) -> Result<(), DbError> {
    let tx = begin(db)?;
    tx.execute(
        "INSERT INTO sessions (id, operator, operator_address, agent_address, agent_key, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![s.id, s.operator, s.addresses.0, s.addresses.1, s.agent_key, int(s.at)],
    )?;
    let detail = format!(
        "session {}; operator from {}, agent from {}; agent key {}",
        s.id,
        s.addresses.0,
        s.addresses.1,
        s.agent_key.as_deref().unwrap_or("not proven")
    );
    audit::append(
        db,
        &NewEntry {
            at: s.at,
            actor: &s.addresses.1,
            action: "code.redeemed",
            subject: Some(s.operator),
            detail: Some("a customer joined with the code"),
            session: Some(s.id),
        },
    )?;
    audit::append(
        db,
        &NewEntry {
            at: s.at,
            actor: &s.addresses.0,
            action: "session.paired",
            subject: Some(s.operator),
            detail: Some(&detail),
            session: Some(s.id),
        },
    )?;
    tx.commit()?;
    Ok(())
}

/// Completes the record of session `id` and writes its audit entry; a session already ended is
/// left as it was (returns `false`).
pub fn close(db: &mut Database, id: &str, c: &Closed<'_>) -> Result<bool, DbError> {
    let tx = begin(db)?;
    let started: Option<(String, i64)> = tx
        .query_row(
            "SELECT operator, started_at FROM sessions WHERE id = ?1 AND ended_at IS NULL",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((operator, started_at)) = started else {
        return Ok(false);
    };
    tx.execute(
        "UPDATE sessions SET ended_at = ?2, end_reason = ?3, abnormal = ?4,
                bytes_to_agent = ?5, bytes_to_operator = ?6, resumed = ?7
         WHERE id = ?1",
        params![
            id,
            int(c.at),
            c.reason,
            c.abnormal,
            int(c.bytes.0),
            int(c.bytes.1),
            c.resumed
        ],
    )?;
    let detail = format!(
        "session {id}; {}: {}; {} s; {} bytes to the agent, {} to the operator; resumed {}",
        if c.abnormal { "abnormal" } else { "normal" },
        c.reason,
        c.at.saturating_sub(uint(started_at)),
        c.bytes.0,
        c.bytes.1,
        c.resumed
    );
    audit::append(
        db,
        &NewEntry {
            at: c.at,
            actor: "relay",
            action: "session.ended",
            subject: Some(&operator),
            detail: Some(&detail),
            session: Some(id),
        },
    )?;
    tx.commit()?;
    Ok(true)
}

/// Ends every session still open as abnormal ([`RELAY_STOPPED`]); returns their ids. Run at
/// start, before any session can be open.
pub fn close_left_open(db: &mut Database, at: u64) -> Result<Vec<String>, DbError> {
    let ids: Vec<String> = {
        let mut stmt = db
            .conn()
            .prepare("SELECT id FROM sessions WHERE ended_at IS NULL ORDER BY started_at")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let closed = Closed {
        at,
        reason: RELAY_STOPPED,
        abnormal: true,
        bytes: (0, 0),
        resumed: 0,
    };
    for id in &ids {
        close(db, id, &closed)?;
    }
    Ok(ids)
}

/// The newest `limit` sessions, oldest first.
pub fn recent(db: &Database, limit: usize) -> Result<Vec<Record>, DbError> {
    let mut stmt = db.conn().prepare(
        "SELECT id, operator, operator_address, agent_address, started_at, ended_at, end_reason,
                abnormal, bytes_to_agent, bytes_to_operator, resumed, agent_key FROM
            (SELECT rowid AS r, * FROM sessions ORDER BY rowid DESC LIMIT ?1) ORDER BY r",
    )?;
    let rows = stmt.query_map([int(limit as u64)], |r| {
        Ok(Record {
            id: r.get(0)?,
            operator: r.get(1)?,
            operator_address: r.get(2)?,
            agent_address: r.get(3)?,
            started_at: uint(r.get(4)?),
            ended_at: r.get::<_, Option<i64>>(5)?.map(uint),
            end_reason: r.get(6)?,
            abnormal: r.get(7)?,
            bytes_to_agent: uint(r.get(8)?),
            bytes_to_operator: uint(r.get(9)?),
            resumed: r.get(10)?,
            agent_key: r.get(11)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened(id: &str, at: u64) -> Opened<'_> {
        Opened {
            id,
            operator: "alice",
            addresses: ("127.0.0.1:1".into(), "127.0.0.2:2".into()),
            agent_key: None,
            at,
        }
    }

    #[test]
    fn a_session_is_opened_closed_once_and_audited() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Database::create(&dir.path().join("relay.db")).unwrap();
        open(&mut db, &opened("aa", 10)).unwrap();
        let closed = Closed {
            at: 25,
            reason: "operator closed the connection",
            abnormal: false,
            bytes: (100, 2000),
            resumed: 1,
        };
        assert!(close(&mut db, "aa", &closed).unwrap());
        assert!(!close(&mut db, "aa", &closed).unwrap(), "ended once");
        let r = &recent(&db, 10).unwrap()[0];
        assert_eq!(r.ended_at, Some(25));
        assert!(!r.abnormal);
        assert_eq!(
            (r.bytes_to_agent, r.bytes_to_operator, r.resumed),
            (100, 2000, 1)
        );
        let log = audit::recent(&db, 10).unwrap();
        let actions: Vec<_> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            ["code.redeemed", "session.paired", "session.ended"]
        );
        assert!(log[2].detail.as_deref().unwrap().contains("15 s"));
    }

    #[test]
    fn sessions_left_open_by_a_dead_relay_end_abnormally_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Database::create(&dir.path().join("relay.db")).unwrap();
        open(&mut db, &opened("aa", 10)).unwrap();
        open(&mut db, &opened("bb", 11)).unwrap();
        let normal = Closed {
            at: 12,
            reason: "agent closed the connection",
            abnormal: false,
            bytes: (0, 0),
            resumed: 0,
        };
        close(&mut db, "bb", &normal).unwrap();
        open(&mut db, &opened("cc", 13)).unwrap();
        assert_eq!(close_left_open(&mut db, 99).unwrap(), ["aa", "cc"]);
        assert!(close_left_open(&mut db, 100).unwrap().is_empty());
        let all = recent(&db, 10).unwrap();
        let ended: Vec<_> = all
            .iter()
            .map(|r| (r.id.as_str(), r.abnormal, r.end_reason.as_deref()))
            .collect();
        assert_eq!(
            ended,
            [
                ("aa", true, Some(RELAY_STOPPED)),
                ("bb", false, Some("agent closed the connection")),
                ("cc", true, Some(RELAY_STOPPED)),
            ]
        );
    }
}
