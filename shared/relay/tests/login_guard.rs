//! What keeps logins from being turned against the relay, as
//! [`sightline_relay::accounts::login::attempt`] runs them on a real database: every failure path does
//! the same hashing work (counted with [`sightline_relay::accounts::hashing::Hashing::checks`], not
//! timed); failed answers wait for the floor; every spelling of a name is the canonical
//! account, with its counters, disabled flag, permissions and certificate name; the relay-wide
//! failure counter slows new addresses but not an account's known one; and certificates per
//! account are rate-limited.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::OsRng;
use sightline_core::cert::{CertBody, Permissions};
use sightline_core::identity::{PrivateIdentity, CA_BITS, MIN_PEER_BITS};
use sightline_core::limiter::BackoffPolicy;
use sightline_core::login_proof::LoginTranscript;
use sightline_core::quota::Quota;
use sightline_core::relay_proto::Secret;
use sightline_relay::accounts::auth::{AuthError, Authenticator, BoxFuture, Rejection, Verdict};
use sightline_relay::accounts::login::{self, Attempt, LoginOutcome, Possession};
use sightline_relay::accounts::users::{self, NewUser, Source};
use sightline_relay::config::Config;
use sightline_relay::context::Relay;
use sightline_relay::policy::Policy;
use sightline_relay::store::db::Database;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const PASSWORD: &str = "alice's long password";
const HERE: &str = "198.51.100.7";

struct Keys {
    ca: PrivateIdentity,
    operator: PrivateIdentity,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        ca: PrivateIdentity::generate(&mut OsRng, CA_BITS).unwrap(),
        operator: PrivateIdentity::generate(&mut OsRng, MIN_PEER_BITS).unwrap(),
    })
}

fn now() -> u64 {
    sightline_net::clock::now_unix()
}

/// Two-factor login optional, so that repeated logins need no fresh TOTP step.
fn policy() -> Policy {
    Policy::parse(
        "[two_factor]\nmode = \"optional\"\n",
        Path::new("policy.toml"),
    )
    .unwrap()
}

/// Limits out of the way and no floor, unless a test sets them.
fn config() -> Config {
    let mut config = Config::default();
    config.login_limit.per_address.free_failures = 100;
    config.login_limit.per_account.free_failures = 100;
    config.login_limit.lockout.after_failures = 100;
    config.login_work.failure_floor_ms = 0;
    config
}

/// A database in `dir` with alice (local, no second factor), dora (local, disabled, view
/// only) and erin (a directory account).
fn database(dir: &Path) {
    let mut db = Database::create(&dir.join("relay.db")).unwrap();
    let rules = policy().password_policy();
    let plain = |name| NewUser {
        two_factor: false,
        ..NewUser::operator(name, PASSWORD, now())
    };
    users::add(&mut db, plain("alice"), &rules).unwrap();
    users::add(
        &mut db,
        NewUser {
            permissions: Some(Permissions::VIEW),
            ..plain("dora")
        },
        &rules,
    )
    .unwrap();
    users::set_disabled(&db, "dora", true, now()).unwrap();
    users::add(
        &mut db,
        NewUser {
            source: Source::Ldap,
            password: None,
            ..plain("erin")
        },
        &rules,
    )
    .unwrap();
}

/// A directory that knows nobody.
#[derive(Debug)]
struct EmptyDirectory;

impl Authenticator for EmptyDirectory {
    fn kind(&self) -> &'static str {
        "empty"
    }

    fn authenticate<'a>(
        &'a self,
        _user: &'a str,
        _password: &'a Secret,
    ) -> BoxFuture<'a, Result<Verdict, AuthError>> {
        Box::pin(async { Ok(Verdict::Rejected(Rejection::UnknownUser)) })
    }
}

async fn relay(dir: &Path, config: Config, directory: bool) -> Arc<Relay> {
    let db = Database::open(&dir.join("relay.db")).unwrap();
    let mut relay = Relay::new(config, policy(), keys().ca.clone(), db)
        .await
        .unwrap();
    if directory {
        Arc::get_mut(&mut relay)
            .expect("nothing else holds the relay yet")
            .directory = Some(Arc::new(EmptyDirectory));
    }
    relay
}

async fn login(relay: &Relay, from: &str, user: &str, password: &str) -> LoginOutcome {
    let (channel_binding, challenge) = ([7u8; 32], [8u8; 32]);
    let operator = &keys().operator;
    let proof = LoginTranscript {
        channel_binding: &channel_binding,
        challenge: &challenge,
        operator_key: operator.public().spki_der(),
        user,
    }
    .sign(operator, &mut OsRng);
    let attempt = Attempt {
        ip: from.parse().unwrap(),
        user: user.into(),
        password: Secret::new(password),
        second_factor: None,
        operator_key: operator.public().spki_der().to_vec(),
        possession: Possession {
            channel_binding,
            challenge: Some(challenge),
            proof,
        },
    };
    login::attempt(relay, attempt).await.unwrap()
}

