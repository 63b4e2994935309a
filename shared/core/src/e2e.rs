//! The end-to-end session between viewer (operator, Noise initiator) and agent (customer,
//! Noise responder), run through the relay, which sees only ciphertext.
//!
//! ```text
//! prologue: "sightline e2e v1" || version || session id
//! -> e                 payload: version, C = H(label || operator's static key || N_op)
//! <- e, ee, s, es      payload: N_ag                                   (agent)
//! -> s, se             payload: N_op (the agent checks it against C; a mismatch ends it)
//! then each side, as its first transport message:
//!    IdentityProof { role, RSA key, certificate?, RSA-PSS(role label || handshake hash) }
//! ```
//! Each state consumes itself; a [`Session`] that can carry application messages only exists
//! once the peer's proof verified. Noise static keys are fresh per session: identity is RSA.
//! Each end keeps its static key and a secret from the handshake so that the session can be
//! resumed after a broken connection ([`crate::resume`], [`Session::offer_resume`]).
//!
//! **The verification code** ([`sas`]) both people compare is derived from the handshake hash
//! and both nonces, and everything it depends on is fixed by a side before it sees the other
//! side's random contribution: the operator commits to its static key and nonce in the first
//! message (its last message is then fully determined: the static key is encrypted
//! deterministically and the payload is the committed nonce); the agent sends all of its part
//! in the second message, after seeing only the commitment. A relay in the middle runs one
//! handshake with each side; on each, whatever it sends is fixed before the honest side's
//! random values that the code depends on are known to it, so it cannot compute either code
//! before it has committed, let alone search for messages that make the two agree: the codes
//! match by chance, once in 10^8, per session it spoils. (Without the commitment, a relay could
//! try static keys for its last message offline until the codes matched.)
//!
//! **Order of proofs**: the operator proves itself with its last handshake message; the agent
//! verifies that proof before it signs its own ([`Handshaked::verify_peer_first`]), so a peer
//! that fails authentication never obtains a signature from the agent.

use crate::authority::Authority;
use crate::cert::{CertBody, OperatorCert};
use crate::channel::{Channel, ChannelConfig};
use crate::codec;
use crate::error::{AuthError, Error, Result};
use crate::frame;
use crate::identity::{Fingerprint, PrivateIdentity, PublicIdentity, MIN_PEER_BITS};
use crate::messages::{CloseReason, Message};
use crate::noise::{self, E2E_PATTERN};
use crate::relay_proto::SessionId;
use crate::resume::{self, ResumeOffer, ResumeTicket};
use crate::revocation::RevocationList;
use crate::PROTOCOL_VERSION;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

const PROLOGUE_LABEL: &[u8] = b"sightline e2e v1";
const PROOF_LABEL: &[u8] = b"sightline e2e identity v1";
const SAS_LABEL: &[u8] = b"sightline sas v2";
const COMMIT_LABEL: &[u8] = b"sightline e2e commitment v1";

/// Which end of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// The help-desk operator (viewer).
    Operator,
    /// The customer or kiosk (agent).
    Agent,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Role::Operator => b"operator",
            Role::Agent => b"agent",
        }
    }
    fn peer(self) -> Role {
        match self {
            Role::Operator => Role::Agent,
            Role::Agent => Role::Operator,
        }
    }
}

/// Whom this side accepts as its peer.
#[derive(Debug, Clone)]
pub enum Trust {
    /// An agent in attended mode: the operator must present a certificate from this
    /// authority's issuing key (the relay's, checked against the pinned root).
    OperatorCertificateFrom(Authority),
    /// An operator talking to an attended agent: any well-formed agent key that proves the
    /// transcript; the operator sees its fingerprint and the short authentication string.
    AnyAgentKey,
    /// A LAN-only agent (no relay): the operator must have a certificate from `ca` (when
    /// given) and a key in `keys` (when not empty); with both, both. With neither, nobody is
    /// accepted. A certificate on `revoked` is refused.
    AuthorisedOperators {
        /// The relay authority (root matching the kiosk's pin) whose certificates are
        /// accepted, checked offline.
        ca: Option<Authority>,
        /// Fingerprints of the operator keys accepted.
        keys: Vec<Fingerprint>,
        /// The newest verified revocation list the agent knows, if any.
        revoked: Option<RevocationList>,
    },
}

