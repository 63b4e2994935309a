//! The JSON-lines form of an entry (`relay audit --jsonl`), shared with the kiosk's log
//! ([`sightline_core::audit_chain::line`]): one object per line, with fields that keep their
//! names and meaning across releases, for log-analysis tools and as anchors for
//! `relay audit verify --anchor`.

pub use sightline_core::audit_chain::{rfc3339, Line};

use super::Entry;

/// The exported form of `e`.
pub fn line(e: &Entry) -> Line {
    Line {
        id: e.id,
        at: rfc3339(e.at),
        at_unix: e.at,
        actor: e.actor.clone(),
        action: e.action.clone(),
        subject: e.subject.clone(),
        detail: e.detail.clone(),
        session: e.session.clone(),
        hash: e.hash.clone(),
    }
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
        let v: serde_json::Value = serde_json::from_str(&line(&e).to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "id": 7, "at": "2023-11-14T22:13:20Z", "at_unix": 1_700_000_000u64,
                "actor": "cli", "action": "user.add", "subject": "alice",
                "detail": null, "session": null, "hash": "ab".repeat(32),
            })
        );
    }
}
