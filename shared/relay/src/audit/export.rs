//! The JSON-lines form of an entry (`relay audit --jsonl`): one object per line, with fields
//! that keep their names and meaning across releases, for log-analysis tools and as anchors
//! for `relay audit verify --anchor`.

use super::Entry;
use serde::Serialize;

/// One exported entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line<'a> {
    /// Position in the log; `--since ID` resumes after it.
    pub id: i64,
    /// When, RFC 3339 in UTC (`2024-05-01T12:00:00Z`).
    pub at: String,
    /// When, Unix seconds.
    pub at_unix: u64,
    /// Who.
    pub actor: &'a str,
    /// What.
    pub action: &'a str,
    /// The account concerned, or null.
    pub subject: Option<&'a str>,
    /// Details, or null; for `audit.checkpoint` the signed checkpoint's JSON as text.
    pub detail: Option<&'a str>,
    /// The session concerned (hex session id), or null.
    pub session: Option<&'a str>,
    /// The entry's chain hash, 64 hex digits.
    pub hash: Option<&'a str>,
}

impl<'a> Line<'a> {
    /// The exported form of `e`.
    pub fn of(e: &'a Entry) -> Self {
        Self {
            id: e.id,
            at: rfc3339(e.at),
            at_unix: e.at,
            actor: &e.actor,
            action: &e.action,
            subject: e.subject.as_deref(),
            detail: e.detail.as_deref(),
            session: e.session.as_deref(),
            hash: e.hash.as_deref(),
        }
    }

    /// The line, without its newline.
    pub fn to_json(&self) -> String {
        // Strings and integers always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn lines_have_stable_fields() {
        let e = Entry {
            id: 7,
            at: 1_700_000_000,
            actor: "cli".into(),
            action: "user.add".into(),
            subject: Some("alice".into()),
            detail: None,
            session: None,
            hash: Some("ab".repeat(32)),
        };
        let v: serde_json::Value = serde_json::from_str(&Line::of(&e).to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "id": 7, "at": "2023-11-14T22:13:20Z", "at_unix": 1_700_000_000u64,
                "actor": "cli", "action": "user.add", "subject": "alice",
                "detail": null, "session": null, "hash": "ab".repeat(32),
            })
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
    }
}
