//! What an operator certificate tells the customer, as [`sightline_relay::accounts::login::attempt`]
//! issues it: hostile display names and organisations, from a relay account (stored before
//! `relay user` refused them) and from the directory, come out of the signed certificate clean
//! (no escape sequences, control characters, line breaks, text-direction characters; at most
//! `MAX_DISPLAY_CHARS`) without refusing the login; a user name that breaks the naming rule
//! never reaches the directory, and one that follows it once trimmed reaches it only in its
//! canonical spelling.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::OsRng;
use sightline_core::cert::CertBody;
use sightline_core::identity::{PrivateIdentity, CA_BITS, MIN_PEER_BITS};
use sightline_core::login_proof::LoginTranscript;
use sightline_core::relay_proto::Secret;
use sightline_core::text::MAX_DISPLAY_CHARS;
use sightline_relay::accounts::auth::{
    AuthError, Authenticated, Authenticator, BoxFuture, Role, Verdict,
};
use sightline_relay::accounts::login::{self, Attempt, LoginOutcome, Possession};
use sightline_relay::accounts::totp;
use sightline_relay::accounts::users::{self, Enrolment, NewUser, Source};
use sightline_relay::config::Config;
use sightline_relay::context::Relay;
use sightline_relay::policy::Policy;
use sightline_relay::store::db::Database;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

const PASSWORD: &str = "mallory's long password";
const HOSTILE_NAME: &str = "\u{1b}[2J\u{1b}[31mEvil\u{1b}[0m Mallory\nVerification code: 1234 5678";
const HOSTILE_ORG: &str = "\u{202e}knaB\u{202c} \u{1b}]0;pwned\u{7}Corp\r\n";

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

/// A directory that accepts every password and answers with hostile attributes; counts the
/// names it is asked about.
#[derive(Debug, Default)]
struct HostileDirectory {
    asked: AtomicUsize,
    names: Mutex<Vec<String>>,
}

impl Authenticator for HostileDirectory {
    fn kind(&self) -> &'static str {
        "hostile"
    }

    fn authenticate<'a>(
        &'a self,
        user: &'a str,
        _password: &'a Secret,
    ) -> BoxFuture<'a, Result<Verdict, AuthError>> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.names.lock().unwrap().push(user.to_string());
        Box::pin(async move {
            Ok(Verdict::Accepted(Authenticated {
                name: user.to_string(),
                display_name: Some(HOSTILE_NAME.to_string()),
                organisation: Some(HOSTILE_ORG.to_string()),
                role: Role::Operator,
            }))
        })
    }
}

/// Adds `name` (two-factor enrolled) to the database in `dir`.
fn add(dir: &Path, name: &str, source: Source) -> Enrolment {
    let mut db = Database::open(&dir.join("relay.db")).unwrap();
    let new = NewUser {
        source,
        password: (source == Source::Local).then_some(PASSWORD),
        ..NewUser::operator(name, PASSWORD, now())
    };
    users::add(&mut db, new, &Policy::default().password_policy())
        .unwrap()
        .unwrap()
}

/// A relay on the database in `dir`, with `directory` as its LDAP directory.
async fn relay(dir: &Path, directory: Option<Arc<HostileDirectory>>) -> Arc<Relay> {
    let db = Database::open(&dir.join("relay.db")).unwrap();
    // Limits out of the way: these tests are about what the certificate says.
    let mut config = Config::default();
    config.login_limit.per_address.free_failures = 100;
    config.login_limit.per_account.free_failures = 100;
    config.login_limit.lockout.after_failures = 100;
    let mut relay = Relay::new(config, Policy::default(), keys().ca.clone(), db)
        .await
        .unwrap();
    if let Some(d) = directory {
        Arc::get_mut(&mut relay)
            .expect("nothing else holds the relay yet")
            .directory = Some(d);
    }
    relay
}

