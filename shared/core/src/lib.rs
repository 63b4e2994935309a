//! Sightline's protocol core, free of sockets, async runtimes, clocks and OS randomness.
//!
//! Bytes, the current time and random seeds go in; bytes, events and typed errors come out.
//! The tokio drivers in `sightline-net` and the relay are thin pumps around these types, and
//! every state machine here is tested with two peers in memory (see `tests/`).
//!
//! Layers, bottom up:
//! - [`frame`]: length-prefixed Noise messages on a byte stream.
//! - [`channel`]: a Noise transport with fragmentation, reassembly, rekeying and typed messages.
//! - [`audit_chain`]: the hash-chained audit log shared by the relay and a LAN kiosk.
//! - [`identity`], [`cert`]: RSA identity keys, fingerprints, operator certificates.
//! - [`authority`], [`revocation`]: the relay's root key, the issuing key it certifies, and
//!   the signed lists of withdrawn certificates.
//! - [`relay_channel`] + [`relay_proto`]: the client↔relay channel (`Noise_NX`, relay key signed
//!   by the issuing key) and the control messages carried in it.
//! - [`login_proof`]: the operator's proof, at login, that it holds the key it wants certified.
//! - [`e2e`] + [`messages`]: the end-to-end viewer↔agent session (`Noise_XX`, then RSA-PSS
//!   signed identities) and its application messages.
//! - [`resume`]: resuming an end-to-end session after its connection broke (`Noise_KKpsk0`
//!   with the original static keys and a psk from the original handshake).
//! - [`code`], [`limiter`], [`join_gate`], [`quota`]: one-time session codes, brute-force
//!   backoff, who may try a code (nested per-prefix limits, a global limit that spares clean
//!   prefixes), and fixed-window quotas on costly successes.
//! - [`release`]: release artefacts checked against the minisign-signed `SHA256SUMS` and the
//!   project's public key pinned in this build.

pub mod audit_chain;
pub mod authority;
pub mod bundle;
pub mod cert;
pub mod channel;
pub mod code;
pub mod codec;
pub mod congestion;
pub mod e2e;
pub mod error;
pub mod frame;
pub mod identity;
pub mod join_gate;
pub mod lan;
pub mod limiter;
pub mod login_proof;
pub mod media_proof;
pub mod messages;
mod noise;
pub mod quota;
pub mod relay_channel;
pub mod relay_proto;
pub mod release;
pub mod resume;
pub mod revocation;
pub mod session_events;
pub mod session_proofs;
pub mod text;

pub use error::{Error, Result};

/// Wire protocol version carried in the first handshake message and bound into every prologue.
pub const PROTOCOL_VERSION: u16 = 3;

/// Default TCP port of the relay (and of a LAN-only agent).
pub const DEFAULT_PORT: u16 = 7615;