/// Parameters of one end-to-end handshake.
#[derive(Debug, Clone)]
pub struct E2eConfig {
    /// Relay session id (bound into the prologue).
    pub session_id: SessionId,
    /// Fresh randomness for this session (Noise keys and RSA blinding).
    pub seed: [u8; 32],
    /// Whom to accept.
    pub trust: Trust,
    /// Channel limits and rekey points.
    pub channel: ChannelConfig,
}

fn prologue(session_id: &SessionId) -> Vec<u8> {
    let mut p = PROLOGUE_LABEL.to_vec();
    p.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    p.extend_from_slice(session_id);
    p
}

/// This side's Noise static key pair, fresh per session.
struct StaticKey {
    public: Vec<u8>,
    /// Kept for resuming the session ([`crate::resume`]).
    private: Zeroizing<Vec<u8>>,
}

/// A fresh handshake state and this side's Noise static key pair.
fn handshake_state(cfg: &E2eConfig, initiator: bool) -> Result<(snow::HandshakeState, StaticKey)> {
    let builder = noise::builder(E2E_PATTERN, noise::derive_seed(&cfg.seed, b"noise"))?;
    let kp = builder.generate_keypair()?;
    let p = prologue(&cfg.session_id);
    let b = noise::builder(E2E_PATTERN, noise::derive_seed(&cfg.seed, b"noise-hs"))?
        .local_private_key(&kp.private)
        .prologue(&p);
    let hs = if initiator {
        b.build_initiator()?
    } else {
        b.build_responder()?
    };
    Ok((
        hs,
        StaticKey {
            public: kp.public,
            private: Zeroizing::new(kp.private),
        },
    ))
}

/// First message's payload (operator): the version and the commitment to the operator's
/// static key and nonce.
#[derive(Serialize, Deserialize)]
struct Hello {
    version: u16,
    commitment: [u8; 32],
}

/// Second message's payload (agent): its nonce.
#[derive(Serialize, Deserialize)]
struct AgentNonce {
    nonce: [u8; 32],
}

/// Third message's payload (operator): the nonce it committed to.
#[derive(Serialize, Deserialize)]
struct Reveal {
    nonce: [u8; 32],
}

/// What the operator commits to in the first message: its Noise static public key and nonce.
pub fn commitment(static_key: &[u8], nonce: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(COMMIT_LABEL);
    h.update((static_key.len() as u32).to_be_bytes());
    h.update(static_key);
    h.update(nonce);
    h.finalize().into()
}

/// This side's nonce for the verification code, from the session's fresh seed.
fn sas_nonce(cfg: &E2eConfig) -> [u8; 32] {
    noise::derive_seed(&cfg.seed, b"sas nonce")
}

fn write(hs: &mut snow::HandshakeState, payload: &[u8]) -> Result<Vec<u8>> {
    let mut out = vec![0u8; frame::MAX_NOISE_MESSAGE];
    let n = hs.write_message(payload, &mut out)?;
    frame::encode(&out[..n])
}

fn read(hs: &mut snow::HandshakeState, message: &[u8]) -> Result<Vec<u8>> {
    let mut payload = vec![0u8; frame::MAX_NOISE_MESSAGE];
    let n = hs.read_message(message, &mut payload)?;
    payload.truncate(n);
    Ok(payload)
}

/// The nonces of both sides: (operator's, agent's).
type Nonces = ([u8; 32], [u8; 32]);

