//! Shared fixtures for the core's two-peer tests: deterministic keys, certificates and a
//! handshake runner with hooks to tamper with or replace any message.
#![allow(dead_code, missing_debug_implementations)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sightline_core::authority::Authority;
use sightline_core::cert::{CertBody, OperatorCert, Permissions};
use sightline_core::channel::ChannelConfig;
use sightline_core::e2e::{
    AgentHandshake, E2eConfig, IdentityProof, OperatorHandshake, Progress, Role, Session, Trust,
};
use sightline_core::frame::FrameDecoder;
use sightline_core::identity::{PrivateIdentity, CA_BITS, DEFAULT_IDENTITY_BITS};
use sightline_core::Error;
use std::sync::OnceLock;

/// The virtual "now" of every test, Unix seconds.
pub const NOW: u64 = 1_800_000_000;

pub struct Keys {
    /// The relay's issuing key (certified by `root`): it signs operator certificates.
    pub ca: PrivateIdentity,
    pub other_ca: PrivateIdentity,
    pub operator: PrivateIdentity,
    pub other_operator: PrivateIdentity,
    pub agent: PrivateIdentity,
    /// The relay's root key, the one clients pin.
    pub root: PrivateIdentity,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = ChaCha20Rng::from_seed([42; 32]);
        let mut gen = |bits| PrivateIdentity::generate(&mut rng, bits).unwrap();
        Keys {
            ca: gen(CA_BITS),
            other_ca: gen(DEFAULT_IDENTITY_BITS),
            operator: gen(DEFAULT_IDENTITY_BITS),
            other_operator: gen(DEFAULT_IDENTITY_BITS),
            agent: gen(DEFAULT_IDENTITY_BITS),
            root: gen(CA_BITS),
        }
    })
}

/// `issuer` certified by the root key for 90 days from a day before [`NOW`].
pub fn authority_for(issuer: &PrivateIdentity) -> Authority {
    Authority::certify(
        &keys().root,
        issuer.public(),
        1,
        NOW - 86_400,
        90 * 86_400,
        &mut ChaCha20Rng::from_seed([8; 32]),
    )
    .unwrap()
}

/// The relay's authority: the root key and the certificate of the issuing key `ca`.
pub fn authority() -> Authority {
    static AUTHORITY: OnceLock<Authority> = OnceLock::new();
    AUTHORITY.get_or_init(|| authority_for(&keys().ca)).clone()
}

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
    OperatorCert::issue(ca, &body, &mut ChaCha20Rng::from_seed([9; 32])).unwrap()
}

pub fn good_cert() -> OperatorCert {
    let k = keys();
    cert_for(&k.ca, &k.operator, NOW - 60, NOW + 3600)
}

/// Splits framed bytes into Noise messages.
pub fn unframe(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut d = FrameDecoder::new();
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(m) = d.next_message().unwrap() {
        out.push(m);
    }
    d.finish().unwrap();
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Msg1,
    Msg2,
    Msg3,
    OperatorProof,
    AgentProof,
}

pub type ProofMaker = Box<dyn Fn(&[u8; 32]) -> IdentityProof>;

pub struct Options {
    pub op_session: [u8; 16],
    pub agent_session: [u8; 16],
    pub op_seed: [u8; 32],
    pub agent_seed: [u8; 32],
    pub op_key: &'static PrivateIdentity,
    pub agent_key: &'static PrivateIdentity,
    pub cert: Option<OperatorCert>,
    pub agent_trust: Trust,
    pub now: u64,
    pub channel: ChannelConfig,
    /// Replaces the operator's proof, given the operator's handshake hash.
    pub op_proof: Option<ProofMaker>,
    /// Replaces the agent's proof, given the agent's handshake hash.
    pub agent_proof: Option<ProofMaker>,
    pub tamper: Box<dyn FnMut(Step, &mut Vec<u8>)>,
}

impl Default for Options {
    fn default() -> Self {
        let k = keys();
        Self {
            op_session: [5; 16],
            agent_session: [5; 16],
            op_seed: [1; 32],
            agent_seed: [2; 32],
            op_key: &k.operator,
            agent_key: &k.agent,
            cert: Some(good_cert()),
            agent_trust: Trust::OperatorCertificateFrom(authority()),
            now: NOW,
            channel: ChannelConfig::default(),
            op_proof: None,
            agent_proof: None,
            tamper: Box::new(|_, _| {}),
        }
    }
}