async fn login(relay: &Relay, user: &str, code: Option<String>) -> LoginOutcome {
    let attempt = Attempt {
        ip: "198.51.100.7".parse().unwrap(),
        user: user.to_string(),
        password: Secret::new(PASSWORD),
        second_factor: code.map(Secret::new),
        operator_key: keys().operator.public().spki_der().to_vec(),
        possession: proven(&keys().operator, user),
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

/// Nothing in `s` that a terminal interprets or that reads differently from what it is.
fn assert_shown_as_is(s: &str) {
    let hidden = |c: char| {
        c.is_control()
            || (c.is_whitespace() && c != ' ')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}'..='\u{200f}' | '\u{feff}')
    };
    assert!(!s.chars().any(hidden), "{s:?}");
    assert!(s.chars().count() <= MAX_DISPLAY_CHARS, "{s:?}");
    assert_eq!(s.trim(), s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_labels_stored_on_the_account_are_cleaned_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    Database::create(&dir.path().join("relay.db")).unwrap();
    let e = add(dir.path(), "mallory", Source::Local);
    // Written behind `relay user`'s back, as a database from before it refused such text.
    let long = "Ä".repeat(120);
    let db = Database::open(&dir.path().join("relay.db")).unwrap();
    db.conn()
        .execute(
            "UPDATE users SET display_name = ?1, organisation = ?2 WHERE name = 'mallory'",
            [format!("{HOSTILE_NAME}{long}"), HOSTILE_ORG.to_string()],
        )
        .unwrap();
    drop(db);

    let relay = relay(dir.path(), None).await;
    let body = accepted(login(&relay, "mallory", Some(totp::code_at(&e.secret, now()))).await);
    assert_eq!(body.operator, "mallory");
    assert!(
        body.display_name
            .starts_with("Evil Mallory Verification code: 1234 5678ÄÄ"),
        "{:?}",
        body.display_name
    );
    assert!(
        body.display_name.ends_with("..."),
        "{:?}",
        body.display_name
    );
    assert_eq!(body.organisation, "knaB Corp");
    assert_shown_as_is(&body.display_name);
    assert_shown_as_is(&body.organisation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_directory_attributes_are_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    Database::create(&dir.path().join("relay.db")).unwrap();
    let e = add(dir.path(), "mallory", Source::Ldap);
    let directory = Arc::new(HostileDirectory::default());
    let relay = relay(dir.path(), Some(directory.clone())).await;

    let body = accepted(login(&relay, "mallory", Some(totp::code_at(&e.secret, now()))).await);
    assert_eq!(directory.asked.load(Ordering::SeqCst), 1);
    assert_eq!(body.operator, "mallory");
    assert_eq!(
        body.display_name,
        "Evil Mallory Verification code: 1234 5678"
    );
    assert_eq!(body.organisation, "knaB Corp");
    assert_shown_as_is(&body.display_name);
    assert_shown_as_is(&body.organisation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_outside_the_rule_never_reach_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    Database::create(&dir.path().join("relay.db")).unwrap();
    let directory = Arc::new(HostileDirectory::default());
    let relay = relay(dir.path(), Some(directory.clone())).await;
    for name in [
        "mal lory",
        "mal\u{1b}[2Jlory",
        "mallory\nVerification code: 1",
        // Full-width letters, which NFKC would fold into "mallory".
        "\u{ff4d}\u{ff41}\u{ff4c}\u{ff4c}\u{ff4f}\u{ff52}\u{ff59}",
    ] {
        assert!(
            matches!(login(&relay, name, None).await, LoginOutcome::Failed),
            "{name:?}"
        );
    }
    assert_eq!(directory.asked.load(Ordering::SeqCst), 0);
    // A name that follows the rule does reach it (the test can fail), and a variant of one
    // reaches it in its canonical spelling only.
    login(&relay, "mallory", None).await;
    login(&relay, " MalLory\t", None).await;
    assert_eq!(directory.asked.load(Ordering::SeqCst), 2);
    assert_eq!(*directory.names.lock().unwrap(), ["mallory", "mallory"]);
}
