//! Keys and certificates for the viewer's unit tests: a relay root key and issuing key (with
//! the authority binding them), another root, an operator and an agent key (generated once
//! per test binary), certificates and revocation lists issued the way the relay does, and a
//! tiny LAN-only agent.
#![allow(clippy::expect_used)]

use rand_core::OsRng;
use sightline_core::authority::Authority;
use sightline_core::cert::{CertBody, OperatorCert, Permissions};
use sightline_core::e2e::{E2eConfig, Trust};
use sightline_core::frame;
use sightline_core::identity::{Fingerprint, PrivateIdentity, CA_BITS, MIN_PEER_BITS};
use sightline_core::lan::{AgentHello, OperatorHello};
use sightline_core::messages::{CloseReason, Message};
use sightline_core::revocation::{RevocationList, Revoked};
use sightline_net::clock;
use sightline_net::session::{self, AppChannels};
use sightline_net::stream::FramedStream;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::net::TcpListener;

/// The test keys.
#[derive(Debug)]
pub struct Keys {
    /// The relay's issuing key (certified by `root`): it signs operator certificates.
    pub ca: PrivateIdentity,
    /// The relay's root key, the one pinned.
    pub root: PrivateIdentity,
    /// Another relay's root key.
    pub other_root: PrivateIdentity,
    /// The operator's identity key.
    pub operator: PrivateIdentity,
    /// The agent's identity key.
    pub agent: PrivateIdentity,
}

/// The keys, generated on first use.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let gen = |bits| PrivateIdentity::generate(&mut OsRng, bits).expect("key");
        Keys {
            ca: gen(MIN_PEER_BITS),
            root: gen(CA_BITS),
            other_root: gen(CA_BITS),
            operator: gen(MIN_PEER_BITS),
            agent: gen(MIN_PEER_BITS),
        }
    })
}

/// The fixed "now" of the tests that do not use the clock.
pub const TEST_NOW: u64 = 1_800_000_000;

/// `issuer` certified by `root` from a day before the earlier of the clock and [`TEST_NOW`] to
/// a day after the later one (tests use both).
pub fn authority_for(root: &PrivateIdentity, issuer: &PrivateIdentity) -> Authority {
    let now = clock::now_unix();
    let from = now.min(TEST_NOW) - 86_400;
    let to = now.max(TEST_NOW) + 86_400;
    let validity = (to - from).min(sightline_core::authority::MAX_ISSUER_VALIDITY_SECS);
    Authority::certify(root, issuer.public(), 1, from, validity, &mut OsRng).expect("authority")
}

/// The relay's authority: the root key and the certificate of the issuing key `ca`.
pub fn authority() -> Authority {
    static AUTHORITY: OnceLock<Authority> = OnceLock::new();
    AUTHORITY
        .get_or_init(|| authority_for(&keys().root, &keys().ca))
        .clone()
}

/// A revocation list of the relay with `sequence`, naming `serials`.
pub fn revocations(sequence: u64, serials: &[u64]) -> RevocationList {
    let now = clock::now_unix();
    let entries = serials
        .iter()
        .map(|&serial| Revoked {
            serial,
            not_after: now + 3600,
        })
        .collect();
    RevocationList::issue(&keys().ca, &authority(), sequence, now, entries, &mut OsRng)
        .expect("revocation list")
}

/// A certificate for `key` signed by `ca`, valid from `not_before` to `not_after`.
pub fn cert_for(
    ca: &PrivateIdentity,
    key: &PrivateIdentity,
    not_before: u64,
    not_after: u64,
) -> OperatorCert {
    let body = CertBody {
        serial: 7,
        operator: "alice".into(),
        display_name: "Alice Example".into(),
        organisation: "Example Help Desk".into(),
        permissions: Permissions::VIEW.union(Permissions::CONTROL),
        max_session_secs: 3600,
        key: key.public().fingerprint(),
        not_before,
        not_after,
        issuer: ca.public().fingerprint(),
        recording: Default::default(),
    };
    OperatorCert::issue(ca, &body, &mut OsRng).expect("certificate")
}

/// A certificate for the operator key, valid for an hour around `now`.
pub fn valid_cert(now: u64) -> OperatorCert {
    let k = keys();
    cert_for(&k.ca, &k.operator, now - 60, now + 3600)
}

/// A tiny LAN-only agent: hello, the operator's answer checked against the pinned root, the
/// agent's handshake with `keys` and the authority as trust; when accepted, its hello and a
/// close after a moment. Returns the agent's verification code, or why it refused.
pub async fn lan_agent(listener: TcpListener, allowed: Vec<Fingerprint>) -> Result<String, String> {
    lan_agent_holding(listener, allowed, None)
        .await
        .map(|(sas, _)| sas)
}

/// Like [`lan_agent`], for a kiosk holding the revocation list `held`: it adopts a newer one
/// that the operator offers and refuses a certificate on whichever it then holds. Returns the
/// verification code and the sequence of the list it ends up with.
pub async fn lan_agent_holding(
    listener: TcpListener,
    allowed: Vec<Fingerprint>,
    held: Option<RevocationList>,
) -> Result<(String, Option<u64>), String> {
    let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
    let mut stream = FramedStream::new(tcp);
    let hello = AgentHello::new([3; 16], held.as_ref().map(RevocationList::sequence));
    let framed = frame::encode(&hello.to_bytes().unwrap()).unwrap();
    stream.write_all(&framed).await.map_err(|e| e.to_string())?;
    let answer = stream
        .read_message()
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no answer")?;
    let offered = OperatorHello::from_bytes(&answer).map_err(|e| e.to_string())?;
    let pin = keys().root.public().fingerprint();
    let ca = offered
        .pinned_authority(&pin, clock::now_unix())
        .map_err(|e| e.to_string())?;
    let mut revoked = held;
    if let Some(list) = offered
        .pinned_revocations(&pin)
        .map_err(|e| e.to_string())?
    {
        if list.is_newer_than(revoked.as_ref()) {
            revoked = Some(list);
        }
    }
    let sequence = revoked.as_ref().map(RevocationList::sequence);
    let cfg = E2eConfig {
        session_id: hello.session_id,
        seed: clock::seed(),
        trust: Trust::AuthorisedOperators {
            ca,
            keys: allowed,
            revoked,
        },
        channel: Default::default(),
    };
    // A refusal drops the connection here, as the agent does.
    let mut session = session::agent_handshake(&mut stream, cfg, &keys().agent)
        .await
        .map_err(|e| e.to_string())?;
    let sas = session.sas().to_string();
    let (app, _to_peer, _from_peer) = AppChannels::pair(8);
    let hello = Message::Hello {
        software: "test-agent".into(),
        capabilities: vec![],
    };
    let close = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        CloseReason::EndedByCustomer
    };
    session::run(&mut stream, &mut session, hello, close, app).await;
    Ok((sas, sequence))
}
