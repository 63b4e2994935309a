//! End-to-end session core, two peers in memory with a virtual clock: the handshake, every
//! way it must fail, and the established session's framing, rekeying and close semantics.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]

mod common;

use common::*;
use sightline_core::cert::Permissions;
use sightline_core::channel::ChannelConfig;
use sightline_core::e2e::{
    AgentHandshake, E2eConfig, Ending, IdentityProof, OperatorHandshake, PeerCheck, Progress, Role,
    Trust,
};
use sightline_core::error::{AuthError, Error, Malformed};
use sightline_core::messages::{CloseReason, Message};

fn assert_auth(
    r: Result<(impl std::fmt::Debug, impl std::fmt::Debug), Failure>,
    side: Role,
    e: AuthError,
) {
    match r {
        Err(f) => {
            assert_eq!(f.side, side, "rejected by the wrong side: {f:?}");
            assert_eq!(f.error, Error::Auth(e));
        }
        Ok(ok) => panic!("handshake should have failed, got {ok:?}"),
    }
}

#[test]
fn handshake_succeeds_with_verified_identities_and_equal_sas() {
    let (r, t) = run(Options::default());
    let (op, ag) = r.unwrap();
    let k = keys();
    assert_eq!(t.op_hash, t.agent_hash);
    assert_eq!(op.sas(), ag.sas());
    assert_eq!(op.sas().len(), 9);
    assert_eq!(op.peer().role, Role::Agent);
    assert_eq!(op.peer().fingerprint, k.agent.public().fingerprint());
    assert_eq!(op.peer().certificate, None);
    assert_eq!(ag.peer().role, Role::Operator);
    assert_eq!(ag.peer().fingerprint, k.operator.public().fingerprint());
    let cert = ag.peer().certificate.clone().unwrap();
    assert_eq!(cert.display_name, "Alice Example");
    assert_eq!(cert.organisation, "Example Help Desk");
    assert!(cert.permissions.allows(Permissions::CONTROL));
    assert!(!cert.permissions.allows(Permissions::CLIPBOARD));
}

#[test]
fn messages_flow_both_ways_with_fragmentation() {
    let (r, _) = run(Options::default());
    let (mut op, mut ag) = r.unwrap();
    // 300 KB needs several Noise messages of at most 65,535 bytes.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let bytes = op
        .send(&Message::Ping {
            id: 1,
            payload: big.clone(),
        })
        .unwrap();
    assert!(unframe(&bytes).len() >= 5);
    assert!(unframe(&bytes).iter().all(|m| m.len() <= 65_535));
    assert_eq!(
        deliver(&bytes, &mut ag).unwrap(),
        vec![Message::Ping {
            id: 1,
            payload: big.clone()
        }]
    );
    let back = ag
        .send(&Message::Pong {
            id: 1,
            payload: big.clone(),
        })
        .unwrap();
    assert_eq!(
        deliver(&back, &mut op).unwrap(),
        vec![Message::Pong {
            id: 1,
            payload: big
        }]
    );
}

#[test]
fn rekeying_at_agreed_points_keeps_both_sides_in_step() {
    let channel = ChannelConfig {
        rekey_after_messages: 3,
        ..ChannelConfig::default()
    };
    let (r, _) = run(Options {
        channel,
        ..Options::default()
    });
    let (mut op, mut ag) = r.unwrap();
    for id in 0..20 {
        let b = op
            .send(&Message::Ping {
                id,
                payload: vec![1; 10],
            })
            .unwrap();
        assert_eq!(deliver(&b, &mut ag).unwrap().len(), 1);
    }
    // The proofs count too: 21 messages each way → 7 rekeys sent by op, received by agent.
    assert_eq!(op.rekeys().0, 7);
    assert_eq!(ag.rekeys().1, 7);
    let b = ag
        .send(&Message::Ping {
            id: 99,
            payload: vec![],
        })
        .unwrap();
    assert_eq!(deliver(&b, &mut op).unwrap().len(), 1);
}

