//! The agent bundle's trailer: what verifies, and every change an attacker or a broken
//! download could make that must be refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{keys, NOW};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sightline_core::bundle::{self, BundleError, Footer, FOOTER_LEN, MAGIC};

const AGENT: &[u8] = b"\x7fELF pretend agent executable bytes";
const RELAY: &str = "tcp://relay.example.com:7615,wss://relay.example.com/sightline";

fn sealed() -> Vec<u8> {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    bundle::seal(
        AGENT,
        "Example IT Help Desk",
        RELAY,
        &keys().root,
        NOW,
        &mut rng,
    )
    .unwrap()
}

#[test]
fn a_sealed_agent_opens_with_its_settings_and_pins_the_root() {
    let file = sealed();
    assert!(file.starts_with(AGENT));
    assert!(file.ends_with(MAGIC));
    let b = bundle::open(&file).unwrap().expect("a bundle");
    assert_eq!(b.settings.help_desk, "Example IT Help Desk");
    assert_eq!(b.settings.relay, RELAY);
    assert_eq!(b.settings.created, NOW);
    assert_eq!(b.pin, keys().root.public().fingerprint());
    assert_eq!(bundle::program(&file).unwrap(), AGENT);
}

#[test]
fn a_plain_agent_is_not_a_bundle() {
    assert!(bundle::open(AGENT).unwrap().is_none());
    assert!(bundle::open(b"").unwrap().is_none());
    assert!(bundle::open(MAGIC).unwrap().is_none());
}

#[test]
fn every_single_byte_change_is_refused() {
    let file = sealed();
    // Every byte of the trailer, and a sample of the program's.
    let trailer_start = AGENT.len();
    let positions = (0..AGENT.len()).step_by(5).chain(trailer_start..file.len());
    for i in positions {
        let mut bad = file.clone();
        bad[i] ^= 0x01;
        match bundle::open(&bad) {
            Err(_) => {}
            // A flipped magic byte makes it a plain (unconfigured) program, which then asks
            // for everything on the command line: nothing of the help desk's is trusted.
            Ok(None) => assert!(i >= file.len() - MAGIC.len(), "byte {i} made it no bundle"),
            Ok(Some(_)) => panic!("byte {i} changed and the bundle still verified"),
        }
    }
}

#[test]
fn a_changed_program_or_relay_is_named() {
    let file = sealed();
    let mut program = file.clone();
    program[3] ^= 0xff;
    assert_eq!(
        bundle::open(&program).unwrap_err(),
        BundleError::ProgramChanged
    );

    let start = AGENT.len();
    let pos = file[start..]
        .windows(RELAY.len())
        .position(|w| w == RELAY.as_bytes())
        .unwrap();
    let mut relay = file.clone();
    relay[start + pos] = b'u';
    assert_eq!(bundle::open(&relay).unwrap_err(), BundleError::BadSignature);
}

#[test]
fn a_trailer_resigned_by_another_key_pins_that_key() {
    // Whoever re-signs makes a bundle for their own relay: the pin follows the signer, so the
    // original help desk's relay would refuse it and the customer sees the other name.
    let mut rng = ChaCha20Rng::from_seed([8; 32]);
    let other = bundle::seal(&sealed(), "Evil", RELAY, &keys().other_ca, NOW, &mut rng).unwrap();
    let b = bundle::open(&other).unwrap().unwrap();
    assert_ne!(b.pin, keys().root.public().fingerprint());
    assert_eq!(b.settings.help_desk, "Evil");
    // Re-bundling replaced the old trailer rather than stacking a second one.
    assert_eq!(bundle::program(&other).unwrap(), AGENT);
}

#[test]
fn cut_and_oversized_trailers_are_malformed() {
    let file = sealed();
    let footer = &file[file.len() - FOOTER_LEN..];
    // Only the footer left: the lengths point before the start of the file.
    assert_eq!(bundle::open(footer).unwrap_err(), BundleError::Malformed);
    // Lengths beyond the limits.
    let mut huge = footer.to_vec();
    huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        Footer::parse(&huge, u64::MAX).unwrap_err(),
        BundleError::Malformed
    );
    let mut zero = footer.to_vec();
    zero[4..8].copy_from_slice(&0u32.to_le_bytes());
    assert_eq!(
        Footer::parse(&zero, 1 << 20).unwrap_err(),
        BundleError::Malformed
    );
}

#[test]
fn names_a_customer_would_be_misled_by_are_refused() {
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    for name in ["", "   ", "Help\u{1b}[2J desk", &"x".repeat(81)] {
        let r = bundle::seal(AGENT, name, RELAY, &keys().root, NOW, &mut rng);
        assert!(
            matches!(r, Err(BundleError::Invalid(_))),
            "{name:?} accepted"
        );
    }
}
