//! Signed checkpoints: the relay's audit key (Ed25519, RFC 8032) vouching for the hash of one
//! entry and the number of entries up to it. A checkpoint is itself stored as an audit entry
//! (action [`ACTION`], detail the JSON of [`Checkpoint`]), right after the entry it covers, so
//! every export carries anchors.
//!
//! The signature covers [`TAG`], a zero byte, then `entry` (8-byte big-endian), `hash` (32
//! bytes), `count` and `at` (8-byte big-endian each) and the public key (32 bytes): fixed
//! sizes, independent of how the JSON is spelled. Pure functions; no clock, no I/O.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Action of a checkpoint entry.
pub const ACTION: &str = "audit.checkpoint";
/// Actor of a checkpoint entry.
pub const ACTOR: &str = "relay";
/// Domain-separation tag of the signed message (followed by a zero byte).
pub const TAG: &[u8] = b"sightline.audit.checkpoint.v1";

/// What a checkpoint says, with its signature: the detail of a checkpoint entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Id of the entry it covers (the one just before it).
    pub entry: i64,
    /// That entry's hash, 64 hex digits.
    pub hash: String,
    /// Entries in the log up to and including that one.
    pub count: u64,
    /// When it was made, Unix seconds.
    pub at: u64,
    /// The audit public key, 64 hex digits (the raw 32-byte Ed25519 key).
    pub key: String,
    /// Ed25519 signature over the fields, 128 hex digits.
    pub signature: String,
}

/// Why a checkpoint is not good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The detail is not a checkpoint's JSON.
    #[error("checkpoint unreadable: {0}")]
    Unreadable(String),
    /// A hex field has the wrong length or digits.
    #[error("checkpoint field {0} is malformed")]
    Malformed(&'static str),
    /// It names a key other than the one expected.
    #[error("checkpoint signed by another key ({0})")]
    OtherKey(String),
    /// The signature does not verify.
    #[error("checkpoint signature does not verify")]
    BadSignature,
}

fn message(
    tag: &[u8],
    entry: i64,
    hash: &[u8; 32],
    count: u64,
    at: u64,
    key: &[u8; 32],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(tag.len() + 1 + 8 + 32 + 8 + 8 + 32);
    m.extend_from_slice(tag);
    m.push(0);
    m.extend_from_slice(&entry.to_be_bytes());
    m.extend_from_slice(hash);
    m.extend_from_slice(&count.to_be_bytes());
    m.extend_from_slice(&at.to_be_bytes());
    m.extend_from_slice(key);
    m
}

impl Checkpoint {
    /// Signs a checkpoint over entry `entry` with hash `hash`, the `count`-th entry.
    pub fn sign(key: &SigningKey, entry: i64, hash: &[u8; 32], count: u64, at: u64) -> Self {
        Self::sign_tagged(TAG, key, entry, hash, count, at)
    }

    /// Signs the same fields under another domain-separation `tag` (a prune checkpoint's), so
    /// that one kind can never be passed off as the other.
    pub(crate) fn sign_tagged(
        tag: &[u8],
        key: &SigningKey,
        entry: i64,
        hash: &[u8; 32],
        count: u64,
        at: u64,
    ) -> Self {
        let public = key.verifying_key().to_bytes();
        let signature = key.sign(&message(tag, entry, hash, count, at, &public));
        Self {
            entry,
            hash: hex::encode(hash),
            count,
            at,
            key: hex::encode(public),
            signature: hex::encode(signature.to_bytes()),
        }
    }

    /// Parses a checkpoint entry's detail.
    pub fn parse(detail: &str) -> Result<Self, CheckpointError> {
        serde_json::from_str(detail).map_err(|e| CheckpointError::Unreadable(e.to_string()))
    }

    /// The JSON stored as the entry's detail.
    pub fn to_detail(&self) -> String {
        // A struct of integers and strings always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks that `expected` signed it; returns the hash it vouches for.
    pub fn verify(&self, expected: &VerifyingKey) -> Result<[u8; 32], CheckpointError> {
        self.verify_tagged(TAG, expected)
    }

    /// Checks that `expected` signed it under `tag`; returns the hash it vouches for.
    pub(crate) fn verify_tagged(
        &self,
        tag: &[u8],
        expected: &VerifyingKey,
    ) -> Result<[u8; 32], CheckpointError> {
        let key = super::chain::parse_hash(&self.key).ok_or(CheckpointError::Malformed("key"))?;
        if key != expected.to_bytes() {
            return Err(CheckpointError::OtherKey(self.key.clone()));
        }
        let hash =
            super::chain::parse_hash(&self.hash).ok_or(CheckpointError::Malformed("hash"))?;
        let mut sig = [0u8; 64];
        hex::decode_to_slice(&self.signature, &mut sig)
            .map_err(|_| CheckpointError::Malformed("signature"))?;
        expected
            .verify(
                &message(tag, self.entry, &hash, self.count, self.at, &key),
                &Signature::from_bytes(&sig),
            )
            .map_err(|_| CheckpointError::BadSignature)?;
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn signed_checkpoints_round_trip_through_their_detail() {
        let k = key(7);
        let cp = Checkpoint::sign(&k, 41, &[3; 32], 41, 1_700_000_000);
        let back = Checkpoint::parse(&cp.to_detail()).unwrap();
        assert_eq!(back, cp);
        assert_eq!(back.verify(&k.verifying_key()), Ok([3; 32]));
    }

    #[test]
    fn any_changed_field_or_other_key_is_refused() {
        let k = key(7);
        let cp = Checkpoint::sign(&k, 41, &[3; 32], 41, 1_700_000_000);
        let changed = [
            Checkpoint {
                entry: 40,
                ..cp.clone()
            },
            Checkpoint {
                count: 40,
                ..cp.clone()
            },
            Checkpoint {
                at: 1,
                ..cp.clone()
            },
            Checkpoint {
                hash: hex::encode([4; 32]),
                ..cp.clone()
            },
        ];
        for c in changed {
            assert_eq!(
                c.verify(&k.verifying_key()),
                Err(CheckpointError::BadSignature)
            );
        }
        let other = key(8);
        assert!(matches!(
            cp.verify(&other.verifying_key()),
            Err(CheckpointError::OtherKey(_))
        ));
        // Re-signed by another key but claiming the expected one.
        let forged = Checkpoint {
            key: cp.key.clone(),
            ..Checkpoint::sign(&other, 41, &[3; 32], 41, 1_700_000_000)
        };
        assert_eq!(
            forged.verify(&k.verifying_key()),
            Err(CheckpointError::BadSignature)
        );
        let bad = Checkpoint {
            signature: "00".into(),
            ..cp
        };
        assert_eq!(
            bad.verify(&k.verifying_key()),
            Err(CheckpointError::Malformed("signature"))
        );
    }

    #[test]
    fn junk_details_are_errors_not_panics() {
        for junk in ["", "{}", "[1]", "{\"entry\":\"x\"}", "\u{0}"] {
            assert!(matches!(
                Checkpoint::parse(junk),
                Err(CheckpointError::Unreadable(_))
            ));
        }
        let mut extra: serde_json::Value =
            serde_json::from_str(&Checkpoint::sign(&key(1), 1, &[0; 32], 1, 1).to_detail())
                .unwrap();
        extra["more"] = 1.into();
        assert!(Checkpoint::parse(&extra.to_string()).is_err());
    }
}
