//! The client↔relay channel: `Noise_NX_25519_AESGCM_SHA256` where the relay's static key is
//! vouched for by its issuing key, certified by the root key pinned by fingerprint on the
//! client ([`Authority`]).
//!
//! ```text
//! -> e                         payload: protocol version (clear)
//! <- e, ee, s, es              payload: authority (root key + issuer certificate),
//!                                       issuing key's signature over s and its expiry
//! ```
//! The client checks the root fingerprint against its pin, the issuer certificate (signed by
//! the root, valid now) and the signature over the relay's static key before it sends anything
//! else, so no password or code ever reaches a relay that cannot prove the pinned key.

use crate::authority::Authority;
use crate::channel::{Channel, ChannelConfig};
use crate::codec;
use crate::error::{AuthError, Error, Result};
use crate::frame;
use crate::identity::{Fingerprint, PrivateIdentity};
use crate::noise::{self, RELAY_PATTERN};
use crate::PROTOCOL_VERSION;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

const PROLOGUE: &[u8] = b"sightline relay channel v1";
const STATIC_LABEL: &[u8] = b"sightline relay static key v1";

#[derive(Serialize, Deserialize)]
struct Hello {
    version: u16,
}

/// The relay's proof that its Noise static key belongs to the pinned root's authority.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StaticKeyProof {
    authority: Authority,
    not_after: u64,
    signature: Vec<u8>,
}

fn static_signed_bytes(static_public: &[u8], not_after: u64) -> Vec<u8> {
    let mut m = static_public.to_vec();
    m.extend_from_slice(&not_after.to_be_bytes());
    m
}

/// The relay's Noise static key and the issuing key's signature over it. Made once per relay
/// start (or when the proof nears expiry, or the issuing key changes): one RSA signature, not
/// one per connection.
pub struct RelayCredentials {
    static_private: Zeroizing<Vec<u8>>,
    proof: Vec<u8>,
    not_after: u64,
    issuer: Fingerprint,
}

impl std::fmt::Debug for RelayCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RelayCredentials(not_after={})", self.not_after)
    }
}

impl RelayCredentials {
    /// Generates a static key from `seed` and signs it with `issuing_key` (the issuing key of
    /// `authority`), valid until `not_after`, which is capped at the issuer certificate's end.
    pub fn new(
        issuing_key: &PrivateIdentity,
        authority: &Authority,
        seed: [u8; 32],
        not_after: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self> {
        if issuing_key.public() != authority.issuer() {
            return Err(Error::Local(
                "the channel key must be signed by the authority's issuing key".into(),
            ));
        }
        let not_after = not_after.min(authority.issuer_body().not_after);
        let kp = noise::builder(RELAY_PATTERN, seed)?.generate_keypair()?;
        let signature = issuing_key.sign(
            rng,
            STATIC_LABEL,
            &static_signed_bytes(&kp.public, not_after),
        );
        let proof = codec::encode(&StaticKeyProof {
            authority: authority.clone(),
            not_after,
            signature,
        })?;
        Ok(Self {
            static_private: Zeroizing::new(kp.private),
            proof,
            not_after,
            issuer: authority.issuer().fingerprint(),
        })
    }

    /// When the proof expires (Unix seconds); renew before.
    pub fn not_after(&self) -> u64 {
        self.not_after
    }

    /// Fingerprint of the issuing key that signed the proof.
    pub fn issuer(&self) -> Fingerprint {
        self.issuer
    }
}

/// Relay side: answers a client's first message.
pub fn respond(
    creds: &RelayCredentials,
    first_message: &[u8],
    seed: [u8; 32],
    cfg: ChannelConfig,
) -> Result<(Channel, Vec<u8>)> {
    let mut hs = noise::builder(RELAY_PATTERN, seed)?
        .local_private_key(&creds.static_private)
        .prologue(PROLOGUE)
        .build_responder()?;
    let mut payload = vec![0u8; frame::MAX_NOISE_MESSAGE];
    // -> e
    let n = hs.read_message(first_message, &mut payload)?;
    let hello: Hello = codec::decode(&payload[..n], "relay hello")?;
    if hello.version != PROTOCOL_VERSION {
        return Err(Error::UnsupportedVersion(hello.version));
    }
    // <- e, ee, s, es
    let mut out = vec![0u8; frame::MAX_NOISE_MESSAGE];
    let n = hs.write_message(&creds.proof, &mut out)?;
    let framed = frame::encode(&out[..n])?;
    Ok((Channel::from_handshake(hs, cfg)?, framed))
}

/// Client side, after sending `-> e`.
pub struct ClientHandshake {
    hs: snow::HandshakeState,
    pin: Fingerprint,
    cfg: ChannelConfig,
}

impl std::fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientHandshake(pin={})", self.pin)
    }
}

/// What the client learnt about the relay.
#[derive(Debug, Clone)]
pub struct RelayInfo {
    /// The relay's authority: its root key matches the pin, its issuer certificate was valid
    /// when the channel was made.
    pub authority: Authority,
}

impl ClientHandshake {
    /// Starts the handshake; returns the framed first message.
    pub fn start(pin: Fingerprint, seed: [u8; 32], cfg: ChannelConfig) -> Result<(Self, Vec<u8>)> {
        let mut hs = noise::builder(RELAY_PATTERN, seed)?
            .prologue(PROLOGUE)
            .build_initiator()?;
        let mut out = vec![0u8; 1024];
        // -> e
        let n = hs.write_message(
            &codec::encode(&Hello {
                version: PROTOCOL_VERSION,
            })?,
            &mut out,
        )?;
        Ok((Self { hs, pin, cfg }, frame::encode(&out[..n])?))
    }

    /// Reads the relay's answer and verifies the root pin, the issuer certificate and the
    /// static-key proof at `now`.
    pub fn finish(mut self, message: &[u8], now: u64) -> Result<(Channel, RelayInfo)> {
        let mut payload = vec![0u8; frame::MAX_NOISE_MESSAGE];
        // <- e, ee, s, es
        let n = self.hs.read_message(message, &mut payload)?;
        let proof: StaticKeyProof = codec::decode(&payload[..n], "relay key proof")?;
        let authority = proof.authority;
        authority.verify(&self.pin, now)?;
        let static_public = self
            .hs
            .get_remote_static()
            .ok_or(AuthError::RelayStaticKey)?;
        authority
            .issuer()
            .verify(
                STATIC_LABEL,
                &static_signed_bytes(static_public, proof.not_after),
                &proof.signature,
            )
            .map_err(|_| AuthError::RelayStaticKey)?;
        if now >= proof.not_after {
            return Err(AuthError::RelayStaticKey.into());
        }
        Ok((
            Channel::from_handshake(self.hs, self.cfg)?,
            RelayInfo { authority },
        ))
    }
}
