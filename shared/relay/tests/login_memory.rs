//! Resident memory of the relay process under 200 concurrent logins: password hashing works
//! in a pool of reused buffers (one per slot), so the process does not keep argon2's 19 MiB
//! per login in the allocator's arenas. Prints `VmRSS` before and after (see
//! docs/testing.md for the figures); asserts only the structural bound (buffers ≤ slots) and a
//! generous ceiling on growth. The `#[ignore]`d twin does the same verifications with the
//! allocating `password::verify_password`, for comparison; run each alone, so that one does
//! not warm the other's allocator:
//!
//! ```text
//! cargo test -p sightline-relay --test login_memory -- --nocapture --exact pooled_hashing_keeps_memory_flat
//! cargo test -p sightline-relay --test login_memory -- --nocapture --ignored --exact allocating_hashing_for_comparison
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::OsRng;
use sightline_core::identity::{PrivateIdentity, CA_BITS, MIN_PEER_BITS};
use sightline_core::login_proof::LoginTranscript;
use sightline_core::relay_proto::Secret;
use sightline_relay::accounts::login::{self, Attempt, LoginOutcome, Possession};
use sightline_relay::accounts::password;
use sightline_relay::config::Config;
use sightline_relay::context::Relay;
use sightline_relay::policy::Policy;
use sightline_relay::store::db::Database;
use std::sync::Arc;

const LOGINS: usize = 200;
const SLOTS: usize = 8;

/// `VmRSS` of this process, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn attempt(i: usize, operator: &PrivateIdentity) -> Attempt {
    let (channel_binding, challenge) = ([7u8; 32], [8u8; 32]);
    let user = format!("nobody{i}");
    let proof = LoginTranscript {
        channel_binding: &channel_binding,
        challenge: &challenge,
        operator_key: operator.public().spki_der(),
        user: &user,
    }
    .sign(operator, &mut OsRng);
    Attempt {
        // Each from its own /64, so that no address lock serialises them.
        ip: format!("2001:db8:{i:x}::1").parse().unwrap(),
        user,
        password: Secret::new("a wrong password"),
        second_factor: None,
        operator_key: operator.public().spki_der().to_vec(),
        possession: Possession {
            channel_binding,
            challenge: Some(challenge),
            proof,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_hashing_keeps_memory_flat() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(&dir.path().join("relay.db")).unwrap();
    let mut config = Config::default();
    config.login_work.hash_slots = Some(SLOTS);
    config.login_work.hash_queue = LOGINS;
    config.login_work.failure_floor_ms = 0;
    config.login_limit.global.free_failures = 10 * LOGINS as u32;
    let ca = PrivateIdentity::generate(&mut OsRng, CA_BITS).unwrap();
    let operator = PrivateIdentity::generate(&mut OsRng, MIN_PEER_BITS).unwrap();
    let relay = Relay::new(config, Policy::default(), ca, db).await.unwrap();
    let before = rss_kib();
    let mut after = Vec::new();
    for wave in 0..2 {
        let tasks: Vec<_> = (0..LOGINS)
            .map(|i| attempt(wave * LOGINS + i, &operator))
            .map(|a| {
                let relay: Arc<Relay> = relay.clone();
                tokio::spawn(async move { login::attempt(&relay, a).await.unwrap() })
            })
            .collect();
        for t in tasks {
            let outcome = t.await.unwrap();
            assert!(matches!(outcome, LoginOutcome::Failed), "{outcome:?}");
        }
        after.push(rss_kib());
    }
    let buffers = relay.hashing.buffers();
    println!(
        "pooled: 2 waves of {LOGINS} concurrent logins, {SLOTS} slots: VmRSS {before} KiB, \
         {} KiB after the first wave, {} KiB after the second; {buffers} hashing buffers",
        after[0], after[1]
    );
    assert_eq!(relay.hashing.checks(), 2 * LOGINS as u64);
    assert!((1..=SLOTS).contains(&buffers), "{buffers}");
    // Generous: the buffers themselves are at most 8 × 19 MiB.
    assert!(
        after[1].saturating_sub(before) < 512 * 1024,
        "{before} -> {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for comparison, run by hand"]
async fn allocating_hashing_for_comparison() {
    let phc = password::hash_password("nobody's password").unwrap();
    let slots = Arc::new(tokio::sync::Semaphore::new(SLOTS));
    let before = rss_kib();
    let mut after = Vec::new();
    for _wave in 0..2 {
        let tasks: Vec<_> = (0..LOGINS)
            .map(|_| {
                let (phc, slots) = (phc.clone(), slots.clone());
                tokio::spawn(async move {
                    let _slot = slots.acquire_owned().await.unwrap();
                    tokio::task::spawn_blocking(move || {
                        password::verify_password("a wrong password", &phc)
                    })
                    .await
                    .unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        after.push(rss_kib());
    }
    println!(
        "allocating: 2 waves of {LOGINS} concurrent verifications, {SLOTS} at once: VmRSS \
         {before} KiB, {} KiB after the first wave, {} KiB after the second",
        after[0], after[1]
    );
}
