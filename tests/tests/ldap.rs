#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The relay's LDAP authenticator against a real slapd (see `sightline_tests::slapd`): TLS and
//! StartTLS, both ways of finding the user, groups and roles, and the failures an operator
//! must be able to tell apart; and the relay's whole login path with the directory (search
//! mode, `provides_second_factor = true`): every spelling of a name is the one canonical
//! account, with its lockout, disabled flag, narrowed permissions and certificate name, and an
//! unknown name costs the same hashing work as a known one.

use rand_core::OsRng;
use sightline_core::cert::{CertBody, Permissions};
use sightline_core::identity::{PrivateIdentity, CA_BITS, MIN_PEER_BITS};
use sightline_core::login_proof::LoginTranscript;
use sightline_core::relay_proto::Secret;
use sightline_relay::accounts::auth::{
    AuthError, Authenticated, Authenticator, Rejection, Role, Verdict,
};
use sightline_relay::accounts::ldap::{LdapAuthenticator, LdapConfig, LdapSetupError};
use sightline_relay::accounts::login::{self, Attempt, LoginOutcome, Possession};
use sightline_relay::accounts::users::{self, NewUser, Source};
use sightline_relay::config::Config;
use sightline_relay::context::Relay;
use sightline_relay::policy::Policy;
use sightline_relay::store::db::Database;
use sightline_tests::slapd::{make_ca, toml_str, Slapd, ALICE, BOB, CAROL, PEOPLE_DN, SERVICE_DN};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `[ldap]` table of a relay configuration.
fn parse(toml_text: &str) -> LdapConfig {
    let table: toml::Table = toml::from_str(toml_text).unwrap();
    table["ldap"]
        .clone()
        .try_into()
        .unwrap_or_else(|e| panic!("{e}\n{toml_text}"))
}

fn authenticator(toml_text: &str) -> LdapAuthenticator {
    LdapAuthenticator::new(parse(toml_text)).unwrap_or_else(|e| panic!("{e}\n{toml_text}"))
}

async fn login(auth: &LdapAuthenticator, user: &str, password: &str) -> Result<Verdict, AuthError> {
    auth.authenticate(user, &Secret::new(password)).await
}

/// Logs in and expects a verdict, showing slapd's log otherwise.
async fn verdict(slapd: &Slapd, auth: &LdapAuthenticator, user: &str, password: &str) -> Verdict {
    login(auth, user, password)
        .await
        .unwrap_or_else(|e| panic!("{user}: {e}\nslapd log:\n{}", slapd.log()))
}

fn accepted(user: &sightline_tests::slapd::LdapUser, role: Role) -> Verdict {
    Verdict::Accepted(Authenticated {
        name: user.name.to_string(),
        display_name: user.display_name.map(str::to_string),
        organisation: user.organisation.map(str::to_string),
        role,
    })
}

fn search_mode(slapd: &Slapd) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("user_dn_template", None),
        ("search_base", Some(toml_str(PEOPLE_DN))),
        (
            "search_filter",
            Some(toml_str("(&(objectClass=inetOrgPerson)(uid={user}))")),
        ),
        ("bind_dn", Some(toml_str(SERVICE_DN))),
        (
            "bind_password_file",
            Some(toml_str(&slapd.service_password_file().to_string_lossy())),
        ),
    ]
}

fn with(slapd: &Slapd, changes: &[(&str, Option<String>)]) -> String {
    let changes: Vec<(&str, Option<&str>)> =
        changes.iter().map(|(k, v)| (*k, v.as_deref())).collect();
    slapd.ldap_toml_with(&changes)
}

#[tokio::test]
async fn operator_logs_in_over_ldaps() {
    let slapd = Slapd::start();
    let auth = authenticator(&slapd.ldap_toml());
    assert_eq!(auth.kind(), "ldap");
    let v = verdict(&slapd, &auth, ALICE.name, ALICE.password).await;
    assert_eq!(
        v,
        Verdict::Accepted(Authenticated {
            name: "alice".to_string(),
            display_name: Some("Alice Directory".to_string()),
            organisation: Some("Example Help Desk".to_string()),
            role: Role::Operator,
        })
    );
}