#[test]
fn sessions_with_different_rekey_points_cannot_talk() {
    // Shows that rekeying really changes the keys: a receiver that does not rekey fails.
    let (r, _) = run(Options {
        channel: ChannelConfig {
            rekey_after_messages: 2,
            ..ChannelConfig::default()
        },
        ..Options::default()
    });
    let (mut op, _) = r.unwrap();
    let (r2, _) = run(Options::default());
    let (_, mut ag_default) = r2.unwrap();
    // The proof and this ping are the two messages before the sender's first rekey.
    let b = op
        .send(&Message::Ping {
            id: 0,
            payload: vec![],
        })
        .unwrap();
    assert_eq!(deliver(&b, &mut ag_default).unwrap().len(), 1);
    let b = op
        .send(&Message::Ping {
            id: 1,
            payload: vec![],
        })
        .unwrap();
    assert_eq!(
        deliver(&b, &mut ag_default),
        Err(Error::Auth(AuthError::Decrypt))
    );
}

#[test]
fn relay_substituting_its_own_noise_keys_is_detected() {
    // The relay runs one handshake with the operator (posing as the agent) and one with the
    // agent (posing as the operator), each with its own Noise keys, and forwards the identity
    // proofs it decrypted. The proofs sign the other handshake's hash, so both ends refuse.
    let (leg_a, ta) = run(Options {
        agent_seed: [66; 32],
        ..Options::default()
    });
    // The operator's leg completes as a Noise handshake; the relay cannot forge the agent's
    // signature, so it forwards the one the agent made in leg B (below).
    drop(leg_a);
    let op_hash_a = ta.op_hash.unwrap();
    let op_sas_a = ta.op_sas.clone().unwrap();
    let k = keys();
    let forwarded_op_proof = IdentityProof::sign(
        &k.operator,
        Role::Operator,
        &op_hash_a,
        Some(good_cert()),
        &[1; 32],
    );
    let (leg_b, tb) = run(Options {
        op_seed: [77; 32],
        op_proof: Some(Box::new(move |_| forwarded_op_proof.clone())),
        ..Options::default()
    });
    assert_auth(leg_b, Role::Agent, AuthError::BadSignature);
    assert_ne!(op_sas_a, tb.agent_sas.clone().unwrap());

    // And the agent's proof from leg B forwarded to the operator in leg A.
    let agent_hash_b = tb.agent_hash.unwrap();
    let forwarded_agent_proof =
        IdentityProof::sign(&k.agent, Role::Agent, &agent_hash_b, None, &[2; 32]);
    let (leg_a2, _) = run(Options {
        agent_seed: [66; 32],
        agent_proof: Some(Box::new(move |_| forwarded_agent_proof.clone())),
        ..Options::default()
    });
    assert_auth(leg_a2, Role::Operator, AuthError::BadSignature);
}

#[test]
fn signature_from_another_session_fails() {
    let (_, old) = run(Options {
        op_session: [1; 16],
        agent_session: [1; 16],
        ..Options::default()
    });
    let old_hash = old.op_hash.unwrap();
    let k = keys();
    let replayed = IdentityProof::sign(
        &k.operator,
        Role::Operator,
        &old_hash,
        Some(good_cert()),
        &[3; 32],
    );
    let (r, _) = run(Options {
        op_proof: Some(Box::new(move |_| replayed.clone())),
        ..Options::default()
    });
    assert_auth(r, Role::Agent, AuthError::BadSignature);
}

#[test]
fn mismatched_session_ids_fail_the_noise_handshake() {
    let (r, _) = run(Options {
        agent_session: [6; 16],
        ..Options::default()
    });
    let f = r.err().unwrap();
    assert_eq!(f.side, Role::Operator);
    assert_eq!(f.error, Error::Auth(AuthError::Decrypt));
}

