//! The relay library, real loopback connections, the real client: a paired session whose
//! connection breaks is parked; both sides come back with their resume tokens and are paired
//! again with fresh tokens; a wrong, foreign or old token is refused ("session ended"); a
//! parked session that nobody resumes expires and its tokens die.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::OsRng;
use sightline_core::frame;
use sightline_core::identity::{Fingerprint, PrivateIdentity, CA_BITS, MIN_PEER_BITS};
use sightline_core::relay_proto::{RelayErrorKind, ResumeToken, Secret, SessionId};
use sightline_net::stream::{BoxIo, FramedStream};
use sightline_net::{ClientError, Paired, RelayClient};
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
const T: Duration = Duration::from_secs(10);

async fn start(
    dir: &std::path::Path,
    ca: &PrivateIdentity,
) -> (String, Arc<Relay>, oneshot::Sender<()>) {
    let mut db = Database::create(&dir.join("relay.db")).unwrap();
    let alice = NewUser {
        two_factor: false,
        ..NewUser::operator("alice", PASSWORD, sightline_net::clock::now_unix())
    };
    users::add(&mut db, alice, &PasswordPolicy::DEFAULT).unwrap();
    let mut policy = Policy::default();
    policy.two_factor.mode = TwoFactorMode::Optional;
    let relay = Relay::new(Config::default(), policy, ca.clone(), db)
        .await
        .unwrap();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let listeners = server::bind(&[loopback]).await.unwrap();
    let addr = listeners[0].local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server::serve(relay.clone(), listeners, async move {
        let _ = stopped.await;
    }));
    (addr, relay, stop)
}

async fn connect(addr: &str, pin: Fingerprint) -> RelayClient {
    Box::pin(RelayClient::connect(addr, pin)).await.unwrap()
}

async fn resume(
    addr: &str,
    pin: Fingerprint,
    session: SessionId,
    token: ResumeToken,
) -> Result<Paired, ClientError> {
    Box::pin(connect(addr, pin).await.resume(session, token, T)).await
}

fn session_ended(r: Result<Paired, ClientError>) {
    match r {
        Err(ClientError::Refused { kind, .. }) => assert_eq!(kind, RelayErrorKind::SessionEnded),
        other => panic!("expected 'session ended', got {other:?}"),
    }
}

/// Bytes go both ways between the two streams.
async fn flows(a: &mut FramedStream<BoxIo>, b: &mut FramedStream<BoxIo>, n: u8) {
    a.write_all(&frame::encode(&[n; 40]).unwrap())
        .await
        .unwrap();
    assert_eq!(b.read_message().await.unwrap(), Some(vec![n; 40]));
    b.write_all(&frame::encode(&[n + 1; 50]).unwrap())
        .await
        .unwrap();
    assert_eq!(a.read_message().await.unwrap(), Some(vec![n + 1; 50]));
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..250 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_session_is_parked_resumed_with_fresh_tokens_and_expires() {
    let (ca, operator_key) = tokio::task::spawn_blocking(|| {
        (
            PrivateIdentity::generate(&mut OsRng, CA_BITS).unwrap(),
            PrivateIdentity::generate(&mut OsRng, MIN_PEER_BITS).unwrap(),
        )
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (addr, relay, _stop) = start(dir.path(), &ca).await;
    let pin = ca.public().fingerprint();

    // Paired: each side gets its own token.
    let mut c = connect(&addr, pin).await;
    c.login("alice", Secret::new(PASSWORD), None, &operator_key)
        .await
        .unwrap();
    let created = c.create_session().await.unwrap();
    let waiting = tokio::spawn(c.wait_pairing());
    let joined = Box::pin(connect(&addr, pin).await.join(&created.code))
        .await
        .unwrap();
    let op = waiting.await.unwrap().unwrap();
    let sid = op.session_id;
    let (op_token, agent_token) = (op.resume_token, joined.resume_token);
    assert_ne!(op_token, agent_token);
    let (mut op_stream, mut agent_stream) = (op.stream, joined.stream);
    flows(&mut op_stream, &mut agent_stream, 1).await;
    assert_eq!(relay.tickets.len(), 1);

    // The agent's connection breaks: the relay closes the operator's too.
    drop(agent_stream);
    let end = tokio::time::timeout(T, op_stream.read_message()).await;
    assert!(matches!(end, Ok(Ok(None))), "{end:?}");
    drop(op_stream);
    // Parked, not over: a wrong token, or one for another session, is refused.
    session_ended(resume(&addr, pin, sid, [0; 32]).await);
    session_ended(resume(&addr, pin, [0; 16], agent_token).await);
    assert_eq!(relay.tickets.len(), 1);

    // Both come back (in either order) and are paired again with new tokens.
    let back_addr = addr.clone();
    let agent_back = tokio::spawn(async move { resume(&back_addr, pin, sid, agent_token).await });
    let op = resume(&addr, pin, sid, op_token).await.unwrap();
    let agent = agent_back.await.unwrap().unwrap();
    assert_eq!((op.session_id, agent.session_id), (sid, sid));
    let fresh = [op.resume_token, agent.resume_token];
    assert!(!fresh.contains(&op_token) && !fresh.contains(&agent_token));
    assert_ne!(fresh[0], fresh[1]);
    let (mut op_stream, mut agent_stream) = (op.stream, agent.stream);
    flows(&mut op_stream, &mut agent_stream, 3).await;

    // Each token pairs once: after the next break, the first tokens no longer work.
    relay.tickets.set_window(Duration::from_secs(1));
    drop(op_stream);
    drop(agent_stream);
    session_ended(resume(&addr, pin, sid, agent_token).await);
    session_ended(resume(&addr, pin, sid, op_token).await);

    // Nobody comes back with the new ones in time: the session expires and they die too.
    eventually("the parked session expires", || relay.tickets.is_empty()).await;
    session_ended(resume(&addr, pin, sid, fresh[1]).await);
    session_ended(resume(&addr, pin, sid, fresh[0]).await);
    assert_eq!(
        relay
            .active_sessions
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