fn finish(
    mut hs: snow::HandshakeState,
    role: Role,
    cfg: E2eConfig,
    nonces: Nonces,
    local_static: Zeroizing<Vec<u8>>,
) -> Result<Handshaked> {
    let hash: [u8; 32] = hs
        .get_handshake_hash()
        .try_into()
        .map_err(|_| Error::Local("unexpected handshake hash length".into()))?;
    let remote_static = hs
        .get_remote_static()
        .ok_or(Error::Unexpected("no static key from the peer"))?
        .to_vec();
    let (k1, k2) = hs.dangerously_get_raw_split();
    let (k1, k2) = (Zeroizing::new(k1), Zeroizing::new(k2));
    let ticket = ResumeTicket::new(
        cfg.session_id,
        &hash,
        (&k1[..], &k2[..]),
        local_static,
        remote_static,
    )?;
    Ok(Handshaked {
        ticket,
        channel: Channel::from_handshake(hs, cfg.channel)?,
        sas: sas(&hash, &nonces.0, &nonces.1),
        hash,
        role,
        cfg,
    })
}

/// Operator side, before anything is sent.
#[derive(Debug)]
pub struct OperatorHandshake;

impl OperatorHandshake {
    /// `-> e` with the commitment: returns the next state and the framed first message.
    pub fn start(cfg: E2eConfig) -> Result<(OperatorAwaitingResponse, Vec<u8>)> {
        let (mut hs, static_key) = handshake_state(&cfg, true)?;
        let nonce = sas_nonce(&cfg);
        let msg = write(
            &mut hs,
            &codec::encode(&Hello {
                version: PROTOCOL_VERSION,
                commitment: commitment(&static_key.public, &nonce),
            })?,
        )?;
        Ok((
            OperatorAwaitingResponse {
                hs,
                cfg,
                nonce,
                static_private: static_key.private,
            },
            msg,
        ))
    }
}

/// Operator side, waiting for the agent's `<- e, ee, s, es`.
pub struct OperatorAwaitingResponse {
    hs: snow::HandshakeState,
    cfg: E2eConfig,
    /// The nonce committed to in the first message.
    nonce: [u8; 32],
    static_private: Zeroizing<Vec<u8>>,
}

impl OperatorAwaitingResponse {
    /// Reads `<- e, ee, s, es` (with the agent's nonce) and writes `-> s, se` revealing this
    /// side's nonce; returns the framed third message.
    pub fn read_response(mut self, message: &[u8]) -> Result<(Handshaked, Vec<u8>)> {
        let payload = read(&mut self.hs, message)?;
        let agent: AgentNonce = codec::decode(&payload, "agent nonce")?;
        let msg = write(&mut self.hs, &codec::encode(&Reveal { nonce: self.nonce })?)?;
        let nonces = (self.nonce, agent.nonce);
        let done = finish(
            self.hs,
            Role::Operator,
            self.cfg,
            nonces,
            self.static_private,
        )?;
        Ok((done, msg))
    }

    /// Like [`OperatorAwaitingResponse::read_response`], but reveals `nonce` instead of the
    /// committed one. Only a misbehaving peer does this (a relay trying to steer the
    /// verification code); tests use it to check that the agent refuses it.
    #[doc(hidden)]
    pub fn danger_read_response_revealing(
        mut self,
        message: &[u8],
        nonce: [u8; 32],
    ) -> Result<(Handshaked, Vec<u8>)> {
        self.nonce = nonce;
        self.read_response(message)
    }
}

/// Agent side, waiting for the operator's `-> e`.
pub struct AgentHandshake {
    hs: snow::HandshakeState,
    cfg: E2eConfig,
    static_private: Zeroizing<Vec<u8>>,
}

impl AgentHandshake {
    /// Prepares the responder.
    pub fn new(cfg: E2eConfig) -> Result<Self> {
        let (hs, static_key) = handshake_state(&cfg, false)?;
        Ok(Self {
            hs,
            cfg,
            static_private: static_key.private,
        })
    }

    /// Reads `-> e` (with the operator's commitment) and writes `<- e, ee, s, es` with this
    /// side's nonce; returns the framed second message.
    pub fn read_hello(mut self, message: &[u8]) -> Result<(AgentAwaitingFinish, Vec<u8>)> {
        let payload = read(&mut self.hs, message)?;
        let hello: Hello = codec::decode(&payload, "e2e hello")?;
        if hello.version != PROTOCOL_VERSION {
            return Err(Error::UnsupportedVersion(hello.version));
        }
        let nonce = sas_nonce(&self.cfg);
        let msg = write(&mut self.hs, &codec::encode(&AgentNonce { nonce })?)?;
        Ok((
            AgentAwaitingFinish {
                hs: self.hs,
                cfg: self.cfg,
                commitment: hello.commitment,
                nonce,
                static_private: self.static_private,
            },
            msg,
        ))
    }
}

