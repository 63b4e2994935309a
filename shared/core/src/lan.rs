//! The preamble of a direct connection to a LAN-only agent (no relay): before the end-to-end
//! handshake, the agent says which protocol version it speaks and picks the session id that
//! the handshake's prologue binds; the operator answers with the relay CA key its certificate
//! chains to, which the agent accepts only if it matches the fingerprint pinned on the kiosk.
//!
//! Both messages are public and travel in clear, framed like every Noise message
//! ([`crate::frame`]). Nothing in them is trusted: a substituted CA key fails the pin, a
//! substituted session id fails the handshake (both sides bind it into the prologue).

use crate::codec;
use crate::error::{AuthError, Error, Malformed, Result};
use crate::identity::{Fingerprint, PublicIdentity, MIN_PEER_BITS};
use crate::relay_proto::SessionId;
use serde::{Deserialize, Serialize};

/// Version of the direct-connection preamble.
pub const LAN_VERSION: u16 = 1;
/// First field of both preamble messages: names the protocol (a stray client gets a clear
/// error) and keeps every preamble frame above the transport's minimum frame size.
pub const LAN_MAGIC: [u8; 16] = *b"sightline direct";
/// Largest preamble message accepted, bytes (a CA public key is about 550 bytes).
pub const MAX_PREAMBLE_BYTES: usize = 4096;

/// Agent → operator, first message of a direct connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentHello {
    /// [`LAN_MAGIC`].
    pub magic: [u8; 16],
    /// [`LAN_VERSION`].
    pub version: u16,
    /// Random id of this session, bound into the end-to-end prologue.
    pub session_id: SessionId,
}

/// Operator → agent, the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorHello {
    /// [`LAN_MAGIC`].
    pub magic: [u8; 16],
    /// [`LAN_VERSION`].
    pub version: u16,
    /// The relay CA key (SubjectPublicKeyInfo DER) the operator's certificate chains to, if the
    /// operator has a certificate.
    pub ca_key: Option<Vec<u8>>,
}

impl AgentHello {
    /// This version's hello for `session_id`.
    pub fn new(session_id: SessionId) -> Self {
        Self {
            magic: LAN_MAGIC,
            version: LAN_VERSION,
            session_id,
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
    /// This version's answer, offering `ca_key`.
    pub fn new(ca_key: Option<Vec<u8>>) -> Self {
        Self {
            magic: LAN_MAGIC,
            version: LAN_VERSION,
            ca_key,
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

    /// The offered CA key, if it is the pinned one; `None` when none was offered.
    pub fn pinned_ca(&self, pinned: &Fingerprint) -> Result<Option<PublicIdentity>> {
        let Some(der) = &self.ca_key else {
            return Ok(None);
        };
        let key = PublicIdentity::from_spki_der(der, MIN_PEER_BITS)?;
        let actual = key.fingerprint();
        if !actual.ct_eq(pinned) {
            return Err(AuthError::RelayKeyMismatch {
                expected: pinned.to_string(),
                actual: actual.to_string(),
            }
            .into());
        }
        Ok(Some(key))
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
        let a = AgentHello::new([7; 16]);
        assert_eq!(AgentHello::from_bytes(&a.to_bytes().unwrap()).unwrap(), a);
        let o = OperatorHello::new(Some(vec![1, 2, 3]));
        assert_eq!(
            OperatorHello::from_bytes(&o.to_bytes().unwrap()).unwrap(),
            o
        );
        let old = AgentHello { version: 0, ..a };
        assert!(AgentHello::from_bytes(&old.to_bytes().unwrap()).is_err());
        assert!(OperatorHello::from_bytes(&[0xff; 10]).is_err());
        assert!(OperatorHello::from_bytes(&vec![0; MAX_PREAMBLE_BYTES + 1]).is_err());
        // A key that does not parse is refused, not trusted.
        let pin: Fingerprint = "ab".repeat(32).parse().unwrap();
        assert!(o.pinned_ca(&pin).is_err());
        let none = OperatorHello::new(None);
        // Even without a key the frame is above the transport's minimum.
        assert!(none.to_bytes().unwrap().len() >= crate::frame::MIN_NOISE_MESSAGE);
        let stray = AgentHello {
            magic: *b"something else!!",
            ..a.clone()
        };
        assert!(AgentHello::from_bytes(&stray.to_bytes().unwrap()).is_err());
        assert!(none.pinned_ca(&pin).unwrap().is_none());
    }
}
