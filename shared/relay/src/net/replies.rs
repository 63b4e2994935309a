//! The relay's refusals, worded once. Texts name what failed and never echo a secret (no
//! password, no code) or say which of user name and password was wrong.

use sightline_core::relay_proto::{RelayErrorKind, RelayMessage};

fn error(kind: RelayErrorKind, message: &str) -> RelayMessage {
    RelayMessage::Error {
        kind,
        message: message.to_string(),
        retry_after_secs: None,
    }
}

/// Wrong user name, password or code, disabled account: one answer for all.
pub fn login_failed() -> RelayMessage {
    error(
        RelayErrorKind::LoginFailed,
        "login failed: wrong user name, password or authenticator code",
    )
}

/// A login without a valid proof of possession of the operator key (no challenge asked for,
/// or a signature that does not verify); the connection is closed after it.
pub fn not_proven() -> RelayMessage {
    error(
        RelayErrorKind::BadRequest,
        "login refused: the operator key's proof of possession is missing or does not verify",
    )
}

/// The directory that checks passwords cannot be reached.
pub fn auth_unavailable() -> RelayMessage {
    error(
        RelayErrorKind::AuthUnavailable,
        "the relay cannot reach its sign-in directory; try again later or tell your administrator",
    )
}

/// The logged-in account was disabled or removed since the login.
pub fn account_inactive() -> RelayMessage {
    error(
        RelayErrorKind::LoginFailed,
        "this account has been disabled or removed; it cannot start sessions",
    )
}

/// Too many failures; the client may retry after `secs` seconds.
pub fn rate_limited(secs: u64) -> RelayMessage {
    RelayMessage::Error {
        kind: RelayErrorKind::RateLimited,
        message: format!("too many failed attempts; retry in {secs} s"),
        retry_after_secs: Some(secs),
    }
}

/// A resume for a session that is over (its window passed, or it ended), or with a token
/// that is not valid: one answer for all.
pub fn session_ended() -> RelayMessage {
    error(
        RelayErrorKind::SessionEnded,
        "session ended: it cannot be resumed",
    )
}

/// A session the relay ended for `reason` (a revoked certificate, a stalled recording), to one
/// of its own sides: a resume with its last token, its operator's attached connection.
pub fn session_ended_because(reason: &str) -> RelayMessage {
    error(
        RelayErrorKind::SessionEnded,
        &format!("session ended by the relay: {reason}"),
    )
}

/// Unknown, used or expired code: one answer for all.
pub fn code_not_valid() -> RelayMessage {
    error(RelayErrorKind::CodeNotValid, "code not valid")
}

/// The operator's code expired before anyone joined.
pub fn code_expired() -> RelayMessage {
    error(RelayErrorKind::CodeExpired, "session code expired")
}

/// Shown to an operator on a listener that serves customers only.
pub const OPERATORS_NOT_HERE: &str =
    "operators cannot sign in on this address; use the help desk's operator address";
/// Shown to a customer on a listener that serves operators only.
pub const CUSTOMERS_NOT_HERE: &str =
    "this address does not accept customers; use the address your help desk gave you";

/// An operator request (login, session, attach, an operator's resume) on a listener without
/// the operator role.
pub fn operators_not_here() -> RelayMessage {
    error(RelayErrorKind::BadRequest, OPERATORS_NOT_HERE)
}

/// A join (or an agent's resume) on a listener without the customer role.
pub fn customers_not_here() -> RelayMessage {
    error(RelayErrorKind::BadRequest, CUSTOMERS_NOT_HERE)
}

/// The request needs a login first.
pub fn not_logged_in() -> RelayMessage {
    error(RelayErrorKind::NotLoggedIn, "log in first")
}

/// The request does not fit the connection's state, or its contents are unusable.
pub fn bad_request(message: &str) -> RelayMessage {
    error(RelayErrorKind::BadRequest, message)
}

/// Something failed on the relay; details are in its log, not in the answer.
pub fn internal() -> RelayMessage {
    error(
        RelayErrorKind::Internal,
        "internal relay error; try again later",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_says_when_to_retry() {
        assert_eq!(
            rate_limited(42),
            RelayMessage::Error {
                kind: RelayErrorKind::RateLimited,
                message: "too many failed attempts; retry in 42 s".into(),
                retry_after_secs: Some(42),
            }
        );
        assert!(matches!(
            login_failed(),
            RelayMessage::Error {
                kind: RelayErrorKind::LoginFailed,
                retry_after_secs: None,
                ..
            }
        ));
    }
}