/// The chain from the pinned root: a certificate signed by the root itself, or by an issuing
/// key whose certificate expired, is refused; a kiosk refuses a certificate on its revocation
/// list, and only that one.
#[test]
fn the_issuing_chain_and_revocation_decide() {
    let k = keys();
    // Signed by the root key directly (naming it as issuer).
    let by_root = cert_for(&k.root, &k.operator, NOW - 60, NOW + 3600);
    assert_auth(
        run(Options {
            cert: Some(by_root),
            ..Options::default()
        })
        .0,
        Role::Agent,
        AuthError::UntrustedCertificate,
    );
    // An issuer certificate that ended before now.
    let expired = sightline_core::authority::Authority::certify(
        &k.root,
        k.ca.public(),
        2,
        NOW - 100 * 86_400,
        90 * 86_400,
        &mut <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([1; 32]),
    )
    .unwrap();
    assert_auth(
        run(Options {
            agent_trust: Trust::OperatorCertificateFrom(expired),
            ..Options::default()
        })
        .0,
        Role::Agent,
        AuthError::IssuerExpired,
    );
    // A kiosk trusting the authority, with a revocation list.
    let list = |serials: &[u64]| {
        sightline_core::revocation::RevocationList::issue(
            &k.ca,
            &authority(),
            1,
            NOW,
            serials
                .iter()
                .map(|&serial| sightline_core::revocation::Revoked {
                    serial,
                    not_after: NOW + 3600,
                })
                .collect(),
            &mut <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([2; 32]),
        )
        .unwrap()
    };
    let kiosk = |revoked| Trust::AuthorisedOperators {
        ca: Some(authority()),
        keys: vec![],
        revoked,
    };
    // good_cert() has serial 7.
    assert_auth(
        run(Options {
            agent_trust: kiosk(Some(list(&[3, 7, 11]))),
            ..Options::default()
        })
        .0,
        Role::Agent,
        AuthError::CertificateRevoked { serial: 7 },
    );
    let (r, _) = run(Options {
        agent_trust: kiosk(Some(list(&[3, 11]))),
        ..Options::default()
    });
    assert_eq!(
        r.unwrap().1.peer().certificate.as_ref().unwrap().serial,
        7,
        "a certificate that is not listed is accepted"
    );
    assert!(run(Options {
        agent_trust: kiosk(None),
        ..Options::default()
    })
    .0
    .is_ok());
}

#[test]
fn certificate_from_another_ca_is_refused() {
    let k = keys();
    let cert = cert_for(&k.other_ca, &k.operator, NOW - 60, NOW + 3600);
    assert_auth(
        run(Options {
            cert: Some(cert),
            ..Options::default()
        })
        .0,
        Role::Agent,
        AuthError::UntrustedCertificate,
    );
    // Agent trusting another issuing key of the same root than the one that issued the
    // certificate.
    let trust = Trust::OperatorCertificateFrom(common::authority_for(&k.other_ca));
    assert_auth(
        run(Options {
            agent_trust: trust,
            ..Options::default()
        })
        .0,
        Role::Agent,
        AuthError::UntrustedCertificate,
    );
}

#[test]
fn expired_and_not_yet_valid_certificates_are_refused() {
    let k = keys();
    let expired = cert_for(&k.ca, &k.operator, NOW - 7200, NOW - 1);
    assert_auth(
        run(Options {
            cert: Some(expired),
            ..Options::default()
        })
        .0,
        Role::Agent,
        AuthError::CertificateExpired,
    );
    let at_expiry = cert_for(&k.ca, &k.operator, NOW - 7200, NOW);
    assert_auth(
        run(Options {
            cert: Some(at_expiry),
            ..Options::default()
        })
        .0,
        Role::Agent,
        AuthError::CertificateExpired,
    );
    let future = cert_for(&k.ca, &k.operator, NOW + 3600, NOW + 7200);
    assert_auth(
        run(Options {
            cert: Some(future),
            ..Options::default()
        })
        .0,
        Role::Agent,
        AuthError::CertificateNotYetValid,
    );
    // Within the documented clock leeway it is accepted.
    let slightly = cert_for(&k.ca, &k.operator, NOW + 30, NOW + 7200);
    assert!(run(Options {
        cert: Some(slightly),
        ..Options::default()
    })
    .0
    .is_ok());
    // The same certificate is accepted once the virtual clock reaches its window.
    let future = cert_for(&k.ca, &k.operator, NOW + 3600, NOW + 7200);
    assert!(run(Options {
        cert: Some(future),
        now: NOW + 3600,
        ..Options::default()
    })
    .0
    .is_ok());
}

