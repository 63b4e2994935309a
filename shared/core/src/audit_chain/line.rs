//! The JSON-lines form of an entry: one object per line with fields that keep their names and
//! meaning across releases (`relay audit --jsonl`, and the kiosk's log file itself), and
//! [`LineWalk`], which checks such lines one at a time.

use super::hash::{entry_hash, Fields};
use super::walk::{Anchor, Bad, Row, Summary, Walk};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

/// One entry as a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// Position in the log (a kiosk log's line number, from 1).
    pub id: i64,
    /// When, RFC 3339 in UTC (`2024-05-01T12:00:00Z`), as [`rfc3339`] writes `at_unix`.
    pub at: String,
    /// When, Unix seconds: the time the hash covers.
    pub at_unix: u64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// The account concerned, or null.
    pub subject: Option<String>,
    /// Details, or null; for `audit.checkpoint` the signed checkpoint's JSON as text.
    pub detail: Option<String>,
    /// The session concerned (hex session id), or null.
    pub session: Option<String>,
    /// The entry's chain hash, 64 hex digits.
    pub hash: Option<String>,
}

impl Line {
    /// The line of an entry whose predecessor's hash is `prev`, with its hash filled in.
    /// `None` when `at_unix` does not fit the stored integer (beyond the year 292 billion).
    pub fn chained(prev: &[u8; 32], id: i64, at_unix: u64, f: Unhashed<'_>) -> Option<Self> {
        let fields = Fields {
            id,
            at: i64::try_from(at_unix).ok()?,
            actor: f.actor,
            action: f.action,
            subject: f.subject,
            detail: f.detail,
            session: f.session,
        };
        Some(Self {
            id,
            at: rfc3339(at_unix),
            at_unix,
            actor: f.actor.into(),
            action: f.action.into(),
            subject: f.subject.map(Into::into),
            detail: f.detail.map(Into::into),
            session: f.session.map(Into::into),
            hash: Some(hex::encode(entry_hash(prev, &fields))),
        })
    }

    /// The line, without its newline.
    pub fn to_json(&self) -> String {
        // Strings and integers always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses one line (without its newline).
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// The row the chain covers; `None` when `at_unix` does not fit.
    pub fn row(&self) -> Option<Row> {
        Some(Row {
            id: self.id,
            at: i64::try_from(self.at_unix).ok()?,
            actor: self.actor.clone(),
            action: self.action.clone(),
            subject: self.subject.clone(),
            detail: self.detail.clone(),
            session: self.session.clone(),
            hash: self.hash.clone(),
        })
    }
}

/// The fields of a new entry besides its position and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unhashed<'a> {
    /// Who.
    pub actor: &'a str,
    /// What.
    pub action: &'a str,
    /// The account concerned.
    pub subject: Option<&'a str>,
    /// Details.
    pub detail: Option<&'a str>,
    /// The session concerned.
    pub session: Option<&'a str>,
}

/// Unix seconds as RFC 3339 in UTC; times beyond the year 9999 are shown as that limit.
pub fn rfc3339(at: u64) -> String {
    use time::format_description::well_known::Rfc3339;
    /// 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
    const LAST: u64 = 253_402_300_799;
    let secs = i64::try_from(at.min(LAST)).unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Checks a log of lines, one at a time: each must parse, end with its newline, show the time
/// its hash covers, and pass [`Walk`], under the same rules as the relay's log (prune
/// checkpoints included, though a kiosk never prunes its own).
#[derive(Debug)]
pub struct LineWalk {
    walk: Walk,
    last: i64,
    last_line: Option<Line>,
}

impl LineWalk {
    /// A walk from genesis checking checkpoints against `key` and the log against `anchor`.
    pub fn new(key: Option<&VerifyingKey>, anchor: Option<Anchor>) -> Self {
        Self::from_walk(Walk::new(key, anchor))
    }

    /// A walk from the newest prune checkpoint in the log, `prune` ([`Walk::after_prune`]).
    pub fn after_prune(
        key: Option<&VerifyingKey>,
        anchor: Option<Anchor>,
        prune: &Line,
    ) -> Result<Self, Bad> {
        let row = prune.row().ok_or_else(|| Bad {
            entry: prune.id,
            what: "at_unix out of range".into(),
        })?;
        Ok(Self::from_walk(Walk::after_prune(key, anchor, &row)?))
    }

    fn from_walk(walk: Walk) -> Self {
        let (last, _, _) = walk.head();
        Self {
            walk,
            last,
            last_line: None,
        }
    }

    /// Checks the next line; `complete` says whether it ended with a newline (every line
    /// written does, so one without is a write cut short).
    pub fn push(&mut self, text: &str, complete: bool) -> Result<(), Bad> {
        let next = self.last.saturating_add(1);
        let unreadable = |what: String| Bad { entry: next, what };
        if !complete {
            return Err(unreadable(
                "the last line is cut short (no newline at its end)".into(),
            ));
        }
        let line = Line::parse(text).map_err(|e| unreadable(format!("not an audit entry: {e}")))?;
        let row = line.row().ok_or_else(|| Bad {
            entry: line.id,
            what: "at_unix out of range".into(),
        })?;
        if line.at != rfc3339(line.at_unix) {
            return Err(Bad {
                entry: line.id,
                what: "at does not match at_unix".into(),
            });
        }
        self.walk.push(&row)?;
        self.last = line.id;
        self.last_line = Some(line);
        Ok(())
    }

    /// Ends the walk; returns the summary and the last line (to continue the chain from).
    pub fn finish(self) -> Result<(Summary, Option<Line>), Bad> {
        Ok((self.walk.finish()?, self.last_line))
    }
}
