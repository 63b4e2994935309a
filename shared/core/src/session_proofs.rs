//! Proofs of possession for the two requests that tie an identity key to a relayed session,
//! each a signature over a transcript that only this relay connection can produce (its Noise
//! handshake hash; see [`crate::login_proof`] for the pattern):
//!
//! - **Join**: the customer's agent signs the channel, the code and its public key, so the relay
//!   knows which agent key the session's signed events ([`crate::session_events`]) must carry.
//! - **Attach**: the operator's viewer, on a second connection while the session runs, signs
//!   the channel, the session id and its public key (the one its certificate names), so the
//!   relay accepts the session's events only from the session's own operator.
//!
//! Sans-IO: the signer passes its randomness (RSA blinding) in.

use crate::error::{AuthError, Result};
use crate::identity::{PrivateIdentity, PublicIdentity};
use crate::login_proof::length_prefixed;
use crate::relay_proto::SessionId;
use rand_core::CryptoRngCore;

const JOIN_LABEL: &[u8] = b"sightline agent join proof v1";
const ATTACH_LABEL: &[u8] = b"sightline operator attach proof v1";

/// What an agent's join proof covers.
#[derive(Debug, Clone, Copy)]
pub struct JoinTranscript<'a> {
    /// The relay channel's Noise handshake hash.
    pub channel_binding: &'a [u8; 32],
    /// The code as sent.
    pub code: &'a str,
    /// The agent's public key as sent (SubjectPublicKeyInfo DER).
    pub agent_key: &'a [u8],
}

/// What an operator's attach proof covers.
#[derive(Debug, Clone, Copy)]
pub struct AttachTranscript<'a> {
    /// The relay channel's Noise handshake hash.
    pub channel_binding: &'a [u8; 32],
    /// The session attached to.
    pub session_id: &'a SessionId,
    /// The operator's public key (SubjectPublicKeyInfo DER), as its certificate names it.
    pub operator_key: &'a [u8],
}

impl JoinTranscript<'_> {
    fn to_bytes(self) -> Vec<u8> {
        length_prefixed(&[self.channel_binding, self.code.as_bytes(), self.agent_key])
    }

    /// The agent's proof; `key` is the private half of [`Self::agent_key`].
    pub fn sign(&self, key: &PrivateIdentity, rng: &mut impl CryptoRngCore) -> Vec<u8> {
        key.sign(rng, JOIN_LABEL, &self.to_bytes())
    }

    /// The relay's check, with `key` parsed from [`Self::agent_key`].
    pub fn verify(&self, key: &PublicIdentity, signature: &[u8]) -> Result<()> {
        if key.spki_der() != self.agent_key {
            return Err(AuthError::CertificateKeyMismatch.into());
        }
        key.verify(JOIN_LABEL, &self.to_bytes(), signature)
    }
}

impl AttachTranscript<'_> {
    fn to_bytes(self) -> Vec<u8> {
        length_prefixed(&[self.channel_binding, self.session_id, self.operator_key])
    }

    /// The operator's proof; `key` is the private half of [`Self::operator_key`].
    pub fn sign(&self, key: &PrivateIdentity, rng: &mut impl CryptoRngCore) -> Vec<u8> {
        key.sign(rng, ATTACH_LABEL, &self.to_bytes())
    }

    /// The relay's check, with `key` the key the operator's certificate names.
    pub fn verify(&self, key: &PublicIdentity, signature: &[u8]) -> Result<()> {
        if key.spki_der() != self.operator_key {
            return Err(AuthError::CertificateKeyMismatch.into());
        }
        key.verify(ATTACH_LABEL, &self.to_bytes(), signature)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::identity::MIN_PEER_BITS;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn a_proof_holds_only_for_its_channel_and_key_and_kind() {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let agent = PrivateIdentity::generate(&mut rng, MIN_PEER_BITS).unwrap();
        let other = PrivateIdentity::generate(&mut rng, MIN_PEER_BITS).unwrap();
        let der = agent.public().spki_der().to_vec();
        let join = JoinTranscript {
            channel_binding: &[1; 32],
            code: "1234567890",
            agent_key: &der,
        };
        let proof = join.sign(&agent, &mut rng);
        join.verify(agent.public(), &proof).unwrap();
        let elsewhere = JoinTranscript {
            channel_binding: &[2; 32],
            ..join
        };
        assert!(elsewhere.verify(agent.public(), &proof).is_err());
        assert!(join.verify(other.public(), &proof).is_err(), "key mismatch");
        // The same bytes as an attach proof do not pass: the labels differ.
        let attach = AttachTranscript {
            channel_binding: &[1; 32],
            session_id: &[0; 16],
            operator_key: &der,
        };
        assert!(attach.verify(agent.public(), &proof).is_err());
        let proof = attach.sign(&agent, &mut rng);
        attach.verify(agent.public(), &proof).unwrap();
    }
}
