//! The relay's issuing key and revocations, in one process with the real client: every
//! certificate is recorded, revoking one ends its running relayed session within seconds and
//! refuses new sessions with it, the login answer carries the current signed revocation list,
//! and a new issuing key takes over new logins and the channel while a session created under
//! the old one still pairs (the agent is given the authority that issued the operator's
//! certificate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::OsRng;
use sightline_core::identity::{PrivateIdentity, CA_BITS, MIN_PEER_BITS};
use sightline_core::relay_proto::{RelayErrorKind, Secret};
use sightline_net::{clock, ClientError, RelayClient};
use sightline_relay::accounts::password::PasswordPolicy;
use sightline_relay::accounts::users::{self, NewUser};
use sightline_relay::authority::ca::Issuing;
use sightline_relay::authority::certs;
use sightline_relay::config::Config;
use sightline_relay::context::Relay;
use sightline_relay::net::server;
use sightline_relay::policy::{Policy, TwoFactorMode};
use sightline_relay::store::db::Database;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const PASSWORD: &str = "alice's long password";
const DAY: u64 = 86_400;

struct Keys {
    root: PrivateIdentity,
    first: PrivateIdentity,
    second: PrivateIdentity,
    operator: PrivateIdentity,
}

async fn keys() -> Keys {
    tokio::task::spawn_blocking(|| {
        let gen = |bits| PrivateIdentity::generate(&mut OsRng, bits).unwrap();
        Keys {
            root: gen(CA_BITS),
            first: gen(MIN_PEER_BITS),
            second: gen(MIN_PEER_BITS),
            operator: gen(MIN_PEER_BITS),
        }
    })
    .await
    .unwrap()
}

async fn start(
    dir: &std::path::Path,
    issuing: Issuing,
) -> (Arc<Relay>, String, oneshot::Sender<()>) {
    let mut db = Database::create(&dir.join("relay.db")).unwrap();
    let alice = NewUser {
        two_factor: false,
        ..NewUser::operator("alice", PASSWORD, clock::now_unix())
    };
    users::add(&mut db, alice, &PasswordPolicy::DEFAULT).unwrap();
    let mut policy = Policy::default();
    policy.two_factor.mode = TwoFactorMode::Optional;
    let relay = Relay::with_issuing(Config::default(), policy, issuing, db)
        .await
        .unwrap();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let listeners = server::bind(&[loopback]).await.unwrap();
    let addr = listeners[0].local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server::serve(relay.clone(), listeners, async move {
        let _ = stopped.await;
    }));
    (relay, addr, stop)
}

async fn connect(addr: &str, k: &Keys) -> RelayClient {
    Box::pin(RelayClient::connect(addr, k.root.public().fingerprint()))
        .await
        .unwrap()
}

/// Reads from `stream` until it ends (or fails); panics if that takes longer than `within`.
async fn ends_within(
    stream: &mut sightline_net::stream::FramedStream<sightline_net::stream::BoxIo>,
    within: Duration,
) {
    let ended = tokio::time::timeout(within, async {
        loop {
            match stream.read_message().await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the session did not end within {within:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_ends_sessions_and_a_new_issuing_key_takes_over() {
    let k = keys().await;
    let now = clock::now_unix();
    let dir = tempfile::tempdir().unwrap();
    let first = Issuing::certify(&k.root, k.first.clone(), now - 60, 90 * DAY).unwrap();
    let (relay, addr, _stop) = start(dir.path(), first.clone()).await;

    // A login: recorded, signed by the issuing key, with an empty list of sequence 0.
    let mut c = connect(&addr, &k).await;
    assert_eq!(c.authority(), first.authority());
    let grant = c
        .login("alice", Secret::new(PASSWORD), None, &k.operator)
        .await
        .unwrap();
    assert_eq!(grant.authority, *first.authority());
    assert_eq!(grant.body.issuer, k.first.public().fingerprint());
    assert_eq!(grant.revocations.sequence(), 0);
    assert!(grant.revocations.entries().is_empty());
    let serial = grant.body.serial;
    let recorded = relay
        .with_db(|db| certs::list(db, Some("alice"), false, clock::now_unix()))
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].serial, serial);
    assert_eq!(
        recorded[0].issuer,
        k.first.public().fingerprint().to_string()
    );

    // A session pairs and carries bytes.
    let created = c.create_session().await.unwrap();
    let waiting = tokio::spawn(c.wait_paired());
    let joined = connect(&addr, &k).await.join(&created.code).await.unwrap();
    assert_eq!(joined.authority, *first.authority());
    let mut agent = joined.stream;
    let (mut operator, _) = waiting.await.unwrap().unwrap();
    let hello = sightline_core::frame::encode(&[7u8; 32]).unwrap();
    operator.write_all(&hello).await.unwrap();
    assert_eq!(agent.read_message().await.unwrap(), Some(vec![7u8; 32]));
    assert_eq!(relay.active.len(), 1);

    // Revoked in the database (as `relay cert revoke` in another process does): both sides
    // of the running session are cut within seconds.
    let revoked_at = Instant::now();
    relay
        .with_db(move |db| certs::revoke_serial(db, serial, clock::now_unix(), "test"))
        .await
        .unwrap();
    ends_within(&mut agent, Duration::from_secs(5)).await;
    ends_within(&mut operator, Duration::from_secs(5)).await;
    assert!(revoked_at.elapsed() < Duration::from_secs(5));
    // The session's task forgets it right after closing both connections.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !relay.active.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the ended session is still registered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The next login carries the list naming it, sequence 1.
    let mut c = connect(&addr, &k).await;
    let grant2 = c
        .login("alice", Secret::new(PASSWORD), None, &k.operator)
        .await
        .unwrap();
    assert_eq!(grant2.revocations.sequence(), 1);
    assert!(grant2.revocations.is_revoked(serial));
    assert!(!grant2.revocations.is_revoked(grant2.body.serial));

    // A session created under the first issuing key; then a new issuing key is put in force.
    let created = c.create_session().await.unwrap();
    let waiting = tokio::spawn(c.wait_paired());
    let second = Issuing::certify(&k.root, k.second.clone(), clock::now_unix(), 90 * DAY).unwrap();
    relay.issuing.set(second.clone());
    // The new channel and new logins use the new key; the pin is the same root.
    let mut fresh = connect(&addr, &k).await;
    assert_eq!(fresh.authority(), second.authority());
    let grant3 = fresh
        .login("alice", Secret::new(PASSWORD), None, &k.operator)
        .await
        .unwrap();
    assert_eq!(grant3.body.issuer, k.second.public().fingerprint());
    // The list is signed again by the new key within a second or two.
    let deadline = Instant::now() + Duration::from_secs(5);
    while relay.revocations.current().issuer != k.second.public().fingerprint() {
        assert!(Instant::now() < deadline, "the list was not signed again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The session created before the rotation still pairs, with the first authority.
    let joined = connect(&addr, &k).await.join(&created.code).await.unwrap();
    assert_eq!(joined.authority, *first.authority());
    waiting.await.unwrap().unwrap();

    // A connection whose certificate is revoked gets no session.
    let serial3 = grant3.body.serial;
    relay
        .with_db(move |db| certs::revoke_serial(db, serial3, clock::now_unix(), "test"))
        .await
        .unwrap();
    match fresh.create_session().await {
        Err(ClientError::Refused { kind, .. }) => assert_ne!(kind, RelayErrorKind::NotLoggedIn),
        Err(ClientError::Closed) | Err(ClientError::Stream(_)) => {}
        other => panic!("a revoked certificate got a session: {other:?}"),
    }
}
