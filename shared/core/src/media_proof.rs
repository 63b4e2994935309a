//! Proof that a recording is what the agent sent: the agent keeps a running SHA-256 over the
//! video it puts into the end-to-end session (every picture format and every encoded packet,
//! in order) and, every few seconds and at the end, signs the running value as a
//! [`SignedCheckpoint`]. The viewer stores the checkpoints in the recording next to the
//! packets; a verifier recomputes the hash over the recorded packets and compares.
//!
//! Checkpoints are signed with a per-session Ed25519 key, not the agent's RSA identity: an RSA
//! signature every few seconds would break the rule of at most one RSA signature per
//! decision (RUSTSEC-2023-0071) and cost milliseconds each. The session key is bound to the
//! agent's identity once, by the RSA-signed session event
//! [`crate::session_events::SessionEvent::MediaKey`], which the relay's audit log keeps too.
//!
//! Each window (the items between two checkpoints) is chained from the value the previous
//! checkpoint signed, so a packet lost in flight (a connection that broke and resumed) spoils
//! only its own window; a verifier reports which windows hold.
//!
//! ```text
//! h0       = SHA-256("sightline media hash v1" || session id)
//! config   : h = SHA-256(h || 0x01 || width u32 LE || height u32 LE)
//! packet   : h = SHA-256(h || 0x02 || seq u64 LE || capture_us u64 LE || keyframe u8
//!                           || len u64 LE || SHA-256(data))
//! checkpoint k signs (session id, k, items so far, h, last?) with the session's Ed25519 key
//! ```
//!
//! Sans-IO: the caller supplies the clock reading and the key.

use crate::relay_proto::SessionId;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Domain separation of the checkpoint signature.
pub const CHECKPOINT_LABEL: &[u8] = b"sightline media checkpoint v1";
const HASH_LABEL: &[u8] = b"sightline media hash v1";
/// How often the agent signs a checkpoint while video flows.
pub const CHECKPOINT_EVERY_SECS: u64 = 5;

/// The running hash over what the agent sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaHasher {
    hash: [u8; 32],
    items: u64,
}

impl MediaHasher {
    /// The value before anything was sent in session `session_id`.
    pub fn new(session_id: &SessionId) -> Self {
        let mut h = Sha256::new();
        h.update(HASH_LABEL);
        h.update(session_id);
        Self {
            hash: h.finalize().into(),
            items: 0,
        }
    }

    /// A picture format ([`crate::messages::Message::VideoConfig`]).
    pub fn add_config(&mut self, width: u32, height: u32) {
        let mut h = Sha256::new();
        h.update(self.hash);
        h.update([1]);
        h.update(width.to_le_bytes());
        h.update(height.to_le_bytes());
        self.step(h);
    }

    /// An encoded picture ([`crate::messages::Message::VideoPacket`]).
    pub fn add_packet(&mut self, seq: u64, capture_us: u64, keyframe: bool, data: &[u8]) {
        let mut h = Sha256::new();
        h.update(self.hash);
        h.update([2]);
        h.update(seq.to_le_bytes());
        h.update(capture_us.to_le_bytes());
        h.update([u8::from(keyframe)]);
        h.update((data.len() as u64).to_le_bytes());
        h.update(Sha256::digest(data));
        self.step(h);
    }

    /// Hashes `msg` if it is video (config or packet); whether it was.
    pub fn add_message(&mut self, msg: &crate::messages::Message) -> bool {
        use crate::messages::Message;
        match msg {
            Message::VideoConfig { width, height, .. } => self.add_config(*width, *height),
            Message::VideoPacket {
                seq,
                capture_us,
                keyframe,
                data,
            } => self.add_packet(*seq, *capture_us, *keyframe, data),
            _ => return false,
        }
        true
    }

    fn step(&mut self, h: Sha256) {
        self.hash = h.finalize().into();
        self.items = self.items.saturating_add(1);
    }

    /// The running value.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// Items hashed since the session began.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// Carries on from what a checkpoint signed (a verifier, after a window that did not
    /// match, checks the next window on its own).
    pub fn resync(&mut self, checkpoint: &CheckpointBody) {
        self.hash = checkpoint.hash;
        self.items = checkpoint.items;
    }
}

/// What a checkpoint says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointBody {
    /// The session.
    pub session_id: SessionId,
    /// 1 for the session's first checkpoint, then one more for each.
    pub number: u32,
    /// Items (configs and packets) hashed since the session began.
    pub items: u64,
    /// The running value after them.
    pub hash: [u8; 32],
    /// When, microseconds since the Unix epoch (agent clock).
    pub at_us: u64,
    /// The session's last checkpoint: nothing was sent after it.
    pub last: bool,
}

/// A checkpoint as the agent signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    /// [`CheckpointBody`], postcard-encoded.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    /// Ed25519 over `CHECKPOINT_LABEL || body` by the session's media key.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// Why a checkpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// Not signed by the session's media key.
    #[error("the checkpoint is not signed by the session's media key")]
    BadSignature,
    /// The body does not decode.
    #[error("the checkpoint does not decode")]
    Malformed,
    /// It belongs to another session.
    #[error("the checkpoint belongs to another session")]
    WrongSession,
    /// The body could not be encoded.
    #[error("the checkpoint could not be encoded")]
    Encode,
}