#[test]
fn bad_signatures_and_key_mismatches_are_refused() {
    let k = keys();
    // Proof signed by another key than the one presented.
    let bad = Box::new(|h: &[u8; 32]| {
        let mut p = IdentityProof::sign(
            &keys().other_operator,
            Role::Operator,
            h,
            Some(good_cert()),
            &[4; 32],
        );
        p.public_key = keys().operator.public().spki_der().to_vec();
        p
    });
    assert_auth(
        run(Options {
            op_proof: Some(bad),
            ..Options::default()
        })
        .0,
        Role::Agent,
        AuthError::BadSignature,
    );
    // Corrupted signature bytes.
    let flipped = Box::new(|h: &[u8; 32]| {
        let mut p = IdentityProof::sign(
            &keys().operator,
            Role::Operator,
            h,
            Some(good_cert()),
            &[4; 32],
        );
        p.signature[10] ^= 1;
        p
    });
    assert_auth(
        run(Options {
            op_proof: Some(flipped),
            ..Options::default()
        })
        .0,
        Role::Agent,
        AuthError::BadSignature,
    );
    // A valid certificate, but for another operator's key.
    let other = cert_for(&k.ca, &k.other_operator, NOW - 60, NOW + 3600);
    assert_auth(
        run(Options {
            cert: Some(other),
            ..Options::default()
        })
        .0,
        Role::Agent,
        AuthError::CertificateKeyMismatch,
    );
    // No certificate at all.
    assert_auth(
        run(Options {
            cert: None,
            ..Options::default()
        })
        .0,
        Role::Agent,
        AuthError::MissingCertificate,
    );
    // An agent claiming to be an operator.
    let wrong_role = Box::new(|h: &[u8; 32]| {
        IdentityProof::sign(&keys().agent, Role::Operator, h, None, &[4; 32])
    });
    assert_auth(
        run(Options {
            agent_proof: Some(wrong_role),
            ..Options::default()
        })
        .0,
        Role::Operator,
        AuthError::WrongRole,
    );
    // A tampered signature from the agent.
    let bad_agent = Box::new(|h: &[u8; 32]| {
        let mut p = IdentityProof::sign(&keys().agent, Role::Agent, h, None, &[4; 32]);
        p.signature[0] ^= 0x80;
        p
    });
    assert_auth(
        run(Options {
            agent_proof: Some(bad_agent),
            ..Options::default()
        })
        .0,
        Role::Operator,
        AuthError::BadSignature,
    );
}

#[test]
fn weak_peer_keys_are_refused() {
    use rand_core::SeedableRng;
    let small = sightline_core::identity::PrivateIdentity::generate(
        &mut rand_chacha::ChaCha20Rng::from_seed([8; 32]),
        2048,
    )
    .unwrap();
    let proof =
        Box::new(move |h: &[u8; 32]| IdentityProof::sign(&small, Role::Agent, h, None, &[4; 32]));
    assert_auth(
        run(Options {
            agent_proof: Some(proof),
            ..Options::default()
        })
        .0,
        Role::Operator,
        AuthError::WeakKey("RSA key too short"),
    );
}

fn flip_every_byte(step: Step) {
    let (_, clean) = run(Options::default());
    let len = clean
        .messages
        .iter()
        .find(|(s, _)| *s == step)
        .map(|(_, m)| m.len())
        .unwrap();
    for offset in 0..len {
        // Every byte, with the flipped bit walking through all eight positions.
        let bit = 1u8 << (offset % 8);
        {
            let (r, _) = run(Options {
                tamper: Box::new(move |s, m| {
                    if s == step {
                        m[offset] ^= bit;
                    }
                }),
                ..Options::default()
            });
            assert!(
                r.is_err(),
                "{step:?}: flip of bit {bit:#x} at offset {offset} was accepted"
            );
        }
    }
}

#[test]
fn bit_flip_in_first_handshake_message_is_rejected() {
    flip_every_byte(Step::Msg1);
}

#[test]
fn bit_flip_in_second_handshake_message_is_rejected() {
    flip_every_byte(Step::Msg2);
}

#[test]
fn bit_flip_in_third_handshake_message_is_rejected() {
    flip_every_byte(Step::Msg3);
}

#[test]
fn bit_flip_in_operator_identity_proof_is_rejected() {
    flip_every_byte(Step::OperatorProof);
}

#[test]
fn bit_flip_in_agent_identity_proof_is_rejected() {
    flip_every_byte(Step::AgentProof);
}

