//! What happens inside the end-to-end session, which the relay cannot read (the customer's
//! answers, control given and taken back), as events the agent signs with its identity key:
//! numbered from 1 in the order they happened and bound to the session, so that the relay can
//! check each against the key the agent joined with and see a withheld event as a gap in the
//! numbering. The agent sends them to the viewer, which hands them to the relay.
//!
//! Sans-IO: signing takes the clock reading and the randomness from the caller.

use crate::identity::{PrivateIdentity, PublicIdentity};
use crate::relay_proto::SessionId;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

/// Domain separation of the agent's signature over an event.
pub const SIGNATURE_LABEL: &[u8] = b"sightline session event v1";
/// Longest free text (a reason, permission names) an event may carry, in bytes.
pub const MAX_TEXT: usize = 512;

/// What the customer was asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Consent {
    /// Seeing the screen.
    Viewing,
    /// Using the keyboard and mouse.
    Control,
}

impl Consent {
    fn name(self) -> &'static str {
        match self {
            Self::Viewing => "viewing",
            Self::Control => "control",
        }
    }
}

/// How a question was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// Yes.
    Given,
    /// No.
    Declined,
    /// Nobody answered in time (counts as no).
    TimedOut,
}

/// Who ended the operator's control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevokedBy {
    /// The customer (terminal, hotkey or window).
    Customer,
    /// The operator gave it back.
    Operator,
    /// The session's limits (time, policy) or its end.
    Session,
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionEvent {
    /// The permissions the operator's certificate grants, as the agent enforces them.
    Permissions {
        /// Permission names, comma-separated.
        names: String,
    },
    /// The customer is asked.
    Asked {
        /// About what.
        what: Consent,
    },
    /// The customer answered (or did not).
    Answered {
        /// About what.
        what: Consent,
        /// The answer.
        answer: Answer,
    },
    /// The operator's control ended.
    ControlRevoked {
        /// By whom.
        by: RevokedBy,
    },
    /// The session ended, as the agent saw it.
    Ended {
        /// Why.
        reason: String,
    },
    /// The session's media key: the Ed25519 key whose checkpoints
    /// ([`crate::media_proof::SignedCheckpoint`]) prove what video the agent sent.
    MediaKey {
        /// The public key.
        key: [u8; 32],
    },
}

impl SessionEvent {
    /// The audit action: `consent.asked`, `consent.given`, `consent.declined`,
    /// `consent.timed_out`, `control.revoked`, `session.permissions`, `session.agent_ended`,
    /// `session.media_key`.
    pub fn action(&self) -> &'static str {
        match self {
            Self::Permissions { .. } => "session.permissions",
            Self::Asked { .. } => "consent.asked",
            Self::Answered { answer, .. } => match answer {
                Answer::Given => "consent.given",
                Answer::Declined => "consent.declined",
                Answer::TimedOut => "consent.timed_out",
            },
            Self::ControlRevoked { .. } => "control.revoked",
            Self::Ended { .. } => "session.agent_ended",
            Self::MediaKey { .. } => "session.media_key",
        }
    }

    /// What the audit entry says besides the action.
    pub fn detail(&self) -> String {
        match self {
            Self::Permissions { names } => format!("permissions: {names}"),
            Self::Asked { what } | Self::Answered { what, .. } => what.name().to_string(),
            Self::ControlRevoked { by } => format!(
                "by the {}",
                match by {
                    RevokedBy::Customer => "customer",
                    RevokedBy::Operator => "operator",
                    RevokedBy::Session => "session",
                }
            ),
            Self::Ended { reason } => reason.clone(),
            Self::MediaKey { key } => format!("media checkpoint key {}", hex::encode(key)),
        }
    }

    fn text_len(&self) -> usize {
        match self {
            Self::Permissions { names } => names.len(),
            Self::Ended { reason } => reason.len(),
            _ => 0,
        }
    }
}

/// An event with its place in the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBody {
    /// The relay's session id.
    pub session_id: SessionId,
    /// 1 for the session's first event, then one more for each.
    pub seq: u32,
    /// When, Unix seconds (agent clock).
    pub at: u64,
    /// What.
    pub event: SessionEvent,
}

/// An event as the agent signed it: the encoded body and the signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEvent {
    /// [`EventBody`], postcard-encoded.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    /// RSA-PSS over `SIGNATURE_LABEL || 0 || body` by the agent's identity key.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// Why an event is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The signature is not the agent's.
    #[error("the event is not signed by the session's agent")]
    BadSignature,
    /// The body does not decode.
    #[error("the event does not decode")]
    Malformed,
    /// The event belongs to another session.
    #[error("the event belongs to another session")]
    WrongSession,
    /// Sequence numbers start at 1.
    #[error("the event's number is 0")]
    BadNumber,
    /// Free text over [`MAX_TEXT`].
    #[error("the event's text is too long")]
    TooLong,
    /// The body could not be encoded.
    #[error("the event could not be encoded")]
    Encode,
}

