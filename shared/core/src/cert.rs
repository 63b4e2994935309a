//! Operator certificates: what the relay's issuing key vouches for after a login, and how an
//! agent checks it offline (issuer, signature, validity window, key binding; the chain from
//! the issuing key to the pinned root is [`crate::authority::Authority`]'s).

use crate::codec;
use crate::error::{AuthError, Result};
use crate::identity::{Fingerprint, PrivateIdentity, PublicIdentity};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Domain-separation label of certificate signatures.
const CERT_LABEL: &[u8] = b"sightline operator certificate v1";
/// Tolerated clock difference for the start of validity (relay and agent clocks differ).
pub const NOT_BEFORE_LEEWAY_SECS: u64 = 60;

/// What an operator may do on a customer's machine. Deny by default: a bit that this build
/// does not know grants nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Permissions(pub u32);

impl Permissions {
    /// See the screen.
    pub const VIEW: Permissions = Permissions(1 << 0);
    /// Send keyboard and mouse input.
    pub const CONTROL: Permissions = Permissions(1 << 1);
    /// Share the clipboard.
    pub const CLIPBOARD: Permissions = Permissions(1 << 2);
    /// Transfer files (reserved).
    pub const FILE_TRANSFER: Permissions = Permissions(1 << 3);

    const NAMES: [(Permissions, &'static str); 4] = [
        (Self::VIEW, "view"),
        (Self::CONTROL, "control"),
        (Self::CLIPBOARD, "clipboard"),
        (Self::FILE_TRANSFER, "file-transfer"),
    ];

    /// No permission at all.
    pub const NONE: Permissions = Permissions(0);

    /// Whether every bit of `other` is granted.
    pub fn allows(self, other: Permissions) -> bool {
        other.0 != 0 && self.0 & other.0 == other.0
    }

    /// Union of two sets.
    pub fn union(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }

    /// Names of the known permissions granted.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(p, _)| self.allows(*p))
            .map(|(_, n)| *n)
            .collect()
    }

    /// Parses one permission name.
    pub fn from_name(name: &str) -> Option<Permissions> {
        Self::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(p, _)| *p)
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permissions({})", self.names().join(","))
    }
}

/// The signed content of an operator certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertBody {
    /// Serial number chosen by the relay.
    pub serial: u64,
    /// Account name (unique on the relay).
    pub operator: String,
    /// Name shown to customers.
    pub display_name: String,
    /// Organisation shown to customers.
    pub organisation: String,
    /// What the operator may do.
    pub permissions: Permissions,
    /// Longest session the agent allows this operator, seconds (0: none beyond the
    /// certificate's own validity).
    pub max_session_secs: u64,
    /// Fingerprint of the operator's identity key.
    pub key: Fingerprint,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity, Unix seconds.
    pub not_after: u64,
    /// Fingerprint of the issuing key that signed it.
    pub issuer: Fingerprint,
    /// Whether and for whom this operator's sessions are recorded: the viewer records by it,
    /// the agent tells the customer, the relay enforces it.
    pub recording: RecordingPolicy,
}

/// Whether sessions are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub enum RecordingMode {
    /// Never.
    #[default]
    Off,
    /// When the operator chooses to.
    Optional,
    /// Always; the relay ends a session whose recording stops.
    Required,
}

impl RecordingMode {
    /// `off`, `optional`, `required`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
}

/// The recording rule a certificate carries.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RecordingPolicy {
    /// Off, optional or required.
    pub mode: RecordingMode,
    /// The auditors' age X25519 recipients (`age1…`); recordings are readable by these only.
    pub recipients: Vec<String>,
    /// Whether the operator's input is recorded too.
    pub include_input: bool,
}

/// A certificate as it travels: the exact body bytes and the issuing key's signature over them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorCert {
    body: Vec<u8>,
    signature: Vec<u8>,
}

impl OperatorCert {
    /// Signs `body` with the issuing key `ca`.
    pub fn issue(
        ca: &PrivateIdentity,
        body: &CertBody,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self> {
        let bytes = codec::encode(body)?;
        let signature = ca.sign(rng, CERT_LABEL, &bytes);
        Ok(Self {
            body: bytes,
            signature,
        })
    }

    /// Checks issuer and signature against `ca` and the validity window against `now`
    /// (Unix seconds); returns the body on success.
    pub fn verify(&self, ca: &PublicIdentity, now: u64) -> Result<CertBody> {
        let body = self.verify_signature(ca)?;
        if now.saturating_add(NOT_BEFORE_LEEWAY_SECS) < body.not_before {
            return Err(AuthError::CertificateNotYetValid.into());
        }
        if now >= body.not_after {
            return Err(AuthError::CertificateExpired.into());
        }
        Ok(body)
    }

    /// Checks issuer and signature only (for showing a stored certificate).
    pub fn verify_signature(&self, ca: &PublicIdentity) -> Result<CertBody> {
        ca.verify(CERT_LABEL, &self.body, &self.signature)
            .map_err(|_| AuthError::UntrustedCertificate)?;
        let body: CertBody = codec::decode(&self.body, "certificate body")?;
        if !body.issuer.ct_eq(&ca.fingerprint()) {
            return Err(AuthError::UntrustedCertificate.into());
        }
        Ok(body)
    }

    /// Reads the body without checking anything: for display of a certificate that is about to
    /// be verified, never for decisions.
    pub fn unverified_body(&self) -> Result<CertBody> {
        codec::decode(&self.body, "certificate body")
    }

    /// Serialised form, for storage.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        codec::encode(self)
    }

    /// Parses the serialised form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        codec::decode(bytes, "certificate")
    }
}