/// Agent side, waiting for `-> s, se`.
pub struct AgentAwaitingFinish {
    hs: snow::HandshakeState,
    cfg: E2eConfig,
    /// The operator's commitment from the first message.
    commitment: [u8; 32],
    /// This side's nonce, sent in the second message.
    nonce: [u8; 32],
    static_private: Zeroizing<Vec<u8>>,
}

impl AgentAwaitingFinish {
    /// Reads `-> s, se` and the operator's nonce, which must open the commitment of the first
    /// message together with the static key just received; the Noise handshake is then
    /// complete. A mismatch is an authentication failure: fail closed.
    pub fn read_finish(mut self, message: &[u8]) -> Result<Handshaked> {
        let payload = read(&mut self.hs, message)?;
        let reveal: Reveal = codec::decode(&payload, "operator nonce")?;
        let static_key = self.hs.get_remote_static().ok_or(Error::Unexpected(
            "no static key in the third handshake message",
        ))?;
        let opened = commitment(static_key, &reveal.nonce);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            &opened[..],
            &self.commitment[..],
        )) {
            return Err(AuthError::CommitmentMismatch.into());
        }
        let nonces = (reveal.nonce, self.nonce);
        finish(self.hs, Role::Agent, self.cfg, nonces, self.static_private)
    }
}

macro_rules! opaque_debug {
    ($($t:ty),*) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(stringify!($t))
            }
        }
    )*};
}
opaque_debug!(
    OperatorAwaitingResponse,
    AgentHandshake,
    AgentAwaitingFinish
);

/// The proof each side sends as its first transport message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityProof {
    /// The role the sender claims.
    pub role: Role,
    /// The sender's RSA public key (SubjectPublicKeyInfo DER).
    pub public_key: Vec<u8>,
    /// The operator's certificate (agents send none).
    pub certificate: Option<OperatorCert>,
    /// RSA-PSS-SHA256 over the role label and the handshake hash.
    pub signature: Vec<u8>,
}

impl IdentityProof {
    /// Signs `hash` for `role` with `key`; `seed` feeds RSA blinding.
    pub fn sign(
        key: &PrivateIdentity,
        role: Role,
        hash: &[u8; 32],
        certificate: Option<OperatorCert>,
        seed: &[u8; 32],
    ) -> Self {
        let mut rng = noise::rng(seed, b"identity proof blinding");
        let signature = key.sign(&mut rng, PROOF_LABEL, &signed_bytes(role, hash));
        Self {
            role,
            public_key: key.public().spki_der().to_vec(),
            certificate,
            signature,
        }
    }
}

fn signed_bytes(role: Role, hash: &[u8; 32]) -> Vec<u8> {
    let mut m = role.label().to_vec();
    m.push(0);
    m.extend_from_slice(hash);
    m
}

/// The Noise handshake is complete; this side has not yet proved its identity.
pub struct Handshaked {
    ticket: ResumeTicket,
    channel: Channel,
    hash: [u8; 32],
    /// The verification code, from the hash and both nonces.
    sas: String,
    role: Role,
    cfg: E2eConfig,
}

opaque_debug!(
    Handshaked,
    AwaitingPeerIdentity,
    VerifyingPeer,
    PeerVerified
);

impl Handshaked {
    /// The Noise handshake hash (identical on both ends unless someone is in the middle).
    pub fn handshake_hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// The verification code this side will show.
    pub fn sas(&self) -> &str {
        &self.sas
    }

    /// Signs the transcript with `key` and sends the proof (with `certificate` for operators).
    pub fn prove(
        self,
        key: &PrivateIdentity,
        certificate: Option<OperatorCert>,
    ) -> Result<(AwaitingPeerIdentity, Vec<u8>)> {
        let proof = IdentityProof::sign(key, self.role, &self.hash, certificate, &self.cfg.seed);
        self.send_identity_proof(&proof)
    }

