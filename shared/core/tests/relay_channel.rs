//! Client↔relay channel, two peers in memory: pinning, the CA-signed static key, tampering.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]

mod common;

use common::{authority, keys, unframe, NOW};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sightline_core::channel::ChannelConfig;
use sightline_core::error::{AuthError, Error};
use sightline_core::relay_channel::{respond, ClientHandshake, RelayCredentials};
use sightline_core::relay_proto::{ClientMessage, RelayMessage, Secret};

fn creds(not_after: u64) -> RelayCredentials {
    RelayCredentials::new(
        &keys().ca,
        &authority(),
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
    let pin = keys().root.public().fingerprint();
    let (hs, m1) = ClientHandshake::start(pin, [1; 32], ChannelConfig::default()).unwrap();
    let (mut relay, m2) = respond(&c, &one(m1), [2; 32], ChannelConfig::default()).unwrap();
    let (mut client, info) = hs.finish(&one(m2), NOW).unwrap();
    assert_eq!(info.authority.root().fingerprint(), pin);
    assert_eq!(info.authority, authority());
    let login = ClientMessage::Login {
        user: "alice".into(),
        password: Secret::new("correct horse battery"),
        second_factor: Some(Secret::new("123456")),
        operator_key: vec![1, 2, 3],
        proof: vec![4, 5, 6],
    };
    // Both ends share the handshake hash that a login's proof of possession is bound to.
    assert_eq!(client.handshake_hash(), relay.handshake_hash());
    let b = client.send(&login).unwrap();
    // The password never appears in clear on the wire.
    assert!(!b.windows(7).any(|w| w == b"correct"));
    let got: Option<ClientMessage> = relay.receive(&unframe(&b)[0], "client message").unwrap();
    assert_eq!(got, Some(login));
    let paired = RelayMessage::Paired {
        session_id: [9; 16],
        authority: authority(),
        resume_token: [7; 32],
    };
    let b = relay.send(&paired).unwrap();
    let got: Option<RelayMessage> = client.receive(&unframe(&b)[0], "relay message").unwrap();
    assert_eq!(got, Some(paired));
}

#[test]
fn relay_with_another_key_is_refused() {
    let c = creds(NOW + 3600);
    // Pinned to another root, or to the issuing key instead of the root.
    for pin in [
        keys().other_ca.public().fingerprint(),
        keys().ca.public().fingerprint(),
    ] {
        let (hs, m1) = ClientHandshake::start(pin, [1; 32], ChannelConfig::default()).unwrap();
        let (_, m2) = respond(&c, &one(m1), [2; 32], ChannelConfig::default()).unwrap();
        let err = hs.finish(&one(m2), NOW).unwrap_err();
        assert!(
            matches!(err, Error::Auth(AuthError::RelayKeyMismatch { .. })),
            "{err:?}"
        );
    }
}

#[test]
fn expired_static_key_proof_is_refused() {
    let c = creds(NOW);
    let pin = keys().root.public().fingerprint();
    let (hs, m1) = ClientHandshake::start(pin, [1; 32], ChannelConfig::default()).unwrap();
    let (_, m2) = respond(&c, &one(m1), [2; 32], ChannelConfig::default()).unwrap();
    assert_eq!(
        hs.finish(&one(m2), NOW).unwrap_err(),
        Error::Auth(AuthError::RelayStaticKey)
    );
}

#[test]
fn an_expired_issuing_certificate_is_refused_and_caps_the_proof() {
    // The proof asks for longer than the issuer is certified: it is capped at the issuer's end.
    let c = creds(u64::MAX);
    assert_eq!(c.not_after(), authority().issuer_body().not_after);
    let pin = keys().root.public().fingerprint();
    let (hs, m1) = ClientHandshake::start(pin, [1; 32], ChannelConfig::default()).unwrap();
    let (_, m2) = respond(&c, &one(m1), [2; 32], ChannelConfig::default()).unwrap();
    let after = authority().issuer_body().not_after;
    assert_eq!(
        hs.finish(&one(m2), after).unwrap_err(),
        Error::Auth(AuthError::IssuerExpired)
    );
    // Signing with a key that is not the authority's issuing key is refused locally.
    assert!(RelayCredentials::new(
        &keys().other_ca,
        &authority(),
        [3; 32],
        NOW + 3600,
        &mut ChaCha20Rng::from_seed([4; 32]),
    )
    .is_err());
}

#[test]
fn only_the_issuing_key_of_a_strong_root_vouches_for_the_channel() {
    // Credentials cannot pair an authority with a signature of another key.
    assert!(RelayCredentials::new(
        &keys().other_ca,
        &authority(),
        [3; 32],
        NOW + 3600,
        &mut ChaCha20Rng::from_seed([4; 32]),
    )
    .is_err());
    // A key too weak to be a root does not make an authority (3072 bits; roots have 4096).
    let weak = sightline_core::authority::Authority::certify(
        &keys().other_ca,
        keys().ca.public(),
        1,
        NOW - 60,
        86_400,
        &mut ChaCha20Rng::from_seed([4; 32]),
    );
    assert!(weak.is_err(), "a 3072-bit root made an authority");
}

#[test]
fn bit_flips_in_the_relay_handshake_are_rejected() {
    let c = creds(NOW + 3600);
    let pin = keys().root.public().fingerprint();
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
    // A first message whose clear payload announces the next version: build it with the same
    // pattern.
    let c = creds(NOW + 3600);
    let pin = keys().root.public().fingerprint();
    let (_, m1) = ClientHandshake::start(pin, [1; 32], ChannelConfig::default()).unwrap();
    let mut m1 = one(m1);
    // The payload is the last bytes: postcard varint of the version in clear.
    let version = sightline_core::PROTOCOL_VERSION;
    let last = m1.len() - 1;
    assert_eq!(u16::from(m1[last]), version);
    m1[last] += 1;
    assert_eq!(
        respond(&c, &m1, [2; 32], ChannelConfig::default()).unwrap_err(),
        Error::UnsupportedVersion(version + 1)
    );
}
