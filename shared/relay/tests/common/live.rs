//! What the in-process relay tests share: a relay on loopback with the account `alice` under a
//! given policy, a session paired between alice and an agent by the real client, and waiting
//! for a condition. Included by the tests that use it (`#[path = "common/live.rs"] mod live;`).
#![allow(dead_code)]

use rand_core::OsRng;
use sightline_core::identity::{Fingerprint, PrivateIdentity, CA_BITS, MIN_PEER_BITS};
use sightline_core::relay_proto::{ResumeToken, Secret, SessionId};
use sightline_net::stream::{BoxIo, FramedStream};
use sightline_net::{LoginGrant, RelayClient};
use sightline_relay::accounts::password::PasswordPolicy;
use sightline_relay::accounts::users::{self, NewUser};
use sightline_relay::config::Config;
use sightline_relay::context::Relay;
use sightline_relay::net::server;
use sightline_relay::policy::{Policy, TwoFactorMode};
use sightline_relay::store::db::Database;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// alice's password.
pub const PASSWORD: &str = "alice's long password";

/// A relay serving on loopback.
pub struct Running {
    /// Where it listens.
    pub addr: String,
    /// Its state.
    pub relay: Arc<Relay>,
    /// Stops it, when sent to or dropped: keep it while the relay is needed.
    pub stop: oneshot::Sender<()>,
    /// Its serving task.
    pub served: tokio::task::JoinHandle<()>,
}

/// The root key clients pin and operator and agent keys, made off the async threads.
pub async fn keys(peers: usize) -> (PrivateIdentity, Vec<PrivateIdentity>) {
    tokio::task::spawn_blocking(move || {
        let g = |bits| PrivateIdentity::generate(&mut OsRng, bits).unwrap();
        (g(CA_BITS), (0..peers).map(|_| g(MIN_PEER_BITS)).collect())
    })
    .await
    .unwrap()
}

/// Starts a relay on the database in `dir` (alice added without two-factor login if missing)
/// under `policy` (two-factor login made optional), `setup` run on the database first; parked
/// sessions expire after 300 ms.
pub async fn start_with(
    dir: &Path,
    ca: &PrivateIdentity,
    mut policy: Policy,
    setup: impl FnOnce(&mut Database),
) -> Running {
    let mut db = Database::create(&dir.join("relay.db")).unwrap();
    if users::find(&db, "alice").unwrap().is_none() {
        let alice = NewUser {
            two_factor: false,
            ..NewUser::operator("alice", PASSWORD, sightline_net::clock::now_unix())
        };
        users::add(&mut db, alice, &PasswordPolicy::DEFAULT).unwrap();
    }
    setup(&mut db);
    policy.two_factor.mode = TwoFactorMode::Optional;
    let relay = Relay::new(Config::default(), policy, ca.clone(), db)
        .await
        .unwrap();
    relay.tickets.set_window(Duration::from_millis(300));
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let listeners = server::bind(&[loopback]).await.unwrap();
    let addr = listeners[0].local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(server::serve(relay.clone(), listeners, async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        relay,
        stop,
        served,
    }
}

/// [`start_with`] the default policy and nothing else.
pub async fn start(dir: &Path, ca: &PrivateIdentity) -> Running {
    start_with(dir, ca, Policy::default(), |_| {}).await
}

/// Connects to the relay, pinning `pin`.
pub async fn connect(addr: &str, pin: Fingerprint) -> RelayClient {
    Box::pin(RelayClient::connect(addr, pin)).await.unwrap()
}

/// A session paired between alice and an agent.
pub struct PairedUp {
    /// The operator's stream (it now carries the end-to-end session).
    pub operator: FramedStream<BoxIo>,
    /// The agent's stream.
    pub agent: FramedStream<BoxIo>,
    /// The session.
    pub session_id: SessionId,
    /// What alice's login brought back.
    pub grant: LoginGrant,
    /// Each side's resume token: (operator's, agent's).
    pub tokens: (ResumeToken, ResumeToken),
}

/// alice logs in with `key`, creates a session, and an agent joins it (proving `agent_key`
/// when given).
pub async fn pair_as(
    addr: &str,
    pin: Fingerprint,
    key: &PrivateIdentity,
    agent_key: Option<&PrivateIdentity>,
) -> PairedUp {
    let mut c = connect(addr, pin).await;
    let grant = c
        .login("alice", Secret::new(PASSWORD), None, key)
        .await
        .unwrap();
    let created = c.create_session().await.unwrap();
    let waiting = tokio::spawn(c.wait_pairing());
    let agent = connect(addr, pin).await;
    let joined = match agent_key {
        Some(k) => Box::pin(agent.join_as(&created.code, k)).await.unwrap(),
        None => Box::pin(agent.join(&created.code)).await.unwrap(),
    };
    let op = waiting.await.unwrap().unwrap();
    PairedUp {
        operator: op.stream,
        agent: joined.stream,
        session_id: created.session_id,
        grant,
        tokens: (op.resume_token, joined.resume_token),
    }
}

/// Waits (at most 5 s) until `check` holds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..250 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Reads from `stream` until the relay closes it; panics if that takes longer than `within`.
pub async fn closed_within(stream: &mut FramedStream<BoxIo>, within: Duration) {
    let ended = tokio::time::timeout(within, async {
        loop {
            match stream.read_message().await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the connection was not closed within {within:?}"
    );
}
