//! Application messages of the end-to-end session, after both identities are verified.
//!
//! The enum grows with later features (video, input, consent); postcard encodes the variant
//! index, so a message type this build does not know is a typed decode error, not a panic.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a session ended, sent in [`Message::Close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseReason {
    /// The operator ended the session.
    EndedByOperator,
    /// The customer ended the session.
    EndedByCustomer,
    /// The peer broke the protocol.
    ProtocolError,
    /// A side is shutting down.
    Shutdown,
    /// The peer stopped answering.
    Timeout,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::EndedByOperator => "ended by operator",
            CloseReason::EndedByCustomer => "ended by customer",
            CloseReason::ProtocolError => "protocol error",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Timeout => "timeout",
        })
    }
}

/// One application message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Sent first by each side after identities verify: what this peer can do.
    Hello {
        /// Software name and version, for diagnostics.
        software: String,
        /// Feature names this peer supports.
        capabilities: Vec<String>,
    },
    /// Liveness and round-trip measurement.
    Ping {
        /// Echoed in the pong.
        id: u64,
        /// Arbitrary bytes echoed back (also used to exercise fragmentation).
        payload: Vec<u8>,
    },
    /// Answer to a ping.
    Pong {
        /// The ping's id.
        id: u64,
        /// The ping's payload.
        payload: Vec<u8>,
    },
    /// Explicit end of the session; nothing follows it.
    Close {
        /// Why.
        reason: CloseReason,
    },
}
