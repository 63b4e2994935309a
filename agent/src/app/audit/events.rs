//! What the kiosk records, entry by entry: the actions and the details each carries. Every
//! entry's subject is the operator's account (or key fingerprint) when there is one, its
//! session the hex session id.

use super::Event;
use crate::app::session::Operator;
use serde_json::json;

/// The kiosk started listening.
pub fn started(
    fingerprint: &str,
    listen: &[String],
    allow: &[String],
    ca: Option<String>,
    operator_keys: &[String],
) -> Event {
    Event {
        action: "kiosk.started",
        subject: None,
        detail: json!({"fingerprint": fingerprint, "listen": listen, "allow": allow,
                       "relay_key": ca, "operator_keys": operator_keys}),
        session: None,
    }
}

/// The kiosk stopped; `left_out` refusals were not recorded (rate limit).
pub fn stopped(fingerprint: &str, left_out: u64) -> Event {
    Event {
        action: "kiosk.stopped",
        subject: None,
        detail: json!({"fingerprint": fingerprint, "refusals_not_recorded_before": left_out}),
        session: None,
    }
}

/// An authenticated operator is about to be served: recorded before the session proceeds.
pub fn connected(operator: &Operator, address: &str, session: &str) -> Event {
    Event {
        action: "kiosk.session.connected",
        subject: Some(operator.account.clone()),
        detail: json!({"address": address, "display_name": operator.display_name,
                       "organisation": operator.organisation,
                       "operator_key": operator.fingerprint,
                       "verified_by": operator.verified_by,
                       "permissions": operator.rights.permissions.names(),
                       "max_session_secs": operator.rights.max_session.map(|d| d.as_secs()),
                       "certificate_expires": operator.certificate_expires}),
        session: Some(session.into()),
    }
}

/// Control given to the operator, or taken back.
pub fn control(granted: bool, operator: &str, session: &str) -> Event {
    Event {
        action: if granted {
            "kiosk.control.granted"
        } else {
            "kiosk.control.revoked"
        },
        subject: Some(operator.into()),
        detail: json!({"by": if granted { "kiosk configuration" } else { "kiosk" }}),
        session: Some(session.into()),
    }
}

/// How a session ended.
pub fn ended(
    operator: &str,
    session: &str,
    reason: &str,
    normal: bool,
    duration_secs: u64,
    (bytes_in, bytes_out): (u64, u64),
) -> Event {
    Event {
        action: "kiosk.session.ended",
        subject: Some(operator.into()),
        detail: json!({"reason": reason, "normal": normal, "duration_secs": duration_secs,
                       "bytes_from_operator": bytes_in, "bytes_to_operator": bytes_out}),
        session: Some(session.into()),
    }
}
