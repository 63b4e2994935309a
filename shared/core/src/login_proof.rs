//! Proof of possession at login: the operator's signature, with the identity key the
//! certificate is to be issued for, over a transcript that only this login can produce.
//!
//! ```text
//! -> LoginChallenge                       (the client asks)
//! <- LoginChallenge { challenge }         32 fresh random bytes from the relay
//! -> Login { .., operator_key, proof }    proof = RSA-PSS(identity key,
//!                                           LABEL || 0 || transcript)
//! ```
//! The transcript binds the relay channel (its Noise handshake hash, which the client and the
//! relay compute alike and nobody else knows), the relay's fresh challenge, the public key and
//! the user name, each length-prefixed. The relay verifies it before it checks the password,
//! so a certificate is only ever signed for a key whose private half took part in this very
//! login. The client signs once per login over a transcript it has never signed before (the
//! RSA advisory in DESIGN.md); the relay only verifies.
//!
//! Sans-IO: the relay draws the challenge with its own randomness and passes it in, the
//! client passes the signing randomness (RSA blinding) in.

use crate::error::{AuthError, Result};
use crate::identity::{PrivateIdentity, PublicIdentity};
use rand_core::CryptoRngCore;

/// Bytes in a login challenge.
pub const CHALLENGE_LEN: usize = 32;

/// The relay's fresh random challenge for one login attempt.
pub type Challenge = [u8; CHALLENGE_LEN];

/// Domain separation: these signatures can be mistaken for no other kind.
const LABEL: &[u8] = b"sightline operator login proof v1";

/// What one login's proof covers.
#[derive(Debug, Clone, Copy)]
pub struct LoginTranscript<'a> {
    /// The relay channel's Noise handshake hash ([`crate::channel::Channel::handshake_hash`]).
    pub channel_binding: &'a [u8; 32],
    /// The relay's challenge for this attempt.
    pub challenge: &'a Challenge,
    /// The operator's public key as sent in the login (SubjectPublicKeyInfo DER).
    pub operator_key: &'a [u8],
    /// The account name as sent in the login.
    pub user: &'a str,
}

impl LoginTranscript<'_> {
    /// The signed bytes: every field length-prefixed (u32, big-endian), so no two
    /// transcripts share an encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        length_prefixed(&[
            self.channel_binding,
            self.challenge,
            self.operator_key,
            self.user.as_bytes(),
        ])
    }

    /// The client's proof: `key` signs the transcript (RSA-PSS-SHA256, blinded with `rng`).
    /// `key` must be the private half of [`Self::operator_key`].
    pub fn sign(&self, key: &PrivateIdentity, rng: &mut impl CryptoRngCore) -> Vec<u8> {
        key.sign(rng, LABEL, &self.to_bytes())
    }

    /// The relay's check: `signature` was made over this transcript by the private half of
    /// `key`, which must be the key parsed from [`Self::operator_key`].
    pub fn verify(&self, key: &PublicIdentity, signature: &[u8]) -> Result<()> {
        if key.spki_der() != self.operator_key {
            return Err(AuthError::CertificateKeyMismatch.into());
        }
        key.verify(LABEL, &self.to_bytes(), signature)
    }
}

/// `fields`, each prefixed with its length (u32, big-endian): no two lists of fields share an
/// encoding.
pub(crate) fn length_prefixed(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fields.iter().map(|f| f.len() + 4).sum());
    for field in fields {
        // Lengths above u32::MAX cannot occur: messages are capped far below.
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::identity::MIN_PEER_BITS;
    use crate::Error;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::sync::OnceLock;

    fn keys() -> &'static (PrivateIdentity, PrivateIdentity) {
        static KEYS: OnceLock<(PrivateIdentity, PrivateIdentity)> = OnceLock::new();
        KEYS.get_or_init(|| {
            let mut rng = ChaCha20Rng::from_seed([7; 32]);
            (
                PrivateIdentity::generate(&mut rng, MIN_PEER_BITS).unwrap(),
                PrivateIdentity::generate(&mut rng, MIN_PEER_BITS).unwrap(),
            )
        })
    }

    const BINDING: [u8; 32] = [1; 32];
    const CHALLENGE: Challenge = [2; 32];

    fn transcript<'a>(key: &'a PublicIdentity, user: &'a str) -> LoginTranscript<'a> {
        LoginTranscript {
            channel_binding: &BINDING,
            challenge: &CHALLENGE,
            operator_key: key.spki_der(),
            user,
        }
    }

    #[test]
    fn the_holder_of_the_key_proves_it() {
        let (alice, _) = keys();
        let t = transcript(alice.public(), "alice");
        let proof = t.sign(alice, &mut ChaCha20Rng::from_seed([3; 32]));
        assert_eq!(t.verify(alice.public(), &proof), Ok(()));
    }

    #[test]
    fn any_other_transcript_key_or_signature_fails() {
        let (alice, mallory) = keys();
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let t = transcript(alice.public(), "alice");
        let proof = t.sign(alice, &mut rng);
        let bad = Err(Error::Auth(AuthError::BadSignature));
        // Another user name, challenge or channel.
        assert_eq!(
            transcript(alice.public(), "alicf").verify(alice.public(), &proof),
            bad
        );
        let other = [9u8; 32];
        let moved = LoginTranscript {
            challenge: &other,
            ..t
        };
        assert_eq!(moved.verify(alice.public(), &proof), bad);
        let moved = LoginTranscript {
            channel_binding: &other,
            ..t
        };
        assert_eq!(moved.verify(alice.public(), &proof), bad);
        // Missing, truncated or flipped.
        assert_eq!(t.verify(alice.public(), &[]), bad);
        assert_eq!(t.verify(alice.public(), &proof[1..]), bad);
        let mut flipped = proof.clone();
        flipped[10] ^= 1;
        assert_eq!(t.verify(alice.public(), &flipped), bad);
        // Mallory signs a transcript naming alice's key: she does not hold it.
        let forged = t.sign(mallory, &mut rng);
        assert_eq!(t.verify(alice.public(), &forged), bad);
        // A key other than the one in the transcript is refused outright.
        assert_eq!(
            t.verify(mallory.public(), &forged),
            Err(Error::Auth(AuthError::CertificateKeyMismatch))
        );
    }

    #[test]
    fn fields_cannot_slide_into_each_other() {
        let a = LoginTranscript {
            channel_binding: &BINDING,
            challenge: &CHALLENGE,
            operator_key: b"ab",
            user: "c",
        };
        let b = LoginTranscript {
            operator_key: b"a",
            user: "bc",
            ..a
        };
        assert_ne!(a.to_bytes(), b.to_bytes());
        assert_eq!(a.to_bytes().len(), 4 * 4 + 32 + 32 + 2 + 1);
    }
}