/// Which side rejected the handshake, and why.
#[derive(Debug)]
pub struct Failure {
    pub side: Role,
    pub error: Error,
}

fn fail(side: Role) -> impl Fn(Error) -> Failure {
    move |error| Failure { side, error }
}

/// Everything recorded from one run: the Noise messages as sent (before tampering) and the
/// handshake hashes.
#[derive(Debug, Default, Clone)]
pub struct Transcript {
    pub messages: Vec<(Step, Vec<u8>)>,
    pub op_hash: Option<[u8; 32]>,
    pub agent_hash: Option<[u8; 32]>,
    /// The verification codes each side would show.
    pub op_sas: Option<String>,
    pub agent_sas: Option<String>,
}

fn one(framed: Vec<u8>) -> Vec<u8> {
    let mut v = unframe(&framed);
    assert_eq!(v.len(), 1, "handshake messages are never fragmented");
    v.remove(0)
}

/// Runs operator and agent against each other in memory.
pub fn run(mut o: Options) -> (Result<(Session, Session), Failure>, Transcript) {
    let mut t = Transcript::default();
    let r = run_inner(&mut o, &mut t);
    (r, t)
}

fn run_inner(o: &mut Options, t: &mut Transcript) -> Result<(Session, Session), Failure> {
    let op_cfg = E2eConfig {
        session_id: o.op_session,
        seed: o.op_seed,
        trust: Trust::AnyAgentKey,
        channel: o.channel,
    };
    let ag_cfg = E2eConfig {
        session_id: o.agent_session,
        seed: o.agent_seed,
        trust: o.agent_trust.clone(),
        channel: o.channel,
    };
    let mut pass = |step: Step, framed: Vec<u8>, t: &mut Transcript| {
        let mut m = one(framed);
        t.messages.push((step, m.clone()));
        (o.tamper)(step, &mut m);
        m
    };
    // -> e
    let (op, m1) = OperatorHandshake::start(op_cfg).map_err(fail(Role::Operator))?;
    let m1 = pass(Step::Msg1, m1, t);
    // <- e, ee, s, es
    let ag = AgentHandshake::new(ag_cfg).map_err(fail(Role::Agent))?;
    let (ag, m2) = ag.read_hello(&m1).map_err(fail(Role::Agent))?;
    let m2 = pass(Step::Msg2, m2, t);
    // -> s, se
    let (op_done, m3) = op.read_response(&m2).map_err(fail(Role::Operator))?;
    let m3 = pass(Step::Msg3, m3, t);
    t.op_hash = Some(*op_done.handshake_hash());
    t.op_sas = Some(op_done.sas().to_string());
    let (op_wait, op_proof) = match &o.op_proof {
        Some(make) => op_done.send_identity_proof(&make(&t.op_hash.unwrap_or_default())),
        None => op_done.prove(o.op_key, o.cert.clone()),
    }
    .map_err(fail(Role::Operator))?;
    let op_proof = pass(Step::OperatorProof, op_proof, t);

    let ag_done = ag.read_finish(&m3).map_err(fail(Role::Agent))?;
    t.agent_hash = Some(*ag_done.handshake_hash());
    t.agent_sas = Some(ag_done.sas().to_string());
    let (ag_wait, ag_proof) = match &o.agent_proof {
        Some(make) => ag_done.send_identity_proof(&make(&t.agent_hash.unwrap_or_default())),
        None => ag_done.prove(o.agent_key, None),
    }
    .map_err(fail(Role::Agent))?;
    let ag_proof = pass(Step::AgentProof, ag_proof, t);

    let agent_session = match ag_wait
        .receive(&op_proof, o.now)
        .map_err(fail(Role::Agent))?
    {
        Progress::Established(s) => s,
        Progress::Pending(_) => panic!("identity proof unexpectedly fragmented"),
    };
    let op_session = match op_wait
        .receive(&ag_proof, o.now)
        .map_err(fail(Role::Operator))?
    {
        Progress::Established(s) => s,
        Progress::Pending(_) => panic!("identity proof unexpectedly fragmented"),
    };
    Ok((op_session, agent_session))
}

/// Delivers framed bytes from one session to the other; returns the messages completed.
pub fn deliver(
    bytes: &[u8],
    to: &mut Session,
) -> Result<Vec<sightline_core::messages::Message>, Error> {
    let mut out = Vec::new();
    for m in unframe(bytes) {
        if let Some(msg) = to.receive(&m)? {
            out.push(msg);
        }
    }
    Ok(out)
}
