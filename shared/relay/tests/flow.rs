//! The relay library serving real loopback connections to the real client
//! (`sightline_net::RelayClient`), in one process: login, session code, join, forwarding,
//! one-time codes, brute-force limits, code expiry. (Tests that start the `relay`, `viewer`
//! and `agent` binaries live in the workspace's `tests` crate.)
//!
//! Generating the RSA keys takes a few seconds, so one test walks through the whole story.
//! Here alice logs in with a password alone (policy `two_factor.mode = "optional"`); the
//! second factor has its own tests in `login.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::OsRng;
use sightline_core::code::SessionCode;
use sightline_core::frame;
use sightline_core::identity::{Fingerprint, PrivateIdentity, CA_BITS, MIN_PEER_BITS};
use sightline_core::limiter::BackoffPolicy;
use sightline_core::relay_proto::{RelayErrorKind, Secret};
use sightline_net::{ClientError, RelayClient};
use sightline_relay::accounts::password::PasswordPolicy;
use sightline_relay::accounts::users::{self, NewUser};
use sightline_relay::config::Config;
use sightline_relay::context::Relay;
use sightline_relay::net::server;
use sightline_relay::policy::{Policy, TwoFactorMode};
use sightline_relay::store::db::Database;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

const PASSWORD: &str = "alice's long password";

