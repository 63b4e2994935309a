//! Keys and certificates for the viewer's unit tests: a relay CA, an operator and an agent
//! key (generated once per test binary), certificates issued the way the relay does, and a
//! tiny LAN-only agent.
#![allow(clippy::expect_used)]

use rand_core::OsRng;
use sightline_core::cert::{CertBody, OperatorCert, Permissions};
use sightline_core::e2e::{E2eConfig, Trust};
use sightline_core::frame;
use sightline_core::identity::{Fingerprint, PrivateIdentity, MIN_PEER_BITS};
use sightline_core::lan::{AgentHello, OperatorHello};
use sightline_core::messages::{CloseReason, Message};
use sightline_net::clock;
use sightline_net::session::{self, AppChannels};
use sightline_net::stream::FramedStream;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::net::TcpListener;

/// The test keys.
#[derive(Debug)]
pub struct Keys {
    /// The relay CA.
    pub ca: PrivateIdentity,
    /// The operator's identity key.
    pub operator: PrivateIdentity,
    /// The agent's identity key.
    pub agent: PrivateIdentity,
}

/// The keys, generated on first use.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let gen = || PrivateIdentity::generate(&mut OsRng, MIN_PEER_BITS).expect("key");
        Keys {
            ca: gen(),
            operator: gen(),
            agent: gen(),
        }
    })
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
    };
    OperatorCert::issue(ca, &body, &mut OsRng).expect("certificate")
}

/// A certificate for the operator key, valid for an hour around `now`.
pub fn valid_cert(now: u64) -> OperatorCert {
    let k = keys();
    cert_for(&k.ca, &k.operator, now - 60, now + 3600)
}

/// A tiny LAN-only agent: hello, the operator's answer checked against the pinned CA, the
/// agent's handshake with `keys` and the CA as trust; when accepted, its hello and a close
/// after a moment. Returns the agent's verification code, or why it refused.
pub async fn lan_agent(listener: TcpListener, allowed: Vec<Fingerprint>) -> Result<String, String> {
    let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
    let mut stream = FramedStream::new(tcp);
    let hello = AgentHello::new([3; 16]);
    let framed = frame::encode(&hello.to_bytes().unwrap()).unwrap();
    stream.write_all(&framed).await.map_err(|e| e.to_string())?;
    let answer = stream
        .read_message()
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no answer")?;
    let offered = OperatorHello::from_bytes(&answer).map_err(|e| e.to_string())?;
    let ca = offered
        .pinned_ca(&keys().ca.public().fingerprint())
        .map_err(|e| e.to_string())?;
    let cfg = E2eConfig {
        session_id: hello.session_id,
        seed: clock::seed(),
        trust: Trust::AuthorisedOperators { ca, keys: allowed },
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
    Ok(sas)
}
