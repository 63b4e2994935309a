//! A relay in the middle tries to make the two verification codes agree by grinding the
//! handshake messages it controls. With the commit-then-reveal code it can only match by
//! chance: on the viewer's side it must send its message before the viewer's nonce is known
//! (so nothing it computes predicts the viewer's code), and on the agent's side its last
//! message is fixed by the commitment in its first (any other is refused).
//!
//! To measure chance within a test's time, the code is reduced to its last two digits
//! (1 in 100 instead of 1 in 10^8). Variants per message: 10,000 here; `just grind` runs
//! 100,000 (`SIGHTLINE_GRIND_VARIANTS`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sha2::{Digest, Sha256};
use sightline_core::e2e::{AgentHandshake, E2eConfig, OperatorHandshake, Trust};
use sightline_core::error::{AuthError, Error};
use sightline_core::frame::FrameDecoder;

/// The reduced code's range: its last two digits.
const CHANCE: u64 = 100;

fn variants() -> u64 {
    std::env::var("SIGHTLINE_GRIND_VARIANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn cfg(seed: [u8; 32]) -> E2eConfig {
    E2eConfig {
        session_id: [9u8; 16],
        seed,
        trust: Trust::AnyAgentKey,
        channel: Default::default(),
    }
}

fn seed(tag: u8, i: u64) -> [u8; 32] {
    let mut s = [tag; 32];
    s[..8].copy_from_slice(&i.to_be_bytes());
    s
}

fn unframe(framed: &[u8]) -> Vec<u8> {
    let mut d = FrameDecoder::new();
    d.push(framed);
    d.next_message().unwrap().unwrap()
}

/// The last two digits of a code `1234 5678`.
fn reduced(code: &str) -> u64 {
    code[code.len() - 2..].parse().unwrap()
}

/// At most `hits` out of `tries` at a chance of 1 in [`CHANCE`], give or take five standard
/// deviations (and at least a few, so that small samples are not judged on one hit).
fn within_chance(hits: u64, tries: u64) -> bool {
    let mean = tries as f64 / CHANCE as f64;
    let sd = (mean * (1.0 - 1.0 / CHANCE as f64)).sqrt();
    (hits as f64) <= mean + 5.0 * sd + 3.0
}

#[test]
fn grinding_the_message_to_the_viewer_matches_only_by_chance() {
    // The relay plays the agent to the viewer. It sees the viewer's first message (the
    // commitment), then must send its own; it tries many and keeps those its best guess says
    // will give the code it wants. The guess can only use what it knows: the messages so far.
    let viewer = cfg([1; 32]);
    let (_, m1) = OperatorHandshake::start(viewer.clone()).unwrap();
    let m1 = unframe(&m1);
    let target = 42;
    let (mut picked, mut picked_hits, mut all_hits) = (0u64, 0u64, 0u64);
    let n = variants();
    for i in 0..n {
        let (_, m2) = AgentHandshake::new(cfg(seed(2, i)))
            .unwrap()
            .read_hello(&m1)
            .unwrap();
        let m2 = unframe(&m2);
        let guess = {
            let d = Sha256::new().chain_update(&m1).chain_update(&m2).finalize();
            u64::from(u16::from_be_bytes([d[0], d[1]])) % CHANCE
        };
        // The code the viewer would then show. (The test can replay the viewer from its seed;
        // the relay cannot: the viewer's nonce is behind the commitment until its last
        // message, which comes only after the relay's.)
        let (op, _) = OperatorHandshake::start(viewer.clone()).unwrap();
        let (done, _) = op.read_response(&m2).unwrap();
        let hit = reduced(done.sas()) == target;
        all_hits += u64::from(hit);
        if guess == target {
            picked += 1;
            picked_hits += u64::from(hit);
        }
    }
    assert!(within_chance(all_hits, n), "{all_hits} of {n} variants");
    assert!(
        within_chance(picked_hits, picked),
        "the relay's picks matched {picked_hits} times out of {picked}"
    );
}

#[test]
fn the_relays_last_message_to_the_agent_is_fixed_by_its_commitment() {
    // The relay plays the operator to the agent. After the agent's answer it knows everything
    // the code depends on except what its own last message reveals; it tries many nonces,
    // computes the code each would give (it can: they are its own), and sends those that give
    // the code it wants. The agent refuses every one but the committed nonce.
    let relay = cfg([3; 32]);
    let agent = cfg([4; 32]);
    let (_, m1) = OperatorHandshake::start(relay.clone()).unwrap();
    let m1 = unframe(&m1);
    let (_, m2) = AgentHandshake::new(agent.clone())
        .unwrap()
        .read_hello(&m1)
        .unwrap();
    let m2 = unframe(&m2);
    let target = 42;
    let (mut wanted, mut accepted) = (0u64, 0u64);
    let n = variants();
    for i in 0..n {
        let mut nonce = [5u8; 32];
        nonce[..8].copy_from_slice(&i.to_be_bytes());
        let (op, _) = OperatorHandshake::start(relay.clone()).unwrap();
        let (done, m3) = op.danger_read_response_revealing(&m2, nonce).unwrap();
        if reduced(done.sas()) != target {
            continue;
        }
        wanted += 1;
        // The agent, as it was after its answer (replayed from its seed).
        let (ag, _) = AgentHandshake::new(agent.clone())
            .unwrap()
            .read_hello(&m1)
            .unwrap();
        match ag.read_finish(&unframe(&m3)) {
            Ok(_) => accepted += 1,
            Err(Error::Auth(AuthError::CommitmentMismatch)) => {}
            Err(e) => panic!("refused for another reason: {e}"),
        }
    }
    assert!(wanted > 0, "no variant gave the wanted code among {n}");
    assert_eq!(
        accepted, 0,
        "the agent accepted a nonce other than the committed one"
    );
    // The committed nonce is accepted, and its code is whatever chance made it.
    let (op, _) = OperatorHandshake::start(relay).unwrap();
    let (done, m3) = op.read_response(&m2).unwrap();
    let (ag, _) = AgentHandshake::new(agent).unwrap().read_hello(&m1).unwrap();
    let agent_done = ag.read_finish(&unframe(&m3)).unwrap();
    assert_eq!(done.sas(), agent_done.sas());
}