    /// Sends a proof built elsewhere. A wrong proof only makes the peer refuse this side; tests
    /// use this to play a misbehaving peer.
    pub fn send_identity_proof(
        mut self,
        proof: &IdentityProof,
    ) -> Result<(AwaitingPeerIdentity, Vec<u8>)> {
        let bytes = self.channel.send(proof)?;
        Ok((
            AwaitingPeerIdentity {
                ticket: self.ticket,
                channel: self.channel,
                hash: self.hash,
                sas: self.sas,
                role: self.role,
                cfg: self.cfg,
            },
            bytes,
        ))
    }

    /// The agent's order: verify the peer's proof before signing anything, so that a peer that
    /// fails authentication gets no signature (and, on a kiosk, no session slot).
    pub fn verify_peer_first(self) -> VerifyingPeer {
        VerifyingPeer {
            ticket: self.ticket,
            channel: self.channel,
            hash: self.hash,
            sas: self.sas,
            role: self.role,
            cfg: self.cfg,
        }
    }
}

/// This side has proved itself and waits for the peer's proof. Nothing else is accepted.
pub struct AwaitingPeerIdentity {
    ticket: ResumeTicket,
    channel: Channel,
    hash: [u8; 32],
    sas: String,
    role: Role,
    cfg: E2eConfig,
}

/// Result of feeding one Noise message to [`AwaitingPeerIdentity`].
#[derive(Debug)]
pub enum Progress {
    /// The proof is still incomplete (fragmented).
    Pending(AwaitingPeerIdentity),
    /// The peer is verified; application messages may flow.
    Established(Session),
}

/// The verified identity of the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The peer's role.
    pub role: Role,
    /// Fingerprint of the peer's RSA key.
    pub fingerprint: Fingerprint,
    /// The operator's verified certificate body (when the peer is an operator).
    pub certificate: Option<CertBody>,
    /// The peer's RSA public key (SubjectPublicKeyInfo DER): what its signed session events
    /// verify against, kept in a recording.
    pub public_key: Vec<u8>,
}

impl AwaitingPeerIdentity {
    /// Feeds one Noise message; verifies the proof at `now` (Unix seconds) once complete.
    pub fn receive(mut self, message: &[u8], now: u64) -> Result<Progress> {
        let Some(proof) = self
            .channel
            .receive::<IdentityProof>(message, "identity proof")?
        else {
            return Ok(Progress::Pending(self));
        };
        let peer = verify_proof(&proof, self.role.peer(), &self.hash, &self.cfg.trust, now)?;
        Ok(Progress::Established(Session {
            ticket: self.ticket,
            channel: self.channel,
            sas: self.sas,
            peer,
            role: self.role,
            received_close: None,
            sent_close: false,
        }))
    }
}

/// This side waits for the peer's proof before it proves itself ([`Handshaked::verify_peer_first`]).
pub struct VerifyingPeer {
    ticket: ResumeTicket,
    channel: Channel,
    hash: [u8; 32],
    sas: String,
    role: Role,
    cfg: E2eConfig,
}

/// Result of feeding one Noise message to [`VerifyingPeer`]. (Both states are moved once per
/// handshake: their sizes do not matter.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum PeerCheck {
    /// The proof is still incomplete (fragmented).
    Pending(VerifyingPeer),
    /// The peer is verified; this side has still to prove itself.
    Verified(PeerVerified),
}

impl VerifyingPeer {
    /// Feeds one Noise message; verifies the peer's proof at `now` once complete. Nothing is
    /// signed here.
    pub fn receive(mut self, message: &[u8], now: u64) -> Result<PeerCheck> {
        let Some(proof) = self
            .channel
            .receive::<IdentityProof>(message, "identity proof")?
        else {
            return Ok(PeerCheck::Pending(self));
        };
        let peer = verify_proof(&proof, self.role.peer(), &self.hash, &self.cfg.trust, now)?;
        Ok(PeerCheck::Verified(PeerVerified {
            ticket: self.ticket,
            channel: self.channel,
            hash: self.hash,
            sas: self.sas,
            role: self.role,
            cfg: self.cfg,
            peer,
        }))
    }
}