#[tokio::test]
async fn member_of_the_admin_group_is_admin() {
    let slapd = Slapd::start();
    let auth = authenticator(&slapd.ldap_toml());
    assert_eq!(
        verdict(&slapd, &auth, BOB.name, BOB.password).await,
        accepted(&BOB, Role::Admin)
    );
}

#[tokio::test]
async fn wrong_password_is_rejected() {
    let slapd = Slapd::start();
    let auth = authenticator(&slapd.ldap_toml());
    assert_eq!(
        verdict(&slapd, &auth, ALICE.name, BOB.password).await,
        Verdict::Rejected(Rejection::WrongPassword)
    );
    // Another user's right password is as wrong.
    assert_eq!(
        verdict(&slapd, &auth, ALICE.name, "alice's LDAP password").await,
        Verdict::Rejected(Rejection::WrongPassword)
    );
    // With a template an unknown user looks the same to the directory (49).
    assert_eq!(
        verdict(&slapd, &auth, "nobody", "whatever").await,
        Verdict::Rejected(Rejection::WrongPassword)
    );
    // DN metacharacters in the name are escaped, not interpreted.
    assert_eq!(
        verdict(&slapd, &auth, "alice,ou=people", ALICE.password).await,
        Verdict::Rejected(Rejection::WrongPassword)
    );
}

