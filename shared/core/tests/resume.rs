//! Resuming an end-to-end session after its connection broke, two peers in memory: the
//! session goes on with the same peer and verification code; anything but the two original
//! ends (another session's keys, a changed count, a replayed or forged message) fails closed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sightline_core::e2e::{Role, Session};
use sightline_core::error::{AuthError, Error};
use sightline_core::messages::{CloseReason, Message};

fn ping(id: u64) -> Message {
    Message::Ping {
        id,
        payload: vec![id as u8; 100],
    }
}

fn pair() -> (Session, Session) {
    run(Options::default()).0.unwrap()
}

/// One framed message as the stream reader would hand it over.
fn one(framed: &[u8]) -> Vec<u8> {
    let mut v = unframe(framed);
    assert_eq!(v.len(), 1);
    v.remove(0)
}

/// Runs a whole resumption; returns the operator's first message for replay tests.
fn resume(op: &mut Session, ag: &mut Session, seed: u8) -> Vec<u8> {
    let (offer, m1) = op.offer_resume(&[seed; 32]).unwrap();
    let m1 = one(&m1);
    let m2 = ag.answer_resume(&m1, &[seed + 100; 32]).unwrap();
    op.complete_resume(offer, &one(&m2)).unwrap();
    m1
}

fn assert_flows(op: &mut Session, ag: &mut Session, id: u64) {
    let b = op.send(&ping(id)).unwrap();
    assert_eq!(deliver(&b, ag).unwrap(), vec![ping(id)]);
    let b = ag.send(&ping(id + 1)).unwrap();
    assert_eq!(deliver(&b, op).unwrap(), vec![ping(id + 1)]);
}

#[test]
fn a_session_resumes_after_messages_were_lost_with_the_same_peer_and_code() {
    let (mut op, mut ag) = pair();
    let (sas, op_peer, ag_peer) = (op.sas().to_string(), op.peer().clone(), ag.peer().clone());
    assert_flows(&mut op, &mut ag, 1);
    // In flight when the connection broke: never delivered, so the counters diverge.
    op.send(&ping(10)).unwrap();
    op.send(&ping(11)).unwrap();
    ag.send(&ping(12)).unwrap();
    let old = op.send(&ping(13)).unwrap();

    resume(&mut op, &mut ag, 1);
    assert_flows(&mut op, &mut ag, 20);
    assert_eq!(op.sas(), sas);
    assert_eq!(ag.sas(), sas);
    assert_eq!(op.peer(), &op_peer);
    assert_eq!(ag.peer(), &ag_peer);
    // A message sealed on the old transport does not open on the new one.
    assert_eq!(deliver(&old, &mut ag), Err(Error::Auth(AuthError::Decrypt)));
}

#[test]
fn a_session_resumes_again_and_again_and_after_a_lost_offer() {
    let (mut op, mut ag) = pair();
    resume(&mut op, &mut ag, 1);
    assert_flows(&mut op, &mut ag, 1);
    // The next offer is lost with the connection; the one after it still works.
    let _lost = op.offer_resume(&[2; 32]).unwrap();
    resume(&mut op, &mut ag, 3);
    assert_flows(&mut op, &mut ag, 3);
    resume(&mut op, &mut ag, 4);
    assert_flows(&mut op, &mut ag, 5);
}

#[test]
fn a_replayed_offer_is_refused() {
    let (mut op, mut ag) = pair();
    let m1 = resume(&mut op, &mut ag, 1);
    assert_eq!(
        ag.answer_resume(&m1, &[9; 32]).err(),
        Some(Error::Auth(AuthError::Decrypt))
    );
}

#[test]
fn an_offer_with_a_changed_count_is_refused() {
    // The count selects the psk and is in the prologue: a relay raising it (to get past the
    // replay check) changes what the message was made for.
    let (mut op, mut ag) = pair();
    let (_offer, m1) = op.offer_resume(&[1; 32]).unwrap();
    let mut m1 = one(&m1);
    m1[3] ^= 1;
    assert_eq!(
        ag.answer_resume(&m1, &[2; 32]).err(),
        Some(Error::Auth(AuthError::Decrypt))
    );
}

#[test]
fn another_sessions_ends_cannot_resume_this_one() {
    // Same session id and identity keys, but another handshake: other Noise static keys and
    // another secret (a relay that ran its own handshakes with each side is in this place).
    let (mut op, mut ag) = pair();
    let (mut other_op, mut other_ag) = run(Options {
        op_seed: [3; 32],
        agent_seed: [4; 32],
        ..Options::default()
    })
    .0
    .unwrap();
    let (_offer, m1) = other_op.offer_resume(&[1; 32]).unwrap();
    assert_eq!(
        ag.answer_resume(&one(&m1), &[2; 32]).err(),
        Some(Error::Auth(AuthError::Decrypt))
    );
    let (offer, m1) = op.offer_resume(&[5; 32]).unwrap();
    let m2 = other_ag.answer_resume(&one(&m1), &[6; 32]);
    assert_eq!(m2.err(), Some(Error::Auth(AuthError::Decrypt)));
    // An answer from someone else (here: the other agent answering its own operator) does not
    // complete this operator's offer.
    let (_o, m1b) = other_op.offer_resume(&[7; 32]).unwrap();
    let forged = other_ag.answer_resume(&one(&m1b), &[8; 32]).unwrap();
    assert_eq!(
        op.complete_resume(offer, &one(&forged)).err(),
        Some(Error::Auth(AuthError::Decrypt))
    );
}

#[test]
fn garbage_and_truncated_offers_and_answers_fail_without_panicking() {
    let (mut op, mut ag) = pair();
    for junk in [&[][..], &[0, 0, 0], &[0, 0, 0, 0], &[0xff; 40], &[0; 200]] {
        assert!(ag.answer_resume(junk, &[1; 32]).is_err(), "{junk:?}");
    }
    let (offer, _m1) = op.offer_resume(&[1; 32]).unwrap();
    assert!(op.complete_resume(offer, &[0; 10]).is_err());
}

#[test]
fn only_the_operator_offers_only_the_agent_answers_and_not_after_a_close() {
    let (mut op, mut ag) = pair();
    assert_eq!(ag.role(), Role::Agent);
    assert!(matches!(
        ag.offer_resume(&[1; 32]),
        Err(Error::Unexpected(_))
    ));
    let (_offer, m1) = op.offer_resume(&[1; 32]).unwrap();
    assert!(matches!(
        op.answer_resume(&one(&m1), &[1; 32]),
        Err(Error::Unexpected(_))
    ));
    let close = op.close(CloseReason::EndedByOperator).unwrap();
    deliver(&close, &mut ag).unwrap();
    assert_eq!(op.offer_resume(&[2; 32]).err(), Some(Error::Closed));
    assert_eq!(
        ag.answer_resume(&one(&m1), &[2; 32]).err(),
        Some(Error::Closed)
    );
}
