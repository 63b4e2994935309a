//! The preamble of a direct connection to a LAN-only agent (no relay): before the end-to-end
//! handshake, the agent says which protocol version it speaks, picks the session id that the
//! handshake's prologue binds and says which revocation list it holds; the operator answers
//! with the relay authority its certificate chains to (root key and issuer certificate),
//! which the agent accepts only if the root matches the fingerprint pinned on the kiosk, and
//! with its own revocation list when that one is newer than the agent's.
//!
//! Both messages are public and travel in clear, framed like every Noise message
//! ([`crate::frame`]). Nothing in them is trusted: a substituted authority fails the pin or
//! the root's signature, a substituted list fails its signature, a substituted session id
//! fails the handshake (both sides bind it into the prologue), and an older list is ignored.

use crate::authority::Authority;
use crate::codec;
use crate::error::{AuthError, Error, Malformed, Result};
use crate::identity::Fingerprint;
use crate::relay_proto::SessionId;
use crate::revocation::RevocationList;
use serde::{Deserialize, Serialize};

/// Version of the direct-connection preamble.
pub const LAN_VERSION: u16 = 2;
/// First field of both preamble messages: names the protocol (a stray client gets a clear
/// error) and keeps every preamble frame above the transport's minimum frame size.
pub const LAN_MAGIC: [u8; 16] = *b"sightline direct";
/// Largest preamble message accepted, bytes: one Noise-sized frame (an authority is about
/// 1.5 KB; a revocation list adds a few bytes per entry).
pub const MAX_PREAMBLE_BYTES: usize = crate::frame::MAX_NOISE_MESSAGE;

/// Agent → operator, first message of a direct connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentHello {
    /// [`LAN_MAGIC`].
    pub magic: [u8; 16],
    /// [`LAN_VERSION`].
    pub version: u16,
    /// Random id of this session, bound into the end-to-end prologue.
    pub session_id: SessionId,
    /// Sequence number of the revocation list the agent holds (`None`: it holds none), so
    /// that the operator offers its own only when it is newer.
    pub revocation_sequence: Option<u64>,
}

/// Operator → agent, the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorHello {
    /// [`LAN_MAGIC`].
    pub magic: [u8; 16],
    /// [`LAN_VERSION`].
    pub version: u16,
    /// The relay authority the operator's certificate chains to, if the operator has a
    /// certificate. Decoding it checks the root's signature over the issuer certificate.
    pub authority: Option<Authority>,
    /// The operator's revocation list, when it is newer than the agent's. Decoding it checks
    /// its signature.
    pub revocations: Option<RevocationList>,
}

impl AgentHello {
    /// This version's hello for `session_id`, from an agent holding the revocation list with
    /// `revocation_sequence`.
    pub fn new(session_id: SessionId, revocation_sequence: Option<u64>) -> Self {
        Self {
            magic: LAN_MAGIC,
            version: LAN_VERSION,
            session_id,
            revocation_sequence,
        }
    }

    /// Serialised form (to frame and send).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        codec::encode(self)
    }

    /// Parses the agent's hello and checks its version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        check_size(bytes)?;
        let hello: AgentHello = codec::decode(bytes, "agent hello")?;
        if hello.magic != LAN_MAGIC || hello.version != LAN_VERSION {
            return Err(Error::Malformed(Malformed::Decode(
                "agent hello of another protocol version",
            )));
        }
        Ok(hello)
    }
}

impl OperatorHello {
    /// This version's answer, offering `authority` and, if it is newer than what the agent
    /// said it holds, `revocations`.
    pub fn new(
        authority: Option<Authority>,
        revocations: Option<RevocationList>,
        agent: &AgentHello,
    ) -> Self {
        let held = agent.revocation_sequence;
        let revocations = revocations.filter(|l| held.is_none_or(|seq| l.sequence() > seq));
        Self {
            magic: LAN_MAGIC,
            version: LAN_VERSION,
            authority,
            revocations,
        }
    }

    /// Serialised form (to frame and send).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        codec::encode(self)
    }

    /// Parses the operator's hello and checks its version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        check_size(bytes)?;
        let hello: OperatorHello = codec::decode(bytes, "operator hello")?;
        if hello.magic != LAN_MAGIC || hello.version != LAN_VERSION {
            return Err(Error::Malformed(Malformed::Decode(
                "operator hello of another protocol version",
            )));
        }
        Ok(hello)
    }

    /// The offered authority, if its root is the pinned key and its issuer certificate is
    /// valid at `now`; `None` when none was offered.
    pub fn pinned_authority(&self, pinned: &Fingerprint, now: u64) -> Result<Option<Authority>> {
        let Some(authority) = &self.authority else {
            return Ok(None);
        };
        authority.verify(pinned, now)?;
        Ok(Some(authority.clone()))
    }

    /// The offered revocation list, if one was offered: it must chain to the pinned root
    /// (a list from another relay is refused, not ignored). Whether it is newer than the
    /// agent's own is for the agent to decide.
    pub fn pinned_revocations(&self, pinned: &Fingerprint) -> Result<Option<RevocationList>> {
        let Some(list) = &self.revocations else {
            return Ok(None);
        };
        list.check_pin(pinned)
            .map_err(|_| AuthError::UntrustedRevocationList)?;
        Ok(Some(list.clone()))
    }
}

fn check_size(bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_PREAMBLE_BYTES {
        return Err(Error::Malformed(Malformed::Oversized {
            size: bytes.len(),
            limit: MAX_PREAMBLE_BYTES,
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_versions_and_junk() {
        let a = AgentHello::new([7; 16], Some(3));
        assert_eq!(AgentHello::from_bytes(&a.to_bytes().unwrap()).unwrap(), a);
        let o = OperatorHello::new(None, None, &a);
        assert_eq!(
            OperatorHello::from_bytes(&o.to_bytes().unwrap()).unwrap(),
            o
        );
        let old = AgentHello { version: 1, ..a };
        assert!(AgentHello::from_bytes(&old.to_bytes().unwrap()).is_err());
        assert!(OperatorHello::from_bytes(&[0xff; 10]).is_err());
        assert!(OperatorHello::from_bytes(&vec![0; MAX_PREAMBLE_BYTES + 1]).is_err());
        let pin: Fingerprint = "ab".repeat(32).parse().unwrap();
        // Even without an authority the frame is above the transport's minimum.
        assert!(o.to_bytes().unwrap().len() >= crate::frame::MIN_NOISE_MESSAGE);
        let stray = AgentHello {
            magic: *b"something else!!",
            ..a.clone()
        };
        assert!(AgentHello::from_bytes(&stray.to_bytes().unwrap()).is_err());
        assert!(o.pinned_authority(&pin, 0).unwrap().is_none());
        assert!(o.pinned_revocations(&pin).unwrap().is_none());
        // An authority that does not parse is refused with the whole hello, not trusted:
        // an empty root key and an empty issuer certificate.
        let mut bytes = o.to_bytes().unwrap();
        let at = bytes.len() - 2;
        bytes[at] = 1;
        bytes.splice(at + 1..at + 1, [0u8, 0, 0]);
        assert!(OperatorHello::from_bytes(&bytes).is_err());
    }
}