#[tokio::test]
async fn empty_password_is_rejected_without_contacting_the_directory() {
    let slapd = Slapd::start();
    let auth = authenticator(&slapd.ldap_toml());
    let before = slapd.connections();
    assert_eq!(
        verdict(&slapd, &auth, ALICE.name, "").await,
        Verdict::Rejected(Rejection::WrongPassword)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(slapd.connections(), before, "{}", slapd.log());
    // The log does count connections: a real login adds one.
    verdict(&slapd, &auth, ALICE.name, ALICE.password).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while slapd.connections() == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(slapd.connections(), before + 1, "{}", slapd.log());
}

#[tokio::test]
async fn user_outside_the_operator_group_is_not_authorised() {
    let slapd = Slapd::start();
    let auth = authenticator(&slapd.ldap_toml());
    assert_eq!(
        verdict(&slapd, &auth, CAROL.name, CAROL.password).await,
        Verdict::Rejected(Rejection::NotAuthorised)
    );
    // The password is checked before the groups.
    assert_eq!(
        verdict(&slapd, &auth, CAROL.name, ALICE.password).await,
        Verdict::Rejected(Rejection::WrongPassword)
    );
}

#[tokio::test]
async fn without_operator_group_everyone_who_binds_is_an_operator() {
    let slapd = Slapd::start();
    let auth = authenticator(&slapd.ldap_toml_with(&[("operator_group", None)]));
    assert_eq!(
        verdict(&slapd, &auth, CAROL.name, CAROL.password).await,
        accepted(&CAROL, Role::Operator)
    );
    assert_eq!(
        verdict(&slapd, &auth, BOB.name, BOB.password).await,
        accepted(&BOB, Role::Admin)
    );
    // Nor any group at all.
    let auth =
        authenticator(&slapd.ldap_toml_with(&[("operator_group", None), ("admin_group", None)]));
    assert_eq!(
        verdict(&slapd, &auth, BOB.name, BOB.password).await,
        accepted(&BOB, Role::Operator)
    );
}

#[tokio::test]
async fn a_missing_group_is_an_error_not_a_rejection() {
    let slapd = Slapd::start();
    let group = toml_str("cn=nonexistent,ou=groups,dc=example,dc=org");
    let auth = authenticator(&slapd.ldap_toml_with(&[("operator_group", Some(&group))]));
    let e = login(&auth, ALICE.name, ALICE.password).await.unwrap_err();
    assert!(
        matches!(&e, AuthError::Failed(m) if m.contains("cn=nonexistent")),
        "{e:?}"
    );
}

#[tokio::test]
async fn starttls_on_the_plain_port() {
    let slapd = Slapd::start();
    let url = toml_str(&slapd.ldap_url());
    let auth =
        authenticator(&slapd.ldap_toml_with(&[("url", Some(&url)), ("starttls", Some("true"))]));
    assert_eq!(
        verdict(&slapd, &auth, ALICE.name, ALICE.password).await,
        accepted(&ALICE, Role::Operator)
    );
    assert_eq!(
        verdict(&slapd, &auth, ALICE.name, "wrong").await,
        Verdict::Rejected(Rejection::WrongPassword)
    );
}

#[tokio::test]
async fn search_mode_with_a_service_account() {
    let slapd = Slapd::start();
    let auth = authenticator(&with(&slapd, &search_mode(&slapd)));
    assert_eq!(
        verdict(&slapd, &auth, ALICE.name, ALICE.password).await,
        accepted(&ALICE, Role::Operator)
    );
    assert_eq!(
        verdict(&slapd, &auth, BOB.name, BOB.password).await,
        accepted(&BOB, Role::Admin)
    );
    assert_eq!(
        verdict(&slapd, &auth, CAROL.name, CAROL.password).await,
        Verdict::Rejected(Rejection::NotAuthorised)
    );
    assert_eq!(
        verdict(&slapd, &auth, ALICE.name, "wrong").await,
        Verdict::Rejected(Rejection::WrongPassword)
    );
    assert_eq!(
        verdict(&slapd, &auth, "nobody", "whatever").await,
        Verdict::Rejected(Rejection::UnknownUser)
    );
    // A filter wildcard in the name is escaped: it matches nobody instead of everybody.
    assert_eq!(
        verdict(&slapd, &auth, "*", ALICE.password).await,
        Verdict::Rejected(Rejection::UnknownUser)
    );
    assert_eq!(
        verdict(&slapd, &auth, "alice)(uid=*", ALICE.password).await,
        Verdict::Rejected(Rejection::UnknownUser)
    );
}

#[tokio::test]
async fn search_mode_misconfigurations_are_errors() {
    let slapd = Slapd::start();
    let mut changes = search_mode(&slapd);
    changes.push((
        "search_filter",
        Some(toml_str("(|(uid={user})(o=Example Help Desk))")),
    ));
    let auth = authenticator(&with(&slapd, &changes));
    let e = login(&auth, ALICE.name, ALICE.password).await.unwrap_err();
    assert!(
        matches!(&e, AuthError::Failed(m) if m.contains("more than one")),
        "{e:?}"
    );

    let mut changes = search_mode(&slapd);
    changes.push((
        "search_base",
        Some(toml_str("ou=nowhere,dc=example,dc=org")),
    ));
    let auth = authenticator(&with(&slapd, &changes));
    let e = login(&auth, ALICE.name, ALICE.password).await.unwrap_err();
    assert!(
        matches!(&e, AuthError::Failed(m) if m.contains("ou=nowhere")),
        "{e:?}"
    );

    // Anonymous users may not search this directory: an error, not "unknown user".
    let mut changes = search_mode(&slapd);
    changes.push(("bind_dn", None));
    changes.push(("bind_password_file", None));
    let auth = authenticator(&with(&slapd, &changes));
    let e = login(&auth, ALICE.name, ALICE.password).await.unwrap_err();
    assert!(
        matches!(&e, AuthError::Failed(m) if m.contains("anonymously")),
        "{e:?}"
    );

    let wrong = slapd.dir().join("wrong-password");
    std::fs::write(&wrong, "not the service password\n").unwrap();
    set_mode(&wrong, 0o600);
    let mut changes = search_mode(&slapd);
    changes.push((
        "bind_password_file",
        Some(toml_str(&wrong.to_string_lossy())),
    ));
    let auth = authenticator(&with(&slapd, &changes));
    let e = login(&auth, ALICE.name, ALICE.password).await.unwrap_err();
    assert!(
        matches!(&e, AuthError::Failed(m) if m.contains("service account")),
        "{e:?}"
    );
}

#[tokio::test]
async fn loose_service_password_file_is_refused() {
    let slapd = Slapd::start();
    let changes = search_mode(&slapd);
    let file = slapd.service_password_file();
    set_mode(&file, 0o644);
    let e = LdapAuthenticator::new(parse(&with(&slapd, &changes))).unwrap_err();
    assert!(
        matches!(e, LdapSetupError::LoosePermissions { mode: 0o644, .. }),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("bind_password_file") && text.contains("600"),
        "{text}"
    );
    assert!(!text.contains(sightline_tests::slapd::SERVICE_PASSWORD));
}

#[tokio::test]
async fn untrusted_certificate_is_a_tls_failure() {
    let slapd = Slapd::start();
    let other = tempfile::tempdir().unwrap();
    let other_ca = make_ca(other.path(), "other");
    let ca = toml_str(&other_ca.to_string_lossy());
    for url in [slapd.ldaps_url(), slapd.ldap_url()] {
        let url = toml_str(&url);
        let starttls = if url.contains("ldaps") {
            "false"
        } else {
            "true"
        };
        let auth = authenticator(&slapd.ldap_toml_with(&[
            ("url", Some(&url)),
            ("starttls", Some(starttls)),
            ("ca_file", Some(&ca)),
        ]));
        let e = login(&auth, ALICE.name, ALICE.password).await.unwrap_err();
        assert!(
            matches!(&e, AuthError::Failed(m) if m.contains("TLS")),
            "{url}: {e:?}"
        );
    }
}

#[tokio::test]
async fn ldaps_to_the_plain_port_is_a_tls_failure() {
    let slapd = Slapd::start();
    let url = toml_str(&format!("ldaps://127.0.0.1:{}", slapd.ldap_port()));
    let auth = authenticator(&slapd.ldap_toml_with(&[("url", Some(&url))]));
    let e = login(&auth, ALICE.name, ALICE.password).await.unwrap_err();
    assert!(
        matches!(&e, AuthError::Failed(m) if m.contains("TLS")),
        "{e:?}"
    );
}

#[tokio::test]
async fn closed_port_is_unavailable_quickly() {
    let slapd = Slapd::start();
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ldaps://127.0.0.1:{port}");
    let auth = authenticator(&slapd.ldap_toml_with(&[("url", Some(&toml_str(&url)))]));
    let started = Instant::now();
    let e = login(&auth, ALICE.name, ALICE.password).await.unwrap_err();
    assert!(
        matches!(&e, AuthError::Unavailable(m) if m.contains(&url)),
        "{e:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn silent_server_times_out() {
    let slapd = Slapd::start();
    // Accepts connections (the kernel does) but never answers.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let url = format!(
        "ldaps://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let auth = authenticator(
        &slapd.ldap_toml_with(&[("url", Some(&toml_str(&url))), ("timeout_secs", Some("1"))]),
    );
    let started = Instant::now();
    let e = login(&auth, ALICE.name, ALICE.password).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&e, AuthError::Unavailable(m) if m.contains(&url)),
        "{e:?}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    drop(listener);
}