/// The peer proved itself; this side proves itself next, and the session is then established.
pub struct PeerVerified {
    ticket: ResumeTicket,
    channel: Channel,
    hash: [u8; 32],
    sas: String,
    role: Role,
    cfg: E2eConfig,
    peer: PeerIdentity,
}

impl PeerVerified {
    /// Who the peer is.
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer
    }

    /// Signs the transcript with `key` and sends the proof: the session is established. Returns
    /// the session and the framed proof to send.
    pub fn prove(self, key: &PrivateIdentity) -> Result<(Session, Vec<u8>)> {
        let mut this = self;
        let proof = IdentityProof::sign(key, this.role, &this.hash, None, &this.cfg.seed);
        let bytes = this.channel.send(&proof)?;
        Ok((
            Session {
                ticket: this.ticket,
                channel: this.channel,
                sas: this.sas,
                peer: this.peer,
                role: this.role,
                received_close: None,
                sent_close: false,
            },
            bytes,
        ))
    }
}

fn verify_proof(
    proof: &IdentityProof,
    expected_role: Role,
    hash: &[u8; 32],
    trust: &Trust,
    now: u64,
) -> Result<PeerIdentity> {
    if proof.role != expected_role {
        return Err(AuthError::WrongRole.into());
    }
    let key = PublicIdentity::from_spki_der(&proof.public_key, MIN_PEER_BITS)?;
    key.verify(
        PROOF_LABEL,
        &signed_bytes(proof.role, hash),
        &proof.signature,
    )?;
    let certificate = match (trust, expected_role) {
        (Trust::OperatorCertificateFrom(ca), Role::Operator) => {
            let cert = proof
                .certificate
                .as_ref()
                .ok_or(AuthError::MissingCertificate)?;
            let body = ca.verify_operator(cert, now)?;
            if !body.key.ct_eq(&key.fingerprint()) {
                return Err(AuthError::CertificateKeyMismatch.into());
            }
            Some(body)
        }
        (Trust::AnyAgentKey, Role::Agent) => None,
        (Trust::AuthorisedOperators { ca, keys, revoked }, Role::Operator) => {
            if ca.is_none() && keys.is_empty() {
                return Err(AuthError::OperatorNotAuthorised.into());
            }
            let fingerprint = key.fingerprint();
            if !keys.is_empty() {
                // Every entry is compared, in constant time each.
                let listed = keys
                    .iter()
                    .fold(false, |found, k| found | k.ct_eq(&fingerprint));
                if !listed {
                    return Err(AuthError::OperatorNotAuthorised.into());
                }
            }
            match ca {
                Some(ca) => {
                    let cert = proof
                        .certificate
                        .as_ref()
                        .ok_or(AuthError::MissingCertificate)?;
                    let body = ca.verify_operator(cert, now)?;
                    if !body.key.ct_eq(&fingerprint) {
                        return Err(AuthError::CertificateKeyMismatch.into());
                    }
                    if let Some(list) = revoked {
                        list.check(body.serial)?;
                    }
                    Some(body)
                }
                // Key-only trust: a certificate cannot be checked, so it is ignored.
                None => None,
            }
        }
        _ => return Err(AuthError::WrongRole.into()),
    };
    Ok(PeerIdentity {
        role: proof.role,
        fingerprint: key.fingerprint(),
        certificate,
        public_key: key.spki_der().to_vec(),
    })
}

/// The verification code (short authentication string): eight digits from the handshake hash
/// and both sides' nonces, shown as `1234 5678`. See the module documentation for why a relay
/// in the middle cannot make the two ends' codes agree except by chance.
pub fn sas(hash: &[u8; 32], operator_nonce: &[u8; 32], agent_nonce: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(SAS_LABEL);
    h.update(hash);
    h.update(operator_nonce);
    h.update(agent_nonce);
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    let n = u64::from_be_bytes(first) % 100_000_000;
    format!("{:04} {:04}", n / 10_000, n % 10_000)
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The peer sent an explicit close.
    Closed(CloseReason),
    /// This side sent the close.
    ClosedLocally,
    /// The stream ended without a close message: truncation or a lost connection.
    Abnormal,
}