impl SignedEvent {
    /// Signs `body` with the agent's `key`.
    pub fn sign(
        key: &PrivateIdentity,
        rng: &mut impl CryptoRngCore,
        body: &EventBody,
    ) -> Result<Self, EventError> {
        check(body)?;
        let body = postcard::to_allocvec(body).map_err(|_| EventError::Encode)?;
        let signature = key.sign(rng, SIGNATURE_LABEL, &body);
        Ok(Self { body, signature })
    }

    /// Checks the signature against the agent's `key` and that the event belongs to
    /// `session_id`; the body.
    pub fn verify(
        &self,
        key: &PublicIdentity,
        session_id: &SessionId,
    ) -> Result<EventBody, EventError> {
        key.verify(SIGNATURE_LABEL, &self.body, &self.signature)
            .map_err(|_| EventError::BadSignature)?;
        let body: EventBody =
            postcard::from_bytes(&self.body).map_err(|_| EventError::Malformed)?;
        if &body.session_id != session_id {
            return Err(EventError::WrongSession);
        }
        check(&body)?;
        Ok(body)
    }
}

fn check(body: &EventBody) -> Result<(), EventError> {
    if body.seq == 0 {
        return Err(EventError::BadNumber);
    }
    if body.event.text_len() > MAX_TEXT {
        return Err(EventError::TooLong);
    }
    Ok(())
}

/// The agent's numbering of one session's events.
#[derive(Debug, Clone)]
pub struct EventCounter {
    session_id: SessionId,
    last: u32,
}

impl EventCounter {
    /// The first event of `session_id` will be number 1.
    pub fn new(session_id: SessionId) -> Self {
        Self {
            session_id,
            last: 0,
        }
    }

    /// The next event's body, at `now`.
    pub fn next(&mut self, now: u64, event: SessionEvent) -> EventBody {
        self.last = self.last.saturating_add(1);
        EventBody {
            session_id: self.session_id,
            seq: self.last,
            at: now,
            event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::MIN_PEER_BITS;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::sync::OnceLock;

    fn key() -> &'static PrivateIdentity {
        static KEY: OnceLock<PrivateIdentity> = OnceLock::new();
        KEY.get_or_init(|| {
            PrivateIdentity::generate(&mut ChaCha20Rng::seed_from_u64(7), MIN_PEER_BITS).unwrap()
        })
    }

    #[test]
    fn a_signed_event_verifies_only_for_its_key_and_session() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut counter = EventCounter::new([1; 16]);
        let asked = counter.next(
            10,
            SessionEvent::Asked {
                what: Consent::Control,
            },
        );
        let given = counter.next(
            12,
            SessionEvent::Answered {
                what: Consent::Control,
                answer: Answer::Given,
            },
        );
        assert_eq!((asked.seq, given.seq), (1, 2));
        let signed = SignedEvent::sign(key(), &mut rng, &given).unwrap();
        assert_eq!(signed.verify(key().public(), &[1; 16]).unwrap(), given);
        assert_eq!(given.event.action(), "consent.given");
        assert_eq!(given.event.detail(), "control");
        assert_eq!(
            signed.verify(key().public(), &[2; 16]),
            Err(EventError::WrongSession)
        );
        let mut forged = signed.clone();
        let end = forged.body.len() - 1;
        forged.body[end] ^= 1;
        assert_eq!(
            forged.verify(key().public(), &[1; 16]),
            Err(EventError::BadSignature)
        );
        let other = PrivateIdentity::generate(&mut rng, MIN_PEER_BITS).unwrap();
        assert_eq!(
            signed.verify(other.public(), &[1; 16]),
            Err(EventError::BadSignature)
        );
    }

    #[test]
    fn numbers_start_at_one_and_text_is_bounded() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let zero = EventBody {
            session_id: [1; 16],
            seq: 0,
            at: 1,
            event: SessionEvent::Ended { reason: "x".into() },
        };
        assert_eq!(
            SignedEvent::sign(key(), &mut rng, &zero),
            Err(EventError::BadNumber)
        );
        let long = EventBody {
            seq: 1,
            event: SessionEvent::Ended {
                reason: "x".repeat(MAX_TEXT + 1),
            },
            ..zero
        };
        assert_eq!(
            SignedEvent::sign(key(), &mut rng, &long),
            Err(EventError::TooLong)
        );
    }
}