#[test]
fn replayed_handshake_is_rejected() {
    // Record a complete run, then replay its operator messages to a fresh agent.
    let (_, old) = run(Options::default());
    let get = |s: Step| {
        old.messages
            .iter()
            .find(|(x, _)| *x == s)
            .map(|(_, m)| m.clone())
            .unwrap()
    };
    let (m1, m3, proof) = (get(Step::Msg1), get(Step::Msg3), get(Step::OperatorProof));
    let (r, _) = run(Options {
        agent_seed: [99; 32], // the agent is a new process with fresh randomness
        tamper: Box::new(move |s, m| match s {
            Step::Msg1 => *m = m1.clone(),
            Step::Msg3 => *m = m3.clone(),
            Step::OperatorProof => *m = proof.clone(),
            _ => {}
        }),
        ..Options::default()
    });
    let f = r.err().unwrap();
    assert_eq!(f.side, Role::Agent);
    assert_eq!(f.error, Error::Auth(AuthError::Decrypt));
}

#[test]
fn replayed_transport_message_ends_the_session() {
    let (r, _) = run(Options::default());
    let (mut op, mut ag) = r.unwrap();
    let b = op
        .send(&Message::Ping {
            id: 1,
            payload: vec![],
        })
        .unwrap();
    deliver(&b, &mut ag).unwrap();
    assert_eq!(deliver(&b, &mut ag), Err(Error::Auth(AuthError::Decrypt)));
    // Any decryption failure ends the session: later genuine messages are refused too.
    let b2 = op
        .send(&Message::Ping {
            id: 2,
            payload: vec![],
        })
        .unwrap();
    assert_eq!(deliver(&b2, &mut ag), Err(Error::Closed));
}

#[test]
fn explicit_close_versus_truncation() {
    let (r, _) = run(Options::default());
    let (mut op, mut ag) = r.unwrap();
    assert_eq!(ag.ending(), Ending::Abnormal);
    let b = op.close(CloseReason::EndedByOperator).unwrap();
    assert_eq!(op.ending(), Ending::ClosedLocally);
    assert_eq!(
        op.send(&Message::Ping {
            id: 0,
            payload: vec![]
        }),
        Err(Error::Closed)
    );
    assert_eq!(
        deliver(&b, &mut ag).unwrap(),
        vec![Message::Close {
            reason: CloseReason::EndedByOperator
        }]
    );
    assert_eq!(ag.ending(), Ending::Closed(CloseReason::EndedByOperator));
    assert_eq!(
        deliver(&b, &mut ag),
        Err(Error::Unexpected("message after close"))
    );
}

#[test]
fn truncated_fragmented_message_is_detected() {
    let (r, _) = run(Options::default());
    let (mut op, mut ag) = r.unwrap();
    let b = op
        .send(&Message::Ping {
            id: 1,
            payload: vec![7; 200_000],
        })
        .unwrap();
    let frames = unframe(&b);
    for m in &frames[..frames.len() - 1] {
        assert_eq!(ag.receive(m).unwrap(), None);
    }
    // The stream ends here: the session knows a message was cut and that no close came.
    assert_eq!(ag.ending(), Ending::Abnormal);
    // A stream cut inside a frame is truncation at the framing layer.
    let mut d = sightline_core::frame::FrameDecoder::new();
    d.push(&b[..b.len() - 3]);
    while d.next_message().unwrap().is_some() {}
    assert_eq!(d.finish(), Err(Error::Truncated));
}

#[test]
fn oversized_reassembly_is_a_typed_error() {
    let small = ChannelConfig {
        max_message: 100_000,
        ..ChannelConfig::default()
    };
    let (r, _) = run(Options::default());
    let (mut op, _) = r.unwrap();
    let (r2, _) = run(Options {
        channel: small,
        ..Options::default()
    });
    let (_, mut ag_small) = r2.unwrap();
    // Same keys and seeds: the default-config operator's stream is readable by the small agent.
    let b = op
        .send(&Message::Ping {
            id: 1,
            payload: vec![0; 150_000],
        })
        .unwrap();
    let err = deliver(&b, &mut ag_small).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Malformed(Malformed::Oversized { limit: 100_000, .. })
        ),
        "{err:?}"
    );
    // Sending more than the limit is refused locally as well.
    let (r3, _) = run(Options {
        channel: small,
        ..Options::default()
    });
    let (mut op_small, _) = r3.unwrap();
    let err = op_small
        .send(&Message::Ping {
            id: 1,
            payload: vec![0; 150_000],
        })
        .unwrap_err();
    assert!(
        matches!(err, Error::Malformed(Malformed::Oversized { .. })),
        "{err:?}"
    );
}

