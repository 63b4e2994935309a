//! Why the relay itself ends a relayed session, rather than a side leaving: the operator's
//! certificate was revoked (the revocation watch fires the session's stop signal through
//! [`crate::net::active`]), or the recording the help desk requires stopped
//! ([`crate::net::recording_watch`]). The session's task ([`crate::net::paired`]) handles both
//! alike: both connections are closed at once, the session's record ends abnormally with
//! [`Stop::reason`], the attached connection is told, and a side that tries to resume is told
//! the reason ([`crate::net::tickets::Tickets::end`]).

use crate::net::recording_watch::STALLED;

/// Why the relay ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The operator's certificate was revoked (or its account disabled or removed).
    Revoked,
    /// The session requires recording and its upload went silent.
    RecordingStalled,
}

impl Stop {
    /// Why, in words: the session's record says this, and so do the answers to both sides.
    pub fn reason(self) -> &'static str {
        match self {
            Stop::Revoked => "the operator's certificate was revoked",
            Stop::RecordingStalled => STALLED,
        }
    }

    /// How the relay's log names it as the end of the session.
    pub fn ended_by(self) -> &'static str {
        match self {
            Stop::Revoked => "relay: certificate revoked",
            Stop::RecordingStalled => "relay: recording stopped",
        }
    }
}