/// An established, mutually authenticated end-to-end session.
pub struct Session {
    ticket: ResumeTicket,
    channel: Channel,
    peer: PeerIdentity,
    sas: String,
    role: Role,
    received_close: Option<CloseReason>,
    sent_close: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("peer", &self.peer)
            .field("sas", &self.sas)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The verified peer.
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer
    }

    /// The short authentication string (same on both ends).
    pub fn sas(&self) -> &str {
        &self.sas
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Encrypts a message; returns framed bytes for the stream.
    pub fn send(&mut self, message: &Message) -> Result<Vec<u8>> {
        if self.sent_close || self.received_close.is_some() {
            return Err(Error::Closed);
        }
        if let Message::Close { .. } = message {
            self.sent_close = true;
        }
        self.channel.send(message)
    }

    /// Sends an explicit close.
    pub fn close(&mut self, reason: CloseReason) -> Result<Vec<u8>> {
        self.send(&Message::Close { reason })
    }

    /// Decrypts one Noise message; returns a message when one is complete. After a close from
    /// the peer nothing more is accepted.
    pub fn receive(&mut self, noise_message: &[u8]) -> Result<Option<Message>> {
        if self.received_close.is_some() {
            return Err(Error::Unexpected("message after close"));
        }
        let msg = self
            .channel
            .receive::<Message>(noise_message, "session message")?;
        if let Some(Message::Close { reason }) = &msg {
            self.received_close = Some(*reason);
        }
        Ok(msg)
    }

    /// Classifies the end of the stream.
    pub fn ending(&self) -> Ending {
        match (self.received_close, self.sent_close) {
            (Some(r), _) => Ending::Closed(r),
            (None, true) => Ending::ClosedLocally,
            (None, false) => Ending::Abnormal,
        }
    }

    /// Seals arbitrary bytes as one application message, bypassing the typed encoder. Only a
    /// misbehaving peer would do this; tests use it to check how malformed messages are refused.
    #[doc(hidden)]
    pub fn danger_send_raw(&mut self, bytes: &[u8]) -> Result<Vec<u8>> {
        self.channel.seal(bytes)
    }

    /// Rekeys so far (sent, received).
    pub fn rekeys(&self) -> (u64, u64) {
        self.channel.rekeys()
    }

    fn check_resumable(&self, role: Role) -> Result<()> {
        if self.sent_close || self.received_close.is_some() {
            return Err(Error::Closed);
        }
        if self.role != role {
            return Err(Error::Unexpected("resumption from the wrong side"));
        }
        Ok(())
    }

    /// Operator: after the connection broke and the relay paired the two ends again, starts
    /// resuming ([`crate::resume`]): returns the offer in flight and the framed first message.
    /// `seed` is fresh randomness. Each call uses up one resumption count.
    pub fn offer_resume(&mut self, seed: &[u8; 32]) -> Result<(ResumeOffer, Vec<u8>)> {
        self.check_resumable(Role::Operator)?;
        self.ticket.offer(seed)
    }

    /// Operator: reads the agent's answer to `offer`; the session goes on over a fresh
    /// transport (what was in flight on the old one is lost).
    pub fn complete_resume(&mut self, offer: ResumeOffer, message: &[u8]) -> Result<()> {
        self.check_resumable(Role::Operator)?;
        let hs = offer.finish(message)?;
        self.channel = resume::transport(hs, &self.channel)?;
        Ok(())
    }

    /// Agent: reads the operator's resumption offer and answers it; the session goes on over a
    /// fresh transport. Returns the framed answer. A replayed, forged or foreign offer is an
    /// authentication failure: end the session.
    pub fn answer_resume(&mut self, message: &[u8], seed: &[u8; 32]) -> Result<Vec<u8>> {
        self.check_resumable(Role::Agent)?;
        let (hs, answer) = self.ticket.answer(message, seed)?;
        self.channel = resume::transport(hs, &self.channel)?;
        Ok(answer)
    }
}
