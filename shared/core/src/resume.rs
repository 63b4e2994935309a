//! Resuming an end-to-end session after its connection broke (a Wi-Fi switch, a VPN that
//! reconnects): a short handshake that only the two ends of the original session can complete,
//! after which the session goes on with fresh transport keys, the same verified peer and the
//! same verification code.
//!
//! ```text
//! ticket (kept by each end from the original handshake):
//!     both Noise static keys, the session id, and
//!     secret = HKDF-SHA256(salt = handshake hash, ikm = the original handshake's split keys)
//! resumption n (n counts up, never reused):
//!     psk      = HKDF-SHA256(salt = session id, ikm = secret, info = label || n)
//!     prologue = "sightline e2e resume v1" || version || session id || n
//! -> n (clear, 4 bytes), then psk, e, es, ss        (operator, Noise_KKpsk0)
//! <- e, ee, se                                       (agent)
//! ```
//!
//! The ticket is bound to both identity keys: the Noise static keys it uses are the ones the
//! RSA identity proofs signed (through the original handshake hash), and KK authenticates both
//! of them again. It is bound to the session: the psk comes from the original handshake's
//! secret keys, which nobody else ever saw, and the prologue carries the session id and the
//! count. A relay (or anyone else) can neither complete it nor replay an old first message: the
//! agent accepts each count at most once, in increasing order, and a replayed message without
//! the operator's fresh ephemeral key leads nowhere. Any failure is an authentication failure:
//! the caller ends the session (fail closed).
//!
//! Messages lost in flight when the connection broke are gone; the counters of the old
//! transport may have diverged, which is why the transport is replaced rather than continued.

use crate::channel::Channel;
use crate::error::{AuthError, Error, Malformed, Result};
use crate::frame;
use crate::noise::{self, RESUME_PATTERN};
use crate::relay_proto::SessionId;
use crate::PROTOCOL_VERSION;
use hkdf::Hkdf;
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

const PROLOGUE_LABEL: &[u8] = b"sightline e2e resume v1";
const SECRET_LABEL: &[u8] = b"sightline resumption secret v1";
const PSK_LABEL: &[u8] = b"sightline resumption psk v1";
/// Bytes of the clear count in front of the first message.
const COUNT_LEN: usize = 4;

/// What each end keeps from the original handshake to resume the session later. It never
/// leaves the process and is wiped when dropped.
pub(crate) struct ResumeTicket {
    session_id: SessionId,
    local_static: Zeroizing<Vec<u8>>,
    remote_static: Vec<u8>,
    secret: Zeroizing<[u8; 32]>,
    /// Operator: the count of the next offer. Agent: the lowest count it still accepts.
    next: u32,
}