fn accepted(outcome: LoginOutcome) -> CertBody {
    match outcome {
        LoginOutcome::Accepted { certificate, .. } => {
            certificate.verify(keys().ca.public(), now()).unwrap()
        }
        other => panic!("expected a login, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_does_the_same_hashing_work() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    for directory in [false, true] {
        let relay = relay(dir.path(), config(), directory).await;
        let mut paths = vec![
            ("alice", "wrong password"),
            ("nobody", PASSWORD),
            ("dora", PASSWORD),
            ("erin", PASSWORD),
            ("al ice", PASSWORD),
            ("\u{ff41}lice", PASSWORD),
            ("", PASSWORD),
        ];
        // A password typed into the user field is not a name either.
        paths.push(("alice's long password", PASSWORD));
        for (user, password) in paths {
            let before = relay.hashing.checks();
            let outcome = login(&relay, HERE, user, password).await;
            assert!(
                matches!(outcome, LoginOutcome::Failed),
                "{user:?} (directory: {directory}): {outcome:?}"
            );
            assert_eq!(
                relay.hashing.checks() - before,
                1,
                "{user:?} (directory: {directory})"
            );
        }
        let before = relay.hashing.checks();
        accepted(login(&relay, HERE, "alice", PASSWORD).await);
        assert_eq!(relay.hashing.checks() - before, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_answered_no_sooner_than_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let mut config = config();
    config.login_work.failure_floor_ms = 400;
    let relay = relay(dir.path(), config, false).await;
    // A lower bound only: the floor is a sleep until arrival + floor, so it cannot be early.
    for user in ["nobody", "alice", "not a name"] {
        let started = Instant::now();
        let outcome = login(&relay, HERE, user, "wrong password").await;
        assert!(matches!(outcome, LoginOutcome::Failed), "{outcome:?}");
        assert!(started.elapsed() >= Duration::from_millis(400), "{user}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spelling_is_the_canonical_account() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let mut config = config();
    config.login_limit.lockout.after_failures = 3;
    config.login_limit.per_account.free_failures = 100;
    let relay = relay(dir.path(), config, false).await;

    // The certificate carries the account's name, whatever the spelling typed.
    for typed in ["ALICE", " alice\t", "Alice "] {
        assert_eq!(
            accepted(login(&relay, HERE, typed, PASSWORD).await).operator,
            "alice",
            "{typed:?}"
        );
    }
    // The disabled flag holds for every spelling (from another address: with this lockout,
    // three failures would lock alice's address too).
    for typed in ["DORA", "dora ", " Dora"] {
        assert!(matches!(
            login(&relay, "198.51.100.50", typed, PASSWORD).await,
            LoginOutcome::Failed
        ));
    }
    // And so does dora's lock, counted under her canonical name.
    assert!(matches!(
        login(&relay, "198.51.100.51", "dora", PASSWORD).await,
        LoginOutcome::RateLimited(_)
    ));
    // Failures under three spellings, each from another address new to the account, lock
    // the one account: a fourth spelling from a fourth address is refused, right password
    // and all.
    for (i, typed) in ["bob", "BOB ", " Bob"].iter().enumerate() {
        let from = format!("203.0.113.{}", i + 1);
        assert!(matches!(
            login(&relay, &from, typed, "wrong").await,
            LoginOutcome::Failed
        ));
    }
    let from = "203.0.113.9";
    assert!(matches!(
        login(&relay, from, "bOb", "wrong").await,
        LoginOutcome::RateLimited(_)
    ));
    for (i, typed) in ["alice", "ALICE ", " Alice"].iter().enumerate() {
        let from = format!("192.0.2.{}", i + 1);
        login(&relay, &from, typed, "wrong").await;
    }
    assert!(matches!(
        login(&relay, "192.0.2.9", "aLiCe", PASSWORD).await,
        LoginOutcome::RateLimited(_)
    ));
    // Her usual address has a counter of its own.
    accepted(login(&relay, HERE, "alice", PASSWORD).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_wide_failures_slow_new_addresses_not_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let mut config = config();
    config.login_limit.global = BackoffPolicy {
        free_failures: 4,
        base_delay_secs: 60,
        max_delay_secs: 60,
        forget_after_secs: 600,
    };
    let relay = relay(dir.path(), config, false).await;
    // Alice's usual address becomes known.
    accepted(login(&relay, HERE, "alice", PASSWORD).await);
    // A spray: one guess per address and name, invalid names included.
    for (i, user) in ["bob", "carol", "alice", "not a name"].iter().enumerate() {
        let from = format!("2001:db8:{i:x}::1");
        assert!(matches!(
            login(&relay, &from, user, "guess").await,
            LoginOutcome::Failed
        ));
    }
    // Now any new address waits, for any name, even with the right password...
    let before = relay.hashing.checks();
    for user in ["dave", "alice"] {
        assert!(matches!(
            login(&relay, "2001:db8:ff::1", user, PASSWORD).await,
            LoginOutcome::RateLimited(_)
        ));
    }
    assert_eq!(relay.hashing.checks(), before, "refused before any hashing");
    // ...but alice at her usual desk is not held back.
    accepted(login(&relay, HERE, "alice", PASSWORD).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_per_account_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let mut config = config();
    config.login_limit.certificates = Quota {
        per_window: 3,
        window_secs: 600,
    };
    let relay = relay(dir.path(), config, false).await;
    for typed in ["alice", "Alice", "ALICE "] {
        accepted(login(&relay, HERE, typed, PASSWORD).await);
    }
    let before = relay.hashing.checks();
    match login(&relay, HERE, "alice", PASSWORD).await {
        LoginOutcome::RateLimited(wait) => assert!((1..=600).contains(&wait), "{wait}"),
        other => panic!("expected a wait, got {other:?}"),
    }
    assert_eq!(relay.hashing.checks(), before, "refused before any hashing");
    // Issued certificates are counted, not attempts: a wrong password costs none.
    let issued = relay
        .with_db(|db| sightline_relay::authority::certs::list(db, Some("alice"), false, now()))
        .await
        .unwrap();
    assert_eq!(issued.len(), 3);
}
