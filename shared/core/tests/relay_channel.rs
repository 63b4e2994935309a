//! Client↔relay channel, two peers in memory: pinning, the CA-signed static key, tampering.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]

mod common;

use common::{keys, unframe, NOW};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sightline_core::channel::ChannelConfig;
use sightline_core::error::{AuthError, Error};
use sightline_core::relay_channel::{respond, ClientHandshake, RelayCredentials};
use sightline_core::relay_proto::{ClientMessage, RelayMessage, Secret};

fn creds(not_after: u64) -> RelayCredentials {
    RelayCredentials::new(
        &keys().ca,
        [3; 32],
        not_after,
        &mut ChaCha20Rng::from_seed([4; 32]),
    )
    .unwrap()
}

fn one(b: Vec<u8>) -> Vec<u8> {
    unframe(&b).remove(0)
}

#[test]
fn client_and_relay_exchange_secrets_only_after_the_pin_matches() {
    let c = creds(NOW + 3600);
    let pin = keys().ca.public().fingerprint();
    let (hs, m1) = ClientHandshake::start(pin, [1; 32], ChannelConfig::default()).unwrap();
    let (mut relay, m2) = respond(&c, &one(m1), [2; 32], ChannelConfig::default()).unwrap();
    let (mut client, info) = hs.finish(&one(m2), NOW).unwrap();
    assert_eq!(info.ca.fingerprint(), pin);
    let login = ClientMessage::Login {
        user: "alice".into(),
        password: Secret::new("correct horse battery"),
        second_factor: Some(Secret::new("123456")),
        operator_key: vec![1, 2, 3],
    };
    let b = client.send(&login).unwrap();
    // The password never appears in clear on the wire.
    assert!(!b.windows(7).any(|w| w == b"correct"));
    let got: Option<ClientMessage> = relay.receive(&unframe(&b)[0], "client message").unwrap();
    assert_eq!(got, Some(login));
    let b = relay
        .send(&RelayMessage::Paired {
            session_id: [9; 16],
        })
        .unwrap();
    let got: Option<RelayMessage> = client.receive(&unframe(&b)[0], "relay message").unwrap();
    assert_eq!(
        got,
        Some(RelayMessage::Paired {
            session_id: [9; 16]
        })
    );
}

#[test]
fn relay_with_another_key_is_refused() {
    let c = creds(NOW + 3600);
    let pin = keys().other_ca.public().fingerprint();
    let (hs, m1) = ClientHandshake::start(pin, [1; 32], ChannelConfig::default()).unwrap();
    let (_, m2) = respond(&c, &one(m1), [2; 32], ChannelConfig::default()).unwrap();
    let err = hs.finish(&one(m2), NOW).unwrap_err();
    assert!(
        matches!(err, Error::Auth(AuthError::RelayKeyMismatch { .. })),
        "{err:?}"
    );
}

#[test]
fn expired_static_key_proof_is_refused() {
    let c = creds(NOW);
    let pin = keys().ca.public().fingerprint();
    let (hs, m1) = ClientHandshake::start(pin, [1; 32], ChannelConfig::default()).unwrap();
    let (_, m2) = respond(&c, &one(m1), [2; 32], ChannelConfig::default()).unwrap();
    assert_eq!(
        hs.finish(&one(m2), NOW).unwrap_err(),
        Error::Auth(AuthError::RelayStaticKey)
    );
}

#[test]
fn static_key_signed_by_another_ca_is_refused() {
    // A relay that holds the pinned CA's public key but not its private key cannot vouch for a
    // static key of its own: here the "proof" is made with another key and the pinned public key
    // is presented alongside it.
    let forged = RelayCredentials::new(
        &keys().other_ca,
        [3; 32],
        NOW + 3600,
        &mut ChaCha20Rng::from_seed([4; 32]),
    )
    .unwrap();
    let pin = keys().other_ca.public().fingerprint();
    let (hs, m1) = ClientHandshake::start(pin, [1; 32], ChannelConfig::default()).unwrap();
    let (_, m2) = respond(&forged, &one(m1), [2; 32], ChannelConfig::default()).unwrap();
    // other_ca is a 3072-bit key: below the CA minimum, refused as weak.
    assert!(matches!(
        hs.finish(&one(m2), NOW).unwrap_err(),
        Error::Auth(AuthError::WeakKey(_))
    ));
}

#[test]
fn bit_flips_in_the_relay_handshake_are_rejected() {
    let c = creds(NOW + 3600);
    let pin = keys().ca.public().fingerprint();
    let (_, m1) = ClientHandshake::start(pin, [1; 32], ChannelConfig::default()).unwrap();
    let m1 = one(m1);
    for offset in 0..m1.len() {
        let mut bad = m1.clone();
        bad[offset] ^= 1 << (offset % 8);
        let (hs, _) = ClientHandshake::start(pin, [1; 32], ChannelConfig::default()).unwrap();
        let outcome = respond(&c, &bad, [2; 32], ChannelConfig::default())
            .and_then(|(_, m2)| hs.finish(&one(m2), NOW).map(|_| ()));
        assert!(outcome.is_err(), "flip at {offset} in message 1 accepted");
    }
    let (_, m2) = respond(&c, &m1, [2; 32], ChannelConfig::default()).unwrap();
    let m2 = one(m2);
    for offset in 0..m2.len() {
        let mut bad = m2.clone();
        bad[offset] ^= 1 << (offset % 8);
        let (hs, _) = ClientHandshake::start(pin, [1; 32], ChannelConfig::default()).unwrap();
        assert!(
            hs.finish(&bad, NOW).is_err(),
            "flip at {offset} in message 2 accepted"
        );
    }
}

#[test]
fn unsupported_version_is_reported() {
    // A first message whose clear payload announces version 2: build it with the same pattern.
    let c = creds(NOW + 3600);
    let pin = keys().ca.public().fingerprint();
    let (_, m1) = ClientHandshake::start(pin, [1; 32], ChannelConfig::default()).unwrap();
    let mut m1 = one(m1);
    // The payload is the last bytes: postcard varint of the version (1) in clear.
    let last = m1.len() - 1;
    assert_eq!(m1[last], 1);
    m1[last] = 2;
    assert_eq!(
        respond(&c, &m1, [2; 32], ChannelConfig::default()).unwrap_err(),
        Error::UnsupportedVersion(2)
    );
}
