//! Proof of possession at login: the relay signs a certificate only for a key whose private
//! half signed this login's challenge, bound to the relay channel and the user name. A login
//! whose proof is wrong, missing, made by another key, or over another challenge, channel or
//! name gets no certificate, even with the right password; it is not counted as a failed
//! login (no factor was checked), and on a real connection it ends the connection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::OsRng;
use sightline_core::channel::{Channel, ChannelConfig};
use sightline_core::identity::{Fingerprint, PrivateIdentity, CA_BITS, MIN_PEER_BITS};
use sightline_core::limiter::{BackoffPolicy, Lockout};
use sightline_core::login_proof::{Challenge, LoginTranscript};
use sightline_core::relay_channel::ClientHandshake;
use sightline_core::relay_proto::{ClientMessage, RelayErrorKind, RelayMessage, Secret};
use sightline_net::stream::FramedStream;
use sightline_relay::accounts::login::{self, Attempt, LoginOutcome, Possession};
use sightline_relay::accounts::password::PasswordPolicy;
use sightline_relay::accounts::users::{self, NewUser};
use sightline_relay::config::Config;
use sightline_relay::context::Relay;
use sightline_relay::net::server;
use sightline_relay::policy::{Policy, TwoFactorMode};
use sightline_relay::store::audit;
use sightline_relay::store::db::Database;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

const PASSWORD: &str = "alice's long password";

struct Keys {
    ca: PrivateIdentity,
    alice: PrivateIdentity,
    mallory: PrivateIdentity,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        ca: PrivateIdentity::generate(&mut OsRng, CA_BITS).unwrap(),
        alice: PrivateIdentity::generate(&mut OsRng, MIN_PEER_BITS).unwrap(),
        mallory: PrivateIdentity::generate(&mut OsRng, MIN_PEER_BITS).unwrap(),
    })
}

/// Two free failures per address and per account, a lockout after three: any login counted
/// as failed below would show.
fn strict_config() -> Config {
    let two_free = BackoffPolicy {
        free_failures: 2,
        base_delay_secs: 60,
        max_delay_secs: 600,
        forget_after_secs: 3600,
    };
    let mut config = Config::default();
    config.login_limit.per_address = two_free;
    config.login_limit.per_account = two_free;
    config.login_limit.lockout = Lockout {
        after_failures: 3,
        duration_secs: 600,
    };
    config
}

/// A relay whose database holds alice (password only: the second factor has its own tests).
async fn relay(dir: &std::path::Path) -> Arc<Relay> {
    let mut db = Database::create(&dir.join("relay.db")).unwrap();
    let alice = NewUser {
        two_factor: false,
        ..NewUser::operator("alice", PASSWORD, sightline_net::clock::now_unix())
    };
    users::add(&mut db, alice, &PasswordPolicy::DEFAULT).unwrap();
    let mut policy = Policy::default();
    policy.two_factor.mode = TwoFactorMode::Optional;
    Relay::new(strict_config(), policy, keys().ca.clone(), db)
        .await
        .unwrap()
}

const BINDING: [u8; 32] = [7; 32];
const CHALLENGE: Challenge = [8; 32];

/// `signer` signs a login transcript over `named`'s public key.
fn sign(signer: &PrivateIdentity, named: &PrivateIdentity, t: Transcript) -> Vec<u8> {
    LoginTranscript {
        channel_binding: &t.binding,
        challenge: &t.challenge,
        operator_key: named.public().spki_der(),
        user: t.user,
    }
    .sign(signer, &mut OsRng)
}

/// What a proof covers, apart from the key.
#[derive(Clone, Copy)]
struct Transcript {
    binding: [u8; 32],
    challenge: Challenge,
    user: &'static str,
}

const RIGHT: Transcript = Transcript {
    binding: BINDING,
    challenge: CHALLENGE,
    user: "alice",
};

/// Alice's login with the right password, offering `key` with `possession`.
async fn login(relay: &Relay, key: &PrivateIdentity, possession: Possession) -> LoginOutcome {
    let attempt = Attempt {
        ip: "198.51.100.7".parse().unwrap(),
        user: "alice".into(),
        password: Secret::new(PASSWORD),
        second_factor: None,
        operator_key: key.public().spki_der().to_vec(),
        possession,
    };
    login::attempt(relay, attempt).await.unwrap()
}

