//! Login as the relay runs it ([`sightline_relay::accounts::login::attempt`]) on a real database, with
//! source addresses chosen by the test: the second factor (TOTP, reuse, recovery codes),
//! what the certificate grants under the policy, disabled accounts, and brute-force delays and
//! lockout, including that a flood from one address does not lock the owner out elsewhere and
//! that the counters survive a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::OsRng;
use sightline_core::cert::{CertBody, Permissions};
use sightline_core::identity::{PrivateIdentity, CA_BITS, MIN_PEER_BITS};
use sightline_core::limiter::{BackoffPolicy, Lockout};
use sightline_core::login_proof::LoginTranscript;
use sightline_core::relay_proto::Secret;
use sightline_relay::accounts::login::{self, Attempt, LoginOutcome, Possession};
use sightline_relay::accounts::totp;
use sightline_relay::accounts::users::{self, Enrolment, NewUser};
use sightline_relay::config::Config;
use sightline_relay::context::Relay;
use sightline_relay::policy::Policy;
use sightline_relay::store::db::Database;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

const PASSWORD: &str = "alice's long password";

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

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn now() -> u64 {
    sightline_net::clock::now_unix()
}

/// A database with alice (two-factor enrolled); returns her enrolment.
fn database(dir: &Path, new: impl FnOnce(NewUser<'_>) -> NewUser<'_>) -> Enrolment {
    let mut db = Database::create(&dir.join("relay.db")).unwrap();
    let alice = new(NewUser {
        display_name: Some("Alice Smith"),
        organisation: Some("Example Help Desk"),
        ..NewUser::operator("alice", PASSWORD, now())
    });
    users::add(&mut db, alice, &Policy::default().password_policy())
        .unwrap()
        .unwrap()
}

async fn relay(dir: &Path, mut config: Config, policy: Policy) -> Arc<Relay> {
    // No floor on failed answers: these tests fail many logins, and the floor is tested in
    // login_guard.rs.
    config.login_work.failure_floor_ms = 0;
    let db = Database::open(&dir.join("relay.db")).unwrap();
    Relay::new(config, policy, keys().ca.clone(), db)
        .await
        .unwrap()
}

async fn login(relay: &Relay, from: &str, password: &str, code: Option<String>) -> LoginOutcome {
    let attempt = Attempt {
        ip: ip(from),
        user: "alice".into(),
        password: Secret::new(password),
        second_factor: code.map(Secret::new),
        operator_key: keys().operator.public().spki_der().to_vec(),
        possession: proven(&keys().operator, "alice"),
    };
    login::attempt(relay, attempt).await.unwrap()
}

/// A valid proof of possession of `key` for a login as `user`, as the viewer makes it (the
/// channel binding and challenge stand for those of a real connection).
fn proven(key: &PrivateIdentity, user: &str) -> Possession {
    let (channel_binding, challenge) = ([7u8; 32], [8u8; 32]);
    let proof = LoginTranscript {
        channel_binding: &channel_binding,
        challenge: &challenge,
        operator_key: key.public().spki_der(),
        user,
    }
    .sign(key, &mut OsRng);
    Possession {
        channel_binding,
        challenge: Some(challenge),
        proof,
    }
}

fn accepted(outcome: LoginOutcome) -> CertBody {
    match outcome {
        LoginOutcome::Accepted { certificate, .. } => {
            certificate.verify(keys().ca.public(), now()).unwrap()
        }
        other => panic!("expected a login, got {other:?}"),
    }
}

fn failed(outcome: &LoginOutcome) -> bool {
    matches!(outcome, LoginOutcome::Failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factor_is_required_checked_and_single_use() {
    let dir = tempfile::tempdir().unwrap();
    let e = database(dir.path(), |u| u);
    // Limits out of the way: this test is about the codes.
    let mut config = Config::default();
    config.login_limit.per_address.free_failures = 100;
    config.login_limit.per_account.free_failures = 100;
    config.login_limit.lockout.after_failures = 100;
    let relay = relay(dir.path(), config, Policy::default()).await;
    let here = "198.51.100.7";

    // The right password alone, or with a wrong or malformed code, is a failed login.
    assert!(failed(&login(&relay, here, PASSWORD, None).await));
    let wrong = format!(
        "{:06}",
        (totp::code_at(&e.secret, now()).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    assert!(failed(&login(&relay, here, PASSWORD, Some(wrong)).await));
    assert!(failed(
        &login(&relay, here, PASSWORD, Some("12345".into())).await
    ));
    // A right code with a wrong password is a failed login too.
    let code = totp::code_at(&e.secret, now());
    assert!(failed(
        &login(&relay, here, "not the password", Some(code)).await
    ));

    // Password and the current code: a certificate with what the policy allows.
    let code = totp::code_at(&e.secret, now());
    let body = accepted(login(&relay, here, PASSWORD, Some(code.clone())).await);
    assert_eq!(body.operator, "alice");
    assert_eq!(body.display_name, "Alice Smith");
    assert_eq!(
        body.permissions,
        Permissions::VIEW.union(Permissions::CONTROL)
    );
    assert_eq!(body.max_session_secs, 8 * 3600);
    // An accepted code never works again, even within its 30 s.
    assert!(failed(&login(&relay, here, PASSWORD, Some(code)).await));
    // The next step's code is within the allowed skew and newer: accepted.
    let next = totp::code_at(&e.secret, now() + totp::STEP_SECS);
    accepted(login(&relay, here, PASSWORD, Some(next)).await);

    // A recovery code works once, in any letter case.
    let recovery = e.recovery_codes[0].to_uppercase();
    accepted(login(&relay, here, PASSWORD, Some(recovery.clone())).await);
    assert!(failed(&login(&relay, here, PASSWORD, Some(recovery)).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_and_account_narrow_what_the_certificate_grants() {
    let dir = tempfile::tempdir().unwrap();
    let e = database(dir.path(), |u| NewUser {
        session_limit_secs: Some(20 * 60),
        ..u
    });
    // A view-only help desk with one-hour sessions.
    let policy = Policy::parse(
        "[permissions]\nallow = [\"view\"]\nmax_session_minutes = 60\n",
        Path::new("policy.toml"),
    )
    .unwrap();
    let relay = relay(dir.path(), Config::default(), policy).await;
    let code = totp::code_at(&e.secret, now());
    let body = accepted(login(&relay, "198.51.100.7", PASSWORD, Some(code)).await);
    assert_eq!(body.permissions, Permissions::VIEW);
    assert!(!body.permissions.allows(Permissions::CONTROL));
    // The account's own limit is shorter than the policy's.
    assert_eq!(body.max_session_secs, 20 * 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_or_removed_accounts_stop_logging_in_and_starting_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let e = database(dir.path(), |u| u);
    let relay = relay(dir.path(), Config::default(), Policy::default()).await;
    let code = totp::code_at(&e.secret, now());
    let serial = accepted(login(&relay, "198.51.100.7", PASSWORD, Some(code)).await).serial;
    assert!(relay
        .may_start_sessions("alice", true, serial)
        .await
        .unwrap());
    // The certificate was recorded at issue; revoking it stops sessions whatever the account.
    let other = relay
        .with_db(|db| sightline_relay::authority::certs::list(db, Some("alice"), false, now()))
        .await
        .unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].serial, serial);
    assert!(relay
        .may_start_sessions("alice", false, serial)
        .await
        .unwrap());
    relay
        .with_db(move |db| {
            sightline_relay::authority::certs::revoke_serial(db, serial, now(), "test")
        })
        .await
        .unwrap();
    assert!(!relay
        .may_start_sessions("alice", false, serial)
        .await
        .unwrap());
    assert!(relay
        .may_start_sessions("alice", true, serial + 1)
        .await
        .unwrap());

    relay
        .with_db(|db| {
            users::set_disabled(db, "alice", true, now()).map_err(|e| match e {
                users::UserError::Db(d) => d,
                other => panic!("{other}"),
            })
        })
        .await
        .unwrap();
    assert!(!relay
        .may_start_sessions("alice", true, serial + 1)
        .await
        .unwrap());
    let code = totp::code_at(&e.secret, now() + totp::STEP_SECS);
    assert!(failed(
        &login(&relay, "198.51.100.7", PASSWORD, Some(code)).await
    ));

    relay
        .with_db(|db| {
            users::remove(db, "alice").map_err(|e| match e {
                users::UserError::Db(d) => d,
                other => panic!("{other}"),
            })
        })
        .await
        .unwrap();
    assert!(!relay
        .may_start_sessions("alice", true, serial + 1)
        .await
        .unwrap());
}

/// Per address: two free failures, then delays from 60 s. Per account: no delays before the
/// lockout, which comes after 4 failures and lasts 10 minutes.
fn strict_config() -> Config {
    let mut config = Config::default();
    config.login_limit.per_address = BackoffPolicy {
        free_failures: 2,
        base_delay_secs: 60,
        max_delay_secs: 120,
        forget_after_secs: 3600,
    };
    config.login_limit.per_account = BackoffPolicy {
        free_failures: 10,
        base_delay_secs: 60,
        max_delay_secs: 120,
        forget_after_secs: 3600,
    };
    config.login_limit.lockout = Lockout {
        after_failures: 4,
        duration_secs: 600,
    };
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_locks_the_attacker_and_unknown_addresses_but_not_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let e = database(dir.path(), |u| u);
    let relay = relay(dir.path(), strict_config(), Policy::default()).await;
    let owner = "198.51.100.7";
    let attacker = "203.0.113.9";
    let elsewhere = "192.0.2.50";

    // The owner has logged in from their desk before.
    let code = totp::code_at(&e.secret, now());
    accepted(login(&relay, owner, PASSWORD, Some(code)).await);

    // The attacker's guesses: two free failures, then delays. Even the right password and
    // code from the attacker's address are refused while the delay runs.
    assert!(failed(
        &login(&relay, attacker, "guess 1 password", None).await
    ));
    assert!(failed(
        &login(&relay, attacker, "guess 2 password", None).await
    ));
    let limited = login(&relay, attacker, "guess 3 password", None).await;
    assert!(
        matches!(limited, LoginOutcome::RateLimited(1..=60)),
        "{limited:?}"
    );

    // Guesses from other addresses count against the account from unknown addresses: two
    // more failures make four, and the account locks for them.
    for from in ["203.0.113.101", "203.0.113.102"] {
        let r = login(&relay, from, "distributed guess", None).await;
        assert!(failed(&r), "{r:?}");
    }
    let locked = login(
        &relay,
        elsewhere,
        PASSWORD,
        Some(totp::code_at(&e.secret, now())),
    )
    .await;
    match locked {
        LoginOutcome::RateLimited(wait) => assert!(wait > 60, "locked, not just delayed: {wait}"),
        other => panic!("an unknown address should be locked out: {other:?}"),
    }

    // The owner, at the address the account knows, is judged by a counter of their own.
    let owner_code = totp::code_at(&e.secret, now() + totp::STEP_SECS);
    accepted(login(&relay, owner, PASSWORD, Some(owner_code.clone())).await);

    // A restarted relay on the same database remembers every counter.
    drop(relay);
    let relay = self::relay(dir.path(), strict_config(), Policy::default()).await;
    assert!(matches!(
        login(&relay, attacker, PASSWORD, None).await,
        LoginOutcome::RateLimited(_)
    ));
    assert!(matches!(
        login(&relay, elsewhere, PASSWORD, None).await,
        LoginOutcome::RateLimited(_)
    ));
    // The owner's two-factor state survived too: the code just used is still spent. (The very
    // code, not one computed again now: a step boundary may have passed in between.)
    let spent = owner_code;
    assert!(failed(&login(&relay, owner, PASSWORD, Some(spent)).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_locks_their_own_address_after_repeated_failures() {
    let dir = tempfile::tempdir().unwrap();
    let e = database(dir.path(), |u| u);
    let relay = relay(dir.path(), strict_config(), Policy::default()).await;
    let owner = "198.51.100.7";
    accepted(
        login(
            &relay,
            owner,
            PASSWORD,
            Some(totp::code_at(&e.secret, now())),
        )
        .await,
    );
    // Wrong codes count as failures like wrong passwords.
    for _ in 0..2 {
        let r = login(&relay, owner, PASSWORD, Some("000000".into())).await;
        assert!(failed(&r), "{r:?}");
    }
    assert!(matches!(
        login(&relay, owner, PASSWORD, None).await,
        LoginOutcome::RateLimited(_)
    ));
}