fn signed_bytes(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHECKPOINT_LABEL.len() + body.len());
    m.extend_from_slice(CHECKPOINT_LABEL);
    m.extend_from_slice(body);
    m
}

impl SignedCheckpoint {
    /// Signs `body` with the session's media `key`.
    pub fn sign(key: &SigningKey, body: &CheckpointBody) -> Result<Self, CheckpointError> {
        let body = postcard::to_allocvec(body).map_err(|_| CheckpointError::Encode)?;
        let signature = key.sign(&signed_bytes(&body)).to_bytes().to_vec();
        Ok(Self { body, signature })
    }

    /// Checks the signature against the session's media `key` (32 bytes, from the
    /// agent-signed [`crate::session_events::SessionEvent::MediaKey`]) and the session.
    pub fn verify(
        &self,
        key: &[u8; 32],
        session_id: &SessionId,
    ) -> Result<CheckpointBody, CheckpointError> {
        let key = VerifyingKey::from_bytes(key).map_err(|_| CheckpointError::BadSignature)?;
        let signature =
            Signature::from_slice(&self.signature).map_err(|_| CheckpointError::BadSignature)?;
        key.verify_strict(&signed_bytes(&self.body), &signature)
            .map_err(|_| CheckpointError::BadSignature)?;
        let body: CheckpointBody =
            postcard::from_bytes(&self.body).map_err(|_| CheckpointError::Malformed)?;
        if &body.session_id != session_id {
            return Err(CheckpointError::WrongSession);
        }
        Ok(body)
    }
}

/// The agent's side: the running hash, the key and the numbering of one session's
/// checkpoints.
#[derive(Debug)]
pub struct CheckpointSigner {
    session_id: SessionId,
    key: SigningKey,
    hasher: MediaHasher,
    number: u32,
    /// Items covered by the last checkpoint.
    signed_items: u64,
}

impl CheckpointSigner {
    /// A fresh session key (`seed`: 32 random bytes from the caller).
    pub fn new(session_id: SessionId, seed: [u8; 32]) -> Self {
        Self {
            session_id,
            key: SigningKey::from_bytes(&seed),
            hasher: MediaHasher::new(&session_id),
            number: 0,
            signed_items: 0,
        }
    }

    /// The public half, for [`crate::session_events::SessionEvent::MediaKey`].
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Hashes a message on its way to the viewer (video only; others are ignored).
    pub fn sent(&mut self, msg: &crate::messages::Message) {
        self.hasher.add_message(msg);
    }

    /// Whether anything was hashed since the last checkpoint.
    pub fn has_unsigned(&self) -> bool {
        self.hasher.items() != self.signed_items
    }

    /// The next checkpoint, at `now_us`; `last` for the session's final one.
    pub fn checkpoint(
        &mut self,
        now_us: u64,
        last: bool,
    ) -> Result<SignedCheckpoint, CheckpointError> {
        self.number = self.number.saturating_add(1);
        self.signed_items = self.hasher.items();
        SignedCheckpoint::sign(
            &self.key,
            &CheckpointBody {
                session_id: self.session_id,
                number: self.number,
                items: self.hasher.items(),
                hash: self.hasher.hash(),
                at_us: now_us,
                last,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verifier_recomputes_what_the_agent_signed() {
        let mut agent = CheckpointSigner::new([3; 16], [9; 32]);
        agent.sent(&crate::messages::Message::VideoConfig {
            codec: crate::messages::VideoCodec::Av1,
            width: 64,
            height: 48,
        });
        agent.sent(&crate::messages::Message::VideoPacket {
            seq: 0,
            capture_us: 5,
            keyframe: true,
            data: vec![1, 2, 3],
        });
        assert!(agent.has_unsigned());
        let cp = agent.checkpoint(10, true).unwrap();
        assert!(!agent.has_unsigned());
        let body = cp.verify(&agent.public_key(), &[3; 16]).unwrap();
        let mut v = MediaHasher::new(&[3; 16]);
        v.add_config(64, 48);
        v.add_packet(0, 5, true, &[1, 2, 3]);
        assert_eq!((v.hash(), v.items()), (body.hash, 2));
        assert!(body.last);
        let mut edited = MediaHasher::new(&[3; 16]);
        edited.add_config(64, 48);
        edited.add_packet(0, 5, true, &[1, 2, 4]);
        assert_ne!(edited.hash(), body.hash);
    }

    #[test]
    fn a_checkpoint_verifies_only_for_its_key_and_session() {
        let mut agent = CheckpointSigner::new([3; 16], [9; 32]);
        let cp = agent.checkpoint(1, false).unwrap();
        let other = CheckpointSigner::new([3; 16], [8; 32]);
        assert_eq!(
            cp.verify(&other.public_key(), &[3; 16]),
            Err(CheckpointError::BadSignature)
        );
        assert_eq!(
            cp.verify(&agent.public_key(), &[4; 16]),
            Err(CheckpointError::WrongSession)
        );
        let mut forged = cp.clone();
        forged.body[0] ^= 1;
        assert_eq!(
            forged.verify(&agent.public_key(), &[3; 16]),
            Err(CheckpointError::BadSignature)
        );
    }
}