fn possession(challenge: Option<Challenge>, proof: Vec<u8>) -> Possession {
    Possession {
        channel_binding: BINDING,
        challenge,
        proof,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_certificate_for_a_key_that_was_not_proven() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path()).await;
    let k = keys();
    let good = sign(&k.alice, &k.alice, RIGHT);
    let mut flipped = good.clone();
    flipped[0] ^= 1;
    let refused: Vec<(&str, Possession)> = vec![
        ("missing", possession(Some(CHALLENGE), Vec::new())),
        ("no challenge asked for", possession(None, good.clone())),
        ("wrong signature", possession(Some(CHALLENGE), flipped)),
        // Mallory names alice's key, but only holds her own.
        (
            "made by another key",
            possession(Some(CHALLENGE), sign(&k.mallory, &k.alice, RIGHT)),
        ),
        (
            "over another challenge",
            possession(
                Some(CHALLENGE),
                sign(
                    &k.alice,
                    &k.alice,
                    Transcript {
                        challenge: [9; 32],
                        ..RIGHT
                    },
                ),
            ),
        ),
        (
            "over another channel",
            possession(
                Some(CHALLENGE),
                sign(
                    &k.alice,
                    &k.alice,
                    Transcript {
                        binding: [9; 32],
                        ..RIGHT
                    },
                ),
            ),
        ),
        (
            "for another user",
            possession(
                Some(CHALLENGE),
                sign(
                    &k.alice,
                    &k.alice,
                    Transcript {
                        user: "bob",
                        ..RIGHT
                    },
                ),
            ),
        ),
    ];
    for (what, p) in refused {
        let outcome = login(&relay, &k.alice, p).await;
        assert!(
            matches!(outcome, LoginOutcome::NotProven(_)),
            "{what}: {outcome:?}"
        );
    }
    // Mallory's own valid proof, sent with alice's key in the login: not alice's key proven.
    let mallorys = sign(&k.mallory, &k.mallory, RIGHT);
    let outcome = login(&relay, &k.alice, possession(Some(CHALLENGE), mallorys)).await;
    assert!(matches!(outcome, LoginOutcome::NotProven(_)), "{outcome:?}");
    // Not a key at all.
    let attempt = Attempt {
        ip: "198.51.100.7".parse().unwrap(),
        user: "alice".into(),
        password: Secret::new(PASSWORD),
        second_factor: None,
        operator_key: vec![1, 2, 3],
        possession: possession(Some(CHALLENGE), good.clone()),
    };
    let outcome = login::attempt(&relay, attempt).await.unwrap();
    assert!(matches!(outcome, LoginOutcome::BadKey(_)), "{outcome:?}");

    // Nine refusals, beyond the two free failures and the lockout after three: none of them
    // counted, none reached the audit trail as a failed login. The proven login succeeds at
    // once, and its certificate is over the proven key.
    let outcome = login(&relay, &k.alice, possession(Some(CHALLENGE), good)).await;
    let LoginOutcome::Accepted { certificate, .. } = outcome else {
        panic!("the proven login was refused: {outcome:?}");
    };
    let body = certificate.unverified_body().unwrap();
    assert_eq!(body.key, k.alice.public().fingerprint());
    let log = relay.with_db(|db| audit::recent(db, 100)).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert!(!actions.contains(&"login.failed"), "{actions:?}");
    assert_eq!(actions.last(), Some(&"login.ok"), "{actions:?}");
}

/// A raw client connection: the channel, without `RelayClient`'s login, so the test chooses
/// what the login carries.
struct Raw {
    stream: FramedStream<TcpStream>,
    channel: Channel,
}

impl Raw {
    async fn connect(addr: &str, pin: Fingerprint) -> Self {
        let mut stream = FramedStream::new(TcpStream::connect(addr).await.unwrap());
        let (hs, first) =
            ClientHandshake::start(pin, sightline_net::clock::seed(), ChannelConfig::default())
                .unwrap();
        stream.write_all(&first).await.unwrap();
        let answer = stream.read_message().await.unwrap().unwrap();
        let (channel, _) = hs
            .finish(&answer, sightline_net::clock::now_unix())
            .unwrap();
        Self { stream, channel }
    }

