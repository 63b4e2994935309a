//! Known-answer test of the end-to-end cipher suite: with fixed seeds the handshake and the
//! first transport message are fixed bytes. Any change of suite (ChaChaPoly instead of
//! AES-256-GCM, BLAKE2 instead of SHA-256, another pattern) or of the handshake's payloads
//! changes them, and this test fails: the suite `Noise_XX_25519_AESGCM_SHA256` is pinned, not
//! merely agreed by both ends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sha2::{Digest, Sha256};
use sightline_core::e2e::{
    AgentHandshake, E2eConfig, IdentityProof, OperatorHandshake, Role, Trust,
};
use sightline_core::frame::FrameDecoder;

fn cfg(seed: u8) -> E2eConfig {
    E2eConfig {
        session_id: [7u8; 16],
        seed: [seed; 32],
        trust: Trust::AnyAgentKey,
        channel: Default::default(),
    }
}

/// The Noise message inside one framed message.
fn unframe(framed: &[u8]) -> Vec<u8> {
    let mut d = FrameDecoder::new();
    d.push(framed);
    d.next_message().unwrap().unwrap()
}

/// SHA-256 over the three handshake messages and the operator's first transport message.
fn transcript_digest() -> String {
    let (op, m1) = OperatorHandshake::start(cfg(1)).unwrap();
    let (ag, m2) = AgentHandshake::new(cfg(2))
        .unwrap()
        .read_hello(&unframe(&m1))
        .unwrap();
    let (done, m3) = op.read_response(&unframe(&m2)).unwrap();
    let agent_done = ag.read_finish(&unframe(&m3)).unwrap();
    assert_eq!(done.handshake_hash(), agent_done.handshake_hash());
    assert_eq!(done.sas(), agent_done.sas());
    let proof = IdentityProof {
        role: Role::Operator,
        public_key: vec![1, 2, 3],
        certificate: None,
        signature: vec![4, 5, 6],
    };
    let (_, t1) = done.send_identity_proof(&proof).unwrap();
    let mut h = Sha256::new();
    for m in [&m1, &m2, &m3, &t1] {
        h.update((m.len() as u32).to_be_bytes());
        h.update(m);
    }
    hex::encode(h.finalize())
}

#[test]
fn the_suite_is_noise_xx_25519_aes256gcm_sha256() {
    assert_eq!(
        transcript_digest(),
        "3de273186d107c47de7a494f01938824bdc75a1099b2d8cadfbfb0f67a80ad80",
        "the end-to-end handshake or cipher changed: if on purpose, bump the protocol version \
         and update this vector"
    );
}
