//! The core's error type: one documented enum, with sub-enums for the two families that a
//! peer can cause (malformed input, failed authentication).
//!
//! Display texts are safe to show a user and to send to a peer as a reason: they name what
//! failed, never key material or cryptographic detail.

use thiserror::Error;

/// Result alias for the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the protocol core.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// The peer sent bytes that do not parse.
    #[error("malformed message: {0}")]
    Malformed(#[from] Malformed),
    /// Authentication of the peer or of its messages failed; the connection must end.
    #[error("authentication failed: {0}")]
    Auth(#[from] AuthError),
    /// The peer speaks a protocol version this build does not.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u16),
    /// A message arrived that is not allowed in the current state.
    #[error("unexpected message: {0}")]
    Unexpected(&'static str),
    /// The byte stream ended in the middle of a frame or a fragmented message.
    #[error("stream truncated")]
    Truncated,
    /// The session was already closed; nothing more can be sent or received.
    #[error("session closed")]
    Closed,
    /// A local key or parameter is unusable (this side's mistake, not the peer's).
    #[error("local configuration: {0}")]
    Local(String),
}

/// Ways in which received bytes fail to parse.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Malformed {
    /// A frame or message is larger than the protocol allows.
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    Oversized {
        /// Size announced or reached.
        size: usize,
        /// The limit that applies.
        limit: usize,
    },
    /// A frame is shorter than any valid Noise message.
    #[error("frame too short")]
    TooShort,
    /// The message body could not be decoded as the expected type.
    #[error("cannot decode {0}")]
    Decode(&'static str),
    /// Bytes were left over after a complete message.
    #[error("trailing bytes after {0}")]
    TrailingBytes(&'static str),
    /// A fragment header carried unknown flags.
    #[error("bad fragment header")]
    BadFragment,
}

/// Ways in which authentication fails. Deliberately coarse: a peer learns which check failed,
/// never why at the cryptographic level.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Decryption of a Noise message failed (tampering, replay, wrong keys, reordering).
    #[error("decryption failed")]
    Decrypt,
    /// The relay's CA key does not match the pinned fingerprint.
    #[error("relay key does not match the pinned fingerprint (expected {expected}, got {actual})")]
    RelayKeyMismatch {
        /// Pinned fingerprint.
        expected: String,
        /// Fingerprint presented by the relay.
        actual: String,
    },
    /// The relay's static Noise key is not signed by its CA, or the signature has expired.
    #[error("relay channel key is not vouched for by the relay CA")]
    RelayStaticKey,
    /// A signature over the handshake transcript did not verify.
    #[error("peer signature over the handshake does not verify")]
    BadSignature,
    /// The certificate was not signed by the trusted CA.
    #[error("certificate not issued by the trusted CA")]
    UntrustedCertificate,
    /// The certificate is outside its validity window.
    #[error("certificate expired")]
    CertificateExpired,
    /// The certificate's validity starts in the future.
    #[error("certificate not yet valid")]
    CertificateNotYetValid,
    /// The operator's nonce and static key do not open the commitment of its first handshake
    /// message: someone changed the handshake after the commitment.
    #[error("the handshake does not match its commitment")]
    CommitmentMismatch,
    /// The certificate names a different key than the one that signed the transcript.
    #[error("certificate does not match the peer's key")]
    CertificateKeyMismatch,
    /// The peer did not present a certificate where one is required.
    #[error("peer presented no certificate")]
    MissingCertificate,
    /// The peer's key is too weak or not an RSA key.
    #[error("peer key rejected: {0}")]
    WeakKey(&'static str),
    /// The peer claimed the wrong role (for example an operator talking to an operator).
    #[error("peer claimed the wrong role")]
    WrongRole,
    /// The operator's key is not in the agent's list of authorised operators.
    #[error("operator key is not authorised on this agent")]
    OperatorNotAuthorised,
    /// The relay's issuing key is not certified by its root key.
    #[error("issuing key not certified by the relay's root key")]
    UntrustedIssuer,
    /// The issuing key's certificate has expired (so has everything it signed).
    #[error("the relay's issuing certificate expired")]
    IssuerExpired,
    /// The issuing key's certificate is not valid yet.
    #[error("the relay's issuing certificate is not valid yet")]
    IssuerNotYetValid,
    /// The operator's certificate is on the revocation list.
    #[error("operator certificate {serial} has been revoked")]
    CertificateRevoked {
        /// Serial of the revoked certificate.
        serial: u64,
    },
    /// A revocation list is not signed by the relay's issuing key, or is inconsistent.
    #[error("revocation list does not verify")]
    UntrustedRevocationList,
}

impl From<snow::Error> for Error {
    fn from(e: snow::Error) -> Self {
        match e {
            snow::Error::Decrypt => Error::Auth(AuthError::Decrypt),
            snow::Error::Input => Error::Malformed(Malformed::Decode("noise message")),
            // Anything else is a local state or parameter error; the text is snow's own and
            // carries no secret.
            other => Error::Local(other.to_string()),
        }
    }
}