impl fmt::Debug for ResumeTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumeTicket")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl ResumeTicket {
    /// The ticket of a completed original handshake: its split keys (`k1`, `k2`, secret),
    /// handshake hash and both static keys.
    pub(crate) fn new(
        session_id: SessionId,
        hash: &[u8; 32],
        split: (&[u8], &[u8]),
        local_static: Zeroizing<Vec<u8>>,
        remote_static: Vec<u8>,
    ) -> Result<Self> {
        let mut ikm = Zeroizing::new(Vec::with_capacity(split.0.len() + split.1.len()));
        ikm.extend_from_slice(split.0);
        ikm.extend_from_slice(split.1);
        let mut secret = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(hash), &ikm[..])
            .expand(SECRET_LABEL, &mut secret[..])
            .map_err(|_| Error::Local("resumption secret".into()))?;
        Ok(Self {
            session_id,
            local_static,
            remote_static,
            secret,
            next: 0,
        })
    }

    fn psk(&self, count: u32) -> Result<Zeroizing<[u8; 32]>> {
        let mut info = PSK_LABEL.to_vec();
        info.extend_from_slice(&count.to_be_bytes());
        let mut psk = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(&self.session_id), &self.secret[..])
            .expand(&info, &mut psk[..])
            .map_err(|_| Error::Local("resumption psk".into()))?;
        Ok(psk)
    }

    fn prologue(&self, count: u32) -> Vec<u8> {
        let mut p = PROLOGUE_LABEL.to_vec();
        p.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        p.extend_from_slice(&self.session_id);
        p.extend_from_slice(&count.to_be_bytes());
        p
    }

    fn handshake(
        &self,
        count: u32,
        seed: &[u8; 32],
        initiator: bool,
    ) -> Result<snow::HandshakeState> {
        let psk = self.psk(count)?;
        let prologue = self.prologue(count);
        let b = noise::builder(RESUME_PATTERN, noise::derive_seed(seed, b"resume"))?
            .local_private_key(&self.local_static)
            .remote_public_key(&self.remote_static)
            .psk(0, &psk[..])
            .prologue(&prologue);
        Ok(if initiator {
            b.build_initiator()?
        } else {
            b.build_responder()?
        })
    }

    /// Operator: writes the first message of resumption number `self.next` (and counts it as
    /// used, whatever happens to it).
    pub(crate) fn offer(&mut self, seed: &[u8; 32]) -> Result<(ResumeOffer, Vec<u8>)> {
        let count = self.next;
        self.next = count
            .checked_add(1)
            .ok_or(Error::Local("resumption count exhausted".into()))?;
        let mut hs = self.handshake(count, seed, true)?;
        let mut body = count.to_be_bytes().to_vec();
        let mut out = vec![0u8; frame::MAX_NOISE_MESSAGE];
        // -> psk, e, es, ss
        let n = hs.write_message(&[], &mut out)?;
        body.extend_from_slice(&out[..n]);
        Ok((ResumeOffer { hs }, frame::encode(&body)?))
    }

    /// Agent: reads an offer (its count must not have been accepted before) and answers it;
    /// returns the finished handshake (for the new transport) and the framed answer.
    pub(crate) fn answer(
        &mut self,
        message: &[u8],
        seed: &[u8; 32],
    ) -> Result<(snow::HandshakeState, Vec<u8>)> {
        if message.len() < COUNT_LEN {
            return Err(Malformed::TooShort.into());
        }
        let (count, noise_message) = message.split_at(COUNT_LEN);
        let mut be = [0u8; COUNT_LEN];
        be.copy_from_slice(count);
        let count = u32::from_be_bytes(be);
        if count < self.next {
            // Accepted before: a replay.
            return Err(AuthError::Decrypt.into());
        }
        let mut hs = self.handshake(count, seed, false)?;
        let mut payload = vec![0u8; frame::MAX_NOISE_MESSAGE];
        hs.read_message(noise_message, &mut payload)?;
        self.next = count
            .checked_add(1)
            .ok_or(Error::Local("resumption count exhausted".into()))?;
        let mut out = vec![0u8; frame::MAX_NOISE_MESSAGE];
        // <- e, ee, se
        let n = hs.write_message(&[], &mut out)?;
        Ok((hs, frame::encode(&out[..n])?))
    }
}

/// The operator's resumption in flight: its first message is sent, the agent's answer awaited
/// ([`crate::e2e::Session::complete_resume`]).
pub struct ResumeOffer {
    hs: snow::HandshakeState,
}

impl fmt::Debug for ResumeOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResumeOffer")
    }
}

impl ResumeOffer {
    /// Reads the agent's answer; returns the finished handshake.
    pub(crate) fn finish(mut self, message: &[u8]) -> Result<snow::HandshakeState> {
        let mut payload = vec![0u8; frame::MAX_NOISE_MESSAGE];
        self.hs.read_message(message, &mut payload)?;
        Ok(self.hs)
    }
}

/// The new transport after a resumption, with the settings of the old one.
pub(crate) fn transport(hs: snow::HandshakeState, old: &Channel) -> Result<Channel> {
    Channel::from_handshake(hs, old.config())
}
