//! RSA identity keys: generation, PKCS#8 PEM, fingerprints, and RSA-PSS-SHA256 signatures
//! with domain-separation labels.
//!
//! The `rsa` crate's private-key operation is not constant time (RUSTSEC-2023-0071). We only
//! ever sign (never decrypt), always with blinding, over fresh transcripts chosen by this side,
//! and the callers rate-limit what can trigger a signature.

use crate::error::{AuthError, Error, Result};
use rand_core::CryptoRngCore;
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::pss::{BlindedSigningKey, Signature, VerifyingKey};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use zeroize::Zeroizing;

/// Default size of viewer and agent identity keys.
pub const DEFAULT_IDENTITY_BITS: usize = 3072;
/// Size of the relay's CA key.
pub const CA_BITS: usize = 4096;
/// Weakest RSA key accepted from any peer.
pub const MIN_PEER_BITS: usize = 3072;

/// SHA-256 of a public key's SubjectPublicKeyInfo DER.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Fingerprint of SubjectPublicKeyInfo DER bytes.
    pub fn of_spki_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// Constant-time comparison (fingerprints are public, but this keeps habits uniform).
    pub fn ct_eq(&self, other: &Fingerprint) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Error parsing a fingerprint given by a user.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "a key fingerprint is 64 hexadecimal digits (SHA-256), optionally separated by ':' or spaces"
)]
pub struct BadFingerprint;

impl FromStr for Fingerprint {
    type Err = BadFingerprint;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let cleaned: String = s
            .chars()
            .filter(|c| !matches!(c, ':' | ' ' | '-'))
            .collect::<String>()
            .to_lowercase();
        let bytes = hex::decode(cleaned).map_err(|_| BadFingerprint)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| BadFingerprint)?;
        Ok(Fingerprint(arr))
    }
}

/// A verified RSA public key with its DER encoding and fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicIdentity {
    key: RsaPublicKey,
    der: Vec<u8>,
    fingerprint: Fingerprint,
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicIdentity({}, {} bits)",
            self.fingerprint,
            self.bits()
        )
    }
}

impl PublicIdentity {
    /// Parses SubjectPublicKeyInfo DER and rejects keys below `min_bits`.
    pub fn from_spki_der(der: &[u8], min_bits: usize) -> Result<Self> {
        let key = RsaPublicKey::from_public_key_der(der)
            .map_err(|_| AuthError::WeakKey("not an RSA public key"))?;
        if key.size() * 8 < min_bits {
            return Err(AuthError::WeakKey("RSA key too short").into());
        }
        // Re-encode so that the fingerprint is over the canonical form.
        let canonical = key
            .to_public_key_der()
            .map_err(|_| AuthError::WeakKey("RSA key cannot be encoded"))?
            .into_vec();
        if canonical != der {
            return Err(AuthError::WeakKey("non-canonical key encoding").into());
        }
        Ok(Self {
            fingerprint: Fingerprint::of_spki_der(der),
            der: der.to_vec(),
            key,
        })
    }

    fn from_key(key: RsaPublicKey) -> Result<Self> {
        let der = key
            .to_public_key_der()
            .map_err(|e| Error::Local(format!("public key encoding: {e}")))?
            .into_vec();
        Ok(Self {
            fingerprint: Fingerprint::of_spki_der(&der),
            der,
            key,
        })
    }

    /// SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.der
    }

    /// SHA-256 of the SubjectPublicKeyInfo DER.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.size() * 8
    }

    /// Verifies an RSA-PSS-SHA256 signature over `label || 0 || message`.
    pub fn verify(&self, label: &[u8], message: &[u8], signature: &[u8]) -> Result<()> {
        let sig = Signature::try_from(signature).map_err(|_| AuthError::BadSignature)?;
        let vk = VerifyingKey::<Sha256>::new(self.key.clone());
        vk.verify(&labelled(label, message), &sig)
            .map_err(|_| AuthError::BadSignature.into())
    }
}

/// An RSA private key used for identity (viewer, agent) or as the relay CA.
#[derive(Clone)]
pub struct PrivateIdentity {
    key: RsaPrivateKey,
    public: PublicIdentity,
}

impl fmt::Debug for PrivateIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateIdentity({:?})", self.public)
    }
}

impl PrivateIdentity {
    /// Generates a new key of `bits` bits (at least 2048).
    pub fn generate(rng: &mut impl CryptoRngCore, bits: usize) -> Result<Self> {
        if bits < 2048 {
            return Err(Error::Local("RSA keys must have at least 2048 bits".into()));
        }
        let key = RsaPrivateKey::new(rng, bits)
            .map_err(|e| Error::Local(format!("RSA key generation: {e}")))?;
        Self::from_key(key)
    }

    fn from_key(key: RsaPrivateKey) -> Result<Self> {
        key.validate()
            .map_err(|_| Error::Local("RSA private key is inconsistent".into()))?;
        let public = PublicIdentity::from_key(key.to_public_key())?;
        Ok(Self { key, public })
    }

    /// Parses a PKCS#8 PEM private key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        let key = RsaPrivateKey::from_pkcs8_pem(pem)
            .map_err(|_| Error::Local("not a PKCS#8 PEM RSA private key".into()))?;
        Self::from_key(key)
    }

    /// Encodes as PKCS#8 PEM (the secret is zeroed when dropped).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| Error::Local(format!("private key encoding: {e}")))
    }

    /// The public half.
    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    /// Signs `label || 0 || message` with RSA-PSS-SHA256, blinded.
    pub fn sign(&self, rng: &mut impl CryptoRngCore, label: &[u8], message: &[u8]) -> Vec<u8> {
        let sk = BlindedSigningKey::<Sha256>::new(self.key.clone());
        sk.sign_with_rng(rng, &labelled(label, message)).to_vec()
    }
}

fn labelled(label: &[u8], message: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(label.len() + 1 + message.len());
    m.extend_from_slice(label);
    m.push(0);
    m.extend_from_slice(message);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_parses_common_spellings() {
        let fp = Fingerprint([0xab; 32]);
        assert_eq!(fp.to_string().parse::<Fingerprint>(), Ok(fp));
        let colons = fp
            .to_string()
            .to_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(colons.parse::<Fingerprint>(), Ok(fp));
        assert_eq!("abcd".parse::<Fingerprint>(), Err(BadFingerprint));
        assert_eq!("zz".repeat(32).parse::<Fingerprint>(), Err(BadFingerprint));
    }
}
