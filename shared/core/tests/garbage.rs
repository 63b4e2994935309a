//! Bad input of any kind gets a typed error, never a panic: every parser that takes bytes from
//! a peer, a file or a user is fed random and mutated inputs from a seeded generator.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{keys, unframe, NOW};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sightline_core::cert::{CertBody, OperatorCert};
use sightline_core::channel::ChannelConfig;
use sightline_core::code::SessionCode;
use sightline_core::codec;
use sightline_core::e2e::{AgentHandshake, E2eConfig, IdentityProof, OperatorHandshake, Trust};
use sightline_core::frame::FrameDecoder;
use sightline_core::identity::{Fingerprint, PrivateIdentity, PublicIdentity};
use sightline_core::messages::Message;
use sightline_core::relay_channel::{respond, ClientHandshake, RelayCredentials};
use sightline_core::relay_proto::{ClientMessage, RelayMessage};

fn inputs(seed: u8, count: usize, max_len: usize) -> Vec<Vec<u8>> {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    (0..count)
        .map(|_| {
            let len = (rng.next_u32() as usize) % (max_len + 1);
            let mut v = vec![0u8; len];
            rng.fill_bytes(&mut v);
            v
        })
        .collect()
}

/// Valid encodings with random bytes overwritten, truncated or extended: closer to what a
/// fuzzer finds than pure noise.
fn mutations(valid: &[u8], seed: u8, count: usize) -> Vec<Vec<u8>> {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    (0..count)
        .map(|i| {
            let mut v = valid.to_vec();
            match i % 3 {
                0 if !v.is_empty() => {
                    let at = rng.next_u32() as usize % v.len();
                    v[at] = rng.next_u32() as u8;
                }
                1 => v.truncate(rng.next_u32() as usize % (v.len() + 1)),
                _ => v.extend_from_slice(&rng.next_u64().to_le_bytes()),
            }
            v
        })
        .collect()
}

#[test]
fn decoders_return_errors_on_garbage() {
    let ping = codec::encode(&Message::Ping {
        id: 3,
        payload: vec![1, 2, 3],
    })
    .unwrap();
    let login = codec::encode(&ClientMessage::Join {
        code: "1234567890".into(),
        agent: None,
    })
    .unwrap();
    let mut all = inputs(1, 3000, 300);
    all.extend(mutations(&ping, 2, 500));
    all.extend(mutations(&login, 3, 500));
    for bytes in &all {
        let _ = codec::decode::<Message>(bytes, "m");
        let _ = codec::decode::<ClientMessage>(bytes, "c");
        let _ = codec::decode::<RelayMessage>(bytes, "r");
        let _ = codec::decode::<IdentityProof>(bytes, "p");
        let _ = codec::decode::<CertBody>(bytes, "b");
        let _ = OperatorCert::from_bytes(bytes);
        let _ = PublicIdentity::from_spki_der(bytes, 2048);
        let text = String::from_utf8_lossy(bytes);
        let _ = PrivateIdentity::from_pkcs8_pem(&text);
        let _ = text.parse::<Fingerprint>();
        let _ = text.parse::<SessionCode>();
        let mut d = FrameDecoder::new();
        d.push(bytes);
        while let Ok(Some(_)) = d.next_message() {}
        let _ = d.finish();
    }
}

#[test]
fn a_valid_certificate_mutated_never_verifies_and_never_panics() {
    let cert = common::good_cert().to_bytes().unwrap();
    let ca = common::authority();
    for bytes in mutations(&cert, 4, 600) {
        if bytes == cert {
            continue;
        }
        if let Ok(c) = OperatorCert::from_bytes(&bytes) {
            assert!(
                ca.verify_operator(&c, NOW).is_err(),
                "a mutated certificate verified"
            );
        }
    }
}

#[test]
fn handshake_states_refuse_garbage() {
    let creds = RelayCredentials::new(
        &keys().ca,
        &common::authority(),
        [3; 32],
        NOW + 3600,
        &mut ChaCha20Rng::from_seed([4; 32]),
    )
    .unwrap();
    let pin = keys().root.public().fingerprint();
    for bytes in inputs(5, 300, 200) {
        // Relay receiving a bogus first message.
        let _ = respond(&creds, &bytes, [1; 32], ChannelConfig::default());
        // Client receiving a bogus answer.
        let (hs, _) = ClientHandshake::start(pin, [1; 32], ChannelConfig::default()).unwrap();
        assert!(hs.finish(&bytes, NOW).is_err());
        // Agent receiving a bogus first message, operator a bogus second.
        let cfg = |trust| E2eConfig {
            session_id: [0; 16],
            seed: [7; 32],
            trust,
            channel: ChannelConfig::default(),
        };
        let ag =
            AgentHandshake::new(cfg(Trust::OperatorCertificateFrom(common::authority()))).unwrap();
        let _ = ag.read_hello(&bytes);
        let (op, m1) = OperatorHandshake::start(cfg(Trust::AnyAgentKey)).unwrap();
        assert!(op.read_response(&bytes).is_err());
        assert_eq!(unframe(&m1).len(), 1);
    }
}