#[tokio::test]
async fn unsafe_configurations_are_refused() {
    let slapd = Slapd::start();
    let url = toml_str(&slapd.ldap_url());
    let plain = parse(&slapd.ldap_toml_with(&[("url", Some(&url))]));
    let e = plain.validate().unwrap_err();
    assert_eq!(e.key, "url");
    assert!(e.to_string().contains("in clear"), "{e}");
    assert!(matches!(
        LdapAuthenticator::new(plain),
        Err(LdapSetupError::Config(_))
    ));

    let template = toml_str("uid=alice,ou=people,dc=example,dc=org");
    let fixed = parse(&slapd.ldap_toml_with(&[("user_dn_template", Some(&template))]));
    let e = fixed.validate().unwrap_err();
    assert_eq!(e.key, "user_dn_template");
    assert!(e.to_string().contains("{user}"), "{e}");
    assert!(LdapAuthenticator::new(fixed).is_err());

    // Unknown keys are refused by the parser.
    let text = slapd.ldap_toml_with(&[("bind_password", Some("\"x\""))]);
    let table: toml::Table = toml::from_str(&text).unwrap();
    assert!(table["ldap"].clone().try_into::<LdapConfig>().is_err());
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A relay in `dir` whose directory is `slapd` in search mode, providing the second factor;
/// alice has a relay account (directory password, view only), bob has none.
async fn directory_relay(slapd: &Slapd, dir: &std::path::Path) -> (Arc<Relay>, PrivateIdentity) {
    let mut changes = search_mode(slapd);
    changes.push(("provides_second_factor", Some("true".into())));
    let mut config = Config {
        ldap: Some(parse(&with(slapd, &changes))),
        ..Config::default()
    };
    config.login_limit.lockout.after_failures = 3;
    config.login_work.failure_floor_ms = 0;
    let mut db = Database::create(&dir.join("relay.db")).unwrap();
    let alice = NewUser {
        source: Source::Ldap,
        password: None,
        two_factor: false,
        permissions: Some(Permissions::VIEW),
        ..NewUser::operator("alice", "unused", 1_700_000_000)
    };
    users::add(&mut db, alice, &Policy::default().password_policy()).unwrap();
    let ca = PrivateIdentity::generate(&mut OsRng, CA_BITS).unwrap();
    let relay = Relay::new(config, Policy::default(), ca.clone(), db)
        .await
        .unwrap();
    (relay, ca)
}

async fn relay_login(relay: &Relay, from: &str, user: &str, password: &str) -> LoginOutcome {
    static OPERATOR: std::sync::OnceLock<PrivateIdentity> = std::sync::OnceLock::new();
    let operator =
        OPERATOR.get_or_init(|| PrivateIdentity::generate(&mut OsRng, MIN_PEER_BITS).unwrap());
    let (channel_binding, challenge) = ([7u8; 32], [8u8; 32]);
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

fn certified(ca: &PrivateIdentity, outcome: LoginOutcome) -> CertBody {
    match outcome {
        LoginOutcome::Accepted { certificate, .. } => certificate
            .verify(ca.public(), sightline_net::clock::now_unix())
            .unwrap(),
        other => panic!("expected a login, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spelling_of_a_directory_user_is_the_canonical_account() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let (relay, ca) = directory_relay(&slapd, dir.path()).await;
    let here = "198.51.100.7";

    // Bob has no relay account: the certificate carries the canonical name, not the typed one.
    for typed in ["bob", " BOB ", "Bob\t"] {
        let body = certified(&ca, relay_login(&relay, here, typed, BOB.password).await);
        assert_eq!(body.operator, "bob", "{typed:?}\n{}", slapd.log());
    }
    // Alice's relay account narrows her permissions whatever the spelling.
    for typed in ["alice", "alice ", "ALICE"] {
        let body = certified(&ca, relay_login(&relay, here, typed, ALICE.password).await);
        assert_eq!(body.operator, "alice", "{typed:?}");
        assert_eq!(body.permissions, Permissions::VIEW, "{typed:?}");
    }
    // A name that is not one never reaches the directory, and costs the same hashing work as
    // one that does.
    for (i, typed) in ["al ice", "alice)(uid=*", "*", "nobody", "bob"]
        .iter()
        .enumerate()
    {
        let before = relay.hashing.checks();
        let from = format!("198.51.100.{}", 20 + i);
        let outcome = relay_login(&relay, &from, typed, "a wrong password").await;
        assert!(
            matches!(outcome, LoginOutcome::Failed),
            "{typed:?}: {outcome:?}"
        );
        assert_eq!(relay.hashing.checks() - before, 1, "{typed:?}");
    }

    // Failures under three spellings from three new addresses lock the one account: a fourth
    // spelling with the right password is refused.
    for (i, typed) in ["alice ", "Alice", " ALICE"].iter().enumerate() {
        let from = format!("203.0.113.{}", i + 1);
        let outcome = relay_login(&relay, &from, typed, "a wrong password").await;
        assert!(
            matches!(outcome, LoginOutcome::Failed),
            "{typed:?}: {outcome:?}"
        );
    }
    let outcome = relay_login(&relay, "203.0.113.9", "alice\t", ALICE.password).await;
    assert!(
        matches!(outcome, LoginOutcome::RateLimited(_)),
        "{outcome:?}"
    );

    // Disabled: refused under every spelling, from her known address too.
    relay
        .with_db(|db| {
            users::set_disabled(db, "alice", true, 1_700_000_100).map_err(|e| match e {
                users::UserError::Db(d) => d,
                other => panic!("{other}"),
            })
        })
        .await
        .unwrap();
    for typed in ["alice", "alice ", "ALICE"] {
        let outcome = relay_login(&relay, here, typed, ALICE.password).await;
        assert!(
            matches!(outcome, LoginOutcome::Failed),
            "{typed:?}: {outcome:?}"
        );
    }
}