struct Running {
    addr: String,
    relay: Arc<Relay>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start(dir: &std::path::Path, ca: &PrivateIdentity, config: Config) -> Running {
    let mut db = Database::create(&dir.join("relay.db")).unwrap();
    if users::find(&db, "alice").unwrap().is_none() {
        let alice = NewUser {
            display_name: Some("Alice Smith"),
            organisation: Some("Example Help Desk"),
            two_factor: false,
            ..NewUser::operator("alice", PASSWORD, sightline_net::clock::now_unix())
        };
        users::add(&mut db, alice, &PasswordPolicy::DEFAULT).unwrap();
    }
    let mut policy = Policy::default();
    policy.two_factor.mode = TwoFactorMode::Optional;
    let relay = Relay::new(config, policy, ca.clone(), db).await.unwrap();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let listeners = server::bind(&[loopback]).await.unwrap();
    let addr = listeners[0].local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server::serve(relay.clone(), listeners, async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        relay,
        stop: Some(stop),
    }
}

fn refused_kind(r: Result<impl std::fmt::Debug, ClientError>) -> (RelayErrorKind, Option<u64>) {
    match r {
        Err(ClientError::Refused {
            kind,
            retry_after_secs,
            ..
        }) => (kind, retry_after_secs),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Connects (boxed: the client's futures are large, and debug builds give every await its
/// own stack slot).
async fn connect(addr: &str, pin: Fingerprint) -> RelayClient {
    Box::pin(RelayClient::connect(addr, pin)).await.unwrap()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..100 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_create_join_forward_and_refuse() {
    let (ca, operator_key) = tokio::task::spawn_blocking(|| {
        (
            PrivateIdentity::generate(&mut OsRng, CA_BITS).unwrap(),
            PrivateIdentity::generate(&mut OsRng, MIN_PEER_BITS).unwrap(),
        )
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = limited_config();
    let relay = start(dir.path(), &ca, config.clone()).await;
    let used = Box::pin(pair_and_forward(&relay, &ca, &operator_key, &config)).await;
    Box::pin(limits_hold_across_restart(
        relay,
        dir.path(),
        &ca,
        &operator_key,
        &config,
        used,
    ))
    .await;
    Box::pin(codes_expire_or_leave_with_the_operator(&ca, &operator_key)).await;
}

/// Defaults, except two free failures per address for codes and per account for logins.
fn limited_config() -> Config {
    let two_free = BackoffPolicy {
        free_failures: 2,
        base_delay_secs: 60,
        max_delay_secs: 600,
        forget_after_secs: 3600,
    };
    let mut config = Config::default();
    config.join_limit.per_address = two_free;
    config.login_limit.per_account = two_free;
    config
}

/// Login, session, join, forwarding, end. Returns the (now used) code.
async fn pair_and_forward(
    relay: &Running,
    ca: &PrivateIdentity,
    operator_key: &PrivateIdentity,
    config: &Config,
) -> SessionCode {
    let pin = ca.public().fingerprint();
    // Wrong password and unknown user get the same answer.
    let mut c = connect(&relay.addr, pin).await;
    let wrong = c
        .login("alice", Secret::new("not the password"), None, operator_key)
        .await;
    let unknown = c
        .login("nobody", Secret::new(PASSWORD), None, operator_key)
        .await;
    assert_eq!(refused_kind(wrong), (RelayErrorKind::LoginFailed, None));
    assert_eq!(refused_kind(unknown), (RelayErrorKind::LoginFailed, None));
    // A session needs a login first. That is this connection's third refused request: the
    // answer comes, then the connection is closed.
    assert_eq!(
        refused_kind(c.create_session().await).0,
        RelayErrorKind::NotLoggedIn
    );
    let after = c.create_session().await;
    assert!(
        matches!(after, Err(ClientError::Closed | ClientError::Stream(_))),
        "{after:?}"
    );

    // The right password (on a new connection) gets a certificate over the operator's key.
    let mut c = connect(&relay.addr, pin).await;
    let grant = c
        .login("alice", Secret::new(PASSWORD), None, operator_key)
        .await
        .unwrap();
    let body = grant
        .authority
        .verify_operator(&grant.certificate, sightline_net::clock::now_unix())
        .unwrap();
    assert_eq!(body, grant.body);
    assert_eq!(body.operator, "alice");
    assert_eq!(body.display_name, "Alice Smith");
    assert_eq!(body.organisation, "Example Help Desk");
    assert_eq!(body.key, operator_key.public().fingerprint());
    assert_eq!(
        body.not_after - body.not_before,
        config.certificate_validity_secs
    );

    let created = c.create_session().await.unwrap();
    assert_eq!(relay.relay.registry.len(), 1);
    let waiting = tokio::spawn(c.wait_paired());

    // The customer joins; both sides learn the same session id.
    let agent = connect(&relay.addr, pin).await;
    let joined = agent.join(&created.code).await.unwrap();
    // The agent learns the authority that issued the operator's certificate.
    assert_eq!(joined.authority, grant.authority);
    let (mut agent_stream, agent_sid) = (joined.stream, joined.session_id);
    let (mut op_stream, op_sid) = waiting.await.unwrap().unwrap();
    assert_eq!(agent_sid, created.session_id);
    assert_eq!(op_sid, created.session_id);
    assert!(relay.relay.registry.is_empty(), "the code dies at pairing");

    // Bytes now pass unread in both directions.
    let to_agent = frame::encode(&[1u8; 40]).unwrap();
    op_stream.write_all(&to_agent).await.unwrap();
    assert_eq!(
        agent_stream.read_message().await.unwrap(),
        Some(vec![1u8; 40])
    );
    let to_op = frame::encode(&[2u8; 5000]).unwrap();
    agent_stream.write_all(&to_op).await.unwrap();
    assert_eq!(
        op_stream.read_message().await.unwrap(),
        Some(vec![2u8; 5000])
    );
    eventually("one active session", || {
        relay
            .relay
            .active_sessions
            .load(std::sync::atomic::Ordering::Relaxed)
            == 1
    })
    .await;

    // The operator leaves; the agent sees the end.
    drop(op_stream);
    let end = tokio::time::timeout(Duration::from_secs(5), agent_stream.read_message()).await;
    assert!(matches!(end, Ok(Ok(None))), "{end:?}");
    eventually("no active session", || {
        relay
            .relay
            .active_sessions
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
    })
    .await;
    created.code
}

async fn limits_hold_across_restart(
    relay: Running,
    dir: &std::path::Path,
    ca: &PrivateIdentity,
    operator_key: &PrivateIdentity,
    config: &Config,
    used: SessionCode,
) {
    let pin = ca.public().fingerprint();
    // The used code is dead (failure 1 for this address), a guess fails (failure 2), and
    // then this address must wait.
    let again = connect(&relay.addr, pin).await;
    assert_eq!(
        refused_kind(again.join(&used).await).0,
        RelayErrorKind::CodeNotValid
    );
    let guess: SessionCode = "000 000 0001".parse().unwrap();
    let again = connect(&relay.addr, pin).await;
    assert_eq!(
        refused_kind(again.join(&guess).await).0,
        RelayErrorKind::CodeNotValid
    );
    let again = connect(&relay.addr, pin).await;
    let (kind, retry) = refused_kind(again.join(&guess).await);
    assert_eq!(kind, RelayErrorKind::RateLimited);
    assert!(matches!(retry, Some(1..=60)), "{retry:?}");

    // Per-account login limit: two free failures, then even the right password waits.
    let mut c = connect(&relay.addr, pin).await;
    for _ in 0..2 {
        let r = c
            .login("ALICE", Secret::new("wrong password!"), None, operator_key)
            .await;
        assert_eq!(refused_kind(r).0, RelayErrorKind::LoginFailed);
    }
    let r = c
        .login("alice", Secret::new(PASSWORD), None, operator_key)
        .await;
    assert_eq!(refused_kind(r).0, RelayErrorKind::RateLimited);

    // A relay restarted on the same database still remembers both counters.
    drop(relay);
    let relay = start(dir, ca, config.clone()).await;
    let again = connect(&relay.addr, pin).await;
    assert_eq!(
        refused_kind(again.join(&guess).await).0,
        RelayErrorKind::RateLimited
    );
    let mut c = connect(&relay.addr, pin).await;
    let r = c
        .login("alice", Secret::new(PASSWORD), None, operator_key)
        .await;
    assert_eq!(refused_kind(r).0, RelayErrorKind::RateLimited);
    drop(relay);
}

async fn codes_expire_or_leave_with_the_operator(
    ca: &PrivateIdentity,
    operator_key: &PrivateIdentity,
) {
    let pin = ca.public().fingerprint();
    // Codes expire; an operator who leaves takes the code with it.
    let dir = tempfile::tempdir().unwrap();
    let relay = start(
        dir.path(),
        ca,
        Config {
            code_ttl_secs: 1,
            ..Config::default()
        },
    )
    .await;
    let mut c = connect(&relay.addr, pin).await;
    c.login("alice", Secret::new(PASSWORD), None, operator_key)
        .await
        .unwrap();
    c.create_session().await.unwrap();
    let expired = tokio::time::timeout(Duration::from_secs(10), c.wait_paired())
        .await
        .unwrap();
    assert_eq!(refused_kind(expired).0, RelayErrorKind::CodeExpired);
    assert!(relay.relay.registry.is_empty());

    let mut c = connect(&relay.addr, pin).await;
    c.login("alice", Secret::new(PASSWORD), None, operator_key)
        .await
        .unwrap();
    c.create_session().await.unwrap();
    assert_eq!(relay.relay.registry.len(), 1);
    drop(c);
    eventually("the departed operator's code is withdrawn", || {
        relay.relay.registry.is_empty()
    })
    .await;
}