    async fn send(&mut self, msg: &ClientMessage) {
        let bytes = self.channel.send(msg).unwrap();
        self.stream.write_all(&bytes).await.unwrap();
    }

    /// The next message; `None` once the relay closed the connection.
    async fn receive(&mut self) -> Option<RelayMessage> {
        loop {
            let frame = self.stream.read_message().await.ok()??;
            if let Some(m) = self.channel.receive(&frame, "relay message").unwrap() {
                return Some(m);
            }
        }
    }

    async fn challenge(&mut self) -> Challenge {
        self.send(&ClientMessage::LoginChallenge).await;
        match self.receive().await {
            Some(RelayMessage::LoginChallenge { challenge }) => challenge,
            other => panic!("no challenge: {other:?}"),
        }
    }

    /// A login as alice with `password`, alice's key and `proof`.
    async fn login(&mut self, password: &str, proof: Vec<u8>) -> Option<RelayMessage> {
        self.send(&ClientMessage::Login {
            user: "alice".into(),
            password: Secret::new(password),
            second_factor: None,
            operator_key: keys().alice.public().spki_der().to_vec(),
            proof,
        })
        .await;
        self.receive().await
    }

    /// Alice's proof for this connection and `challenge`.
    fn proof(&self, challenge: Challenge) -> Vec<u8> {
        sign(
            &keys().alice,
            &keys().alice,
            Transcript {
                binding: *self.channel.handshake_hash(),
                challenge,
                user: "alice",
            },
        )
    }
}

fn bad_request(m: Option<RelayMessage>) -> String {
    match m {
        Some(RelayMessage::Error {
            kind: RelayErrorKind::BadRequest,
            message,
            ..
        }) => message,
        other => panic!("expected a refusal: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_connection_must_sign_its_own_challenge() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path()).await;
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let listeners = server::bind(&[loopback]).await.unwrap();
    let addr = listeners[0].local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server::serve(relay.clone(), listeners, async move {
        let _ = stopped.await;
    }));
    let pin = keys().ca.public().fingerprint();

    // No challenge asked for: refused, and the connection ends.
    let mut c = Raw::connect(&addr, pin).await;
    let proof = c.proof([0; 32]);
    let why = bad_request(c.login(PASSWORD, proof).await);
    assert!(why.contains("proof of possession"), "{why}");
    assert!(c.receive().await.is_none(), "the connection stays open");

    // A proof made for another connection (its handshake hash), with this one's challenge.
    let other = Raw::connect(&addr, pin).await;
    let mut c = Raw::connect(&addr, pin).await;
    assert_ne!(other.channel.handshake_hash(), c.channel.handshake_hash());
    let challenge = c.challenge().await;
    let proof = other.proof(challenge);
    bad_request(c.login(PASSWORD, proof).await);
    assert!(c.receive().await.is_none());

    // Each attempt uses its challenge up: after a wrong password (an ordinary failed login),
    // the same proof again is refused and the connection ends.
    let mut c = Raw::connect(&addr, pin).await;
    let challenge = c.challenge().await;
    let proof = c.proof(challenge);
    match c.login("not the password", proof.clone()).await {
        Some(RelayMessage::Error {
            kind: RelayErrorKind::LoginFailed,
            ..
        }) => {}
        other => panic!("expected a failed login: {other:?}"),
    }
    bad_request(c.login(PASSWORD, proof).await);
    assert!(c.receive().await.is_none());

    // Only the latest challenge counts.
    let mut c = Raw::connect(&addr, pin).await;
    let first = c.challenge().await;
    let second = c.challenge().await;
    assert_ne!(first, second, "challenges are fresh");
    let stale = c.proof(first);
    bad_request(c.login(PASSWORD, stale).await);

    // Its own channel, its latest challenge, alice's key: a certificate over that key.
    let mut c = Raw::connect(&addr, pin).await;
    let challenge = c.challenge().await;
    let proof = c.proof(challenge);
    match c.login(PASSWORD, proof).await {
        Some(RelayMessage::LoginOk { certificate, .. }) => assert_eq!(
            certificate.unverified_body().unwrap().key,
            keys().alice.public().fingerprint()
        ),
        other => panic!("the proven login was refused: {other:?}"),
    }
    let _ = stop.send(());
}