#[test]
fn malformed_and_unknown_messages_are_typed_errors() {
    // A peer that encrypts garbage (valid AEAD, invalid message) is refused with a typed error.
    let (r, _) = run(Options::default());
    let (_, mut ag) = r.unwrap();
    let (r2, _) = run(Options::default());
    let (mut op_raw, _) = r2.unwrap();
    // Unknown message type: variant index 200.
    let b = op_raw.danger_send_raw(&[200, 1, 2, 3]).unwrap();
    assert_eq!(
        deliver(&b, &mut ag),
        Err(Error::Malformed(Malformed::Decode("session message")))
    );
    let (r3, _) = run(Options::default());
    let (_, mut ag2) = r3.unwrap();
    let (r4, _) = run(Options::default());
    let (mut op2, _) = r4.unwrap();
    // A valid Pong followed by trailing bytes.
    let mut enc = sightline_core::codec::encode(&Message::Pong {
        id: 1,
        payload: vec![],
    })
    .unwrap();
    enc.push(0);
    let b = op2.danger_send_raw(&enc).unwrap();
    assert_eq!(
        deliver(&b, &mut ag2),
        Err(Error::Malformed(Malformed::TrailingBytes(
            "session message"
        )))
    );
}

/// The agent's order: it verifies the operator's proof before it signs anything, so an operator
/// who fails gets no signature from the agent (there is no way to make one before the check).
#[test]
fn the_agent_verifies_the_operator_before_signing() {
    let k = keys();
    let cfg = |seed: u8, trust: Trust| E2eConfig {
        session_id: [5; 16],
        seed: [seed; 32],
        trust,
        channel: ChannelConfig::default(),
    };
    // The operator's side up to its proof, and the agent checking it.
    let attempt = |cert: Option<sightline_core::cert::OperatorCert>| {
        let (op, m1) = OperatorHandshake::start(cfg(1, Trust::AnyAgentKey)).unwrap();
        let agent_trust = Trust::OperatorCertificateFrom(common::authority());
        let ag = AgentHandshake::new(cfg(2, agent_trust)).unwrap();
        let (ag, m2) = ag.read_hello(&unframe(&m1).remove(0)).unwrap();
        let (op_done, m3) = op.read_response(&unframe(&m2).remove(0)).unwrap();
        let (op_wait, proof) = op_done.prove(&k.operator, cert).unwrap();
        let mut verifying = ag
            .read_finish(&unframe(&m3).remove(0))
            .unwrap()
            .verify_peer_first();
        for m in unframe(&proof) {
            match verifying.receive(&m, NOW) {
                Ok(PeerCheck::Pending(v)) => verifying = v,
                Ok(PeerCheck::Verified(v)) => return (op_wait, Ok(v)),
                Err(e) => return (op_wait, Err(e)),
            }
        }
        panic!("the proof never completed");
    };
    // No certificate: refused before the agent signed anything.
    let (_, refused) = attempt(None);
    assert!(
        matches!(refused, Err(Error::Auth(AuthError::MissingCertificate))),
        "{:?}",
        refused.err()
    );
    // A good one: verified, then the agent proves itself and both are established.
    let (op_wait, verified) = attempt(Some(good_cert()));
    let verified = verified.unwrap();
    assert_eq!(verified.peer().role, Role::Operator);
    let (agent_session, agent_proof) = verified.prove(&k.agent).unwrap();
    let mut op_wait = op_wait;
    let mut op_session = None;
    for m in unframe(&agent_proof) {
        match op_wait.receive(&m, NOW).unwrap() {
            Progress::Pending(w) => op_wait = w,
            Progress::Established(s) => {
                op_session = Some(s);
                break;
            }
        }
    }
    let op_session = op_session.expect("established");
    assert_eq!(op_session.sas(), agent_session.sas());
    assert_eq!(
        op_session.peer().fingerprint,
        k.agent.public().fingerprint()
    );
}
