//! The relay's certificate authority as a client sees it: a long-lived **root key** (the one
//! whose fingerprint viewers and agents pin) certifies a rotatable **issuing key** for a bounded
//! time; the issuing key signs operator certificates, the relay's channel key and revocation
//! lists. The root key can then live offline: the internet-facing relay holds only the issuing
//! key and its certificate.
//!
//! ```text
//! root key (pinned) ──signs──▶ IssuerCert { serial, issuing key, validity, root fingerprint }
//! issuing key       ──signs──▶ operator certificates, relay channel key, revocation lists
//! ```
//!
//! An [`Authority`] is the pair (root public key, issuer certificate). Whatever way one comes
//! into existence (made here, or decoded from the wire), the issuer certificate has been checked
//! against the root key; the pin and the validity at a given time are checked separately
//! ([`Authority::verify`]), because they depend on the caller's pin and clock.

use crate::cert::{CertBody, OperatorCert, NOT_BEFORE_LEEWAY_SECS};
use crate::codec;
use crate::error::{AuthError, Error, Result};
use crate::identity::{Fingerprint, PrivateIdentity, PublicIdentity, CA_BITS, MIN_PEER_BITS};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Domain-separation label of issuer-certificate signatures (distinct from every other
/// signature the root or any key makes).
const ISSUER_LABEL: &[u8] = b"sightline issuing key certificate v1";

/// Default validity of an issuing key's certificate: 90 days.
pub const DEFAULT_ISSUER_VALIDITY_SECS: u64 = 90 * 86_400;
/// Longest validity an issuer certificate may have: a year and a bit.
pub const MAX_ISSUER_VALIDITY_SECS: u64 = 400 * 86_400;
/// Shortest validity an issuer certificate may have: a day.
pub const MIN_ISSUER_VALIDITY_SECS: u64 = 86_400;
/// Size of new issuing keys.
pub const ISSUER_BITS: usize = crate::identity::DEFAULT_IDENTITY_BITS;

/// What the root key vouches for: this issuing key, for this time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerBody {
    /// Serial number chosen by whoever issued it.
    pub serial: u64,
    /// The issuing key (SubjectPublicKeyInfo DER).
    pub key: Vec<u8>,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity, Unix seconds.
    pub not_after: u64,
    /// Fingerprint of the root key that signed it.
    pub root: Fingerprint,
}

/// An issuing key's certificate as it travels: the exact body bytes and the root's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerCert {
    body: Vec<u8>,
    signature: Vec<u8>,
}

impl IssuerCert {
    /// Signs `body` with the root key. Refuses a body that names another root or whose
    /// validity is empty or longer than [`MAX_ISSUER_VALIDITY_SECS`].
    pub fn issue(
        root: &PrivateIdentity,
        body: &IssuerBody,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self> {
        if !body.root.ct_eq(&root.public().fingerprint()) {
            return Err(Error::Local(
                "the issuer certificate names another root key".into(),
            ));
        }
        let span = body.not_after.saturating_sub(body.not_before);
        if span == 0 || span > MAX_ISSUER_VALIDITY_SECS {
            return Err(Error::Local(format!(
                "an issuing key is certified for 1 to {} days",
                MAX_ISSUER_VALIDITY_SECS / 86_400
            )));
        }
        // The key must be one a client will accept.
        PublicIdentity::from_spki_der(&body.key, MIN_PEER_BITS)?;
        let bytes = codec::encode(body)?;
        let signature = root.sign(rng, ISSUER_LABEL, &bytes);
        Ok(Self {
            body: bytes,
            signature,
        })
    }

    /// Checks the root's signature and that the body names that root; returns the body.
    fn verify_signature(&self, root: &PublicIdentity) -> Result<IssuerBody> {
        root.verify(ISSUER_LABEL, &self.body, &self.signature)
            .map_err(|_| AuthError::UntrustedIssuer)?;
        let body: IssuerBody = codec::decode(&self.body, "issuer certificate body")?;
        if !body.root.ct_eq(&root.fingerprint()) {
            return Err(AuthError::UntrustedIssuer.into());
        }
        Ok(body)
    }

    /// Reads the body without checking anything: for display, never for decisions.
    pub fn unverified_body(&self) -> Result<IssuerBody> {
        codec::decode(&self.body, "issuer certificate body")
    }
}

/// What a client trusts from a relay: the root key (matched against the pinned fingerprint)
/// and the certificate of the issuing key that signs on the root's behalf. The root's
/// signature over the issuer certificate is checked whenever one is made or decoded.
/// (Shared and immutable: a clone is a reference count.)
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AuthorityWire", into = "AuthorityWire")]
pub struct Authority(Arc<Checked>);

/// An authority's parts, checked together.
#[derive(PartialEq, Eq)]
struct Checked {
    root: PublicIdentity,
    issuer: PublicIdentity,
    body: IssuerBody,
    cert: IssuerCert,
}

/// The serialised form of an [`Authority`].
#[derive(Serialize, Deserialize)]
struct AuthorityWire {
    root_key: Vec<u8>,
    issuer: IssuerCert,
}

impl TryFrom<AuthorityWire> for Authority {
    type Error = Error;
    fn try_from(w: AuthorityWire) -> Result<Self> {
        Authority::from_parts(&w.root_key, w.issuer)
    }
}

impl From<Authority> for AuthorityWire {
    fn from(a: Authority) -> Self {
        AuthorityWire {
            root_key: a.0.root.spki_der().to_vec(),
            issuer: a.0.cert.clone(),
        }
    }
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("root", &self.0.root.fingerprint())
            .field("issuer", &self.0.issuer.fingerprint())
            .field("serial", &self.0.body.serial)
            .field("not_before", &self.0.body.not_before)
            .field("not_after", &self.0.body.not_after)
            .finish()
    }
}

impl Authority {
    /// Pairs `root` with an issuer certificate it signed; fails if it did not sign it, if the
    /// root is shorter than [`CA_BITS`] or if the issuing key is unusable.
    pub fn new(root: PublicIdentity, cert: IssuerCert) -> Result<Self> {
        if root.bits() < CA_BITS {
            return Err(AuthError::WeakKey("root key too short").into());
        }
        let body = cert.verify_signature(&root)?;
        let issuer = PublicIdentity::from_spki_der(&body.key, MIN_PEER_BITS)?;
        Ok(Self(Arc::new(Checked {
            root,
            issuer,
            body,
            cert,
        })))
    }

    /// Like [`Authority::new`] with the root key as SubjectPublicKeyInfo DER.
    pub fn from_parts(root_der: &[u8], cert: IssuerCert) -> Result<Self> {
        Self::new(PublicIdentity::from_spki_der(root_der, CA_BITS)?, cert)
    }

    /// Certifies `issuer` with `root` from `not_before` for `validity_secs`, and returns the
    /// resulting authority.
    pub fn certify(
        root: &PrivateIdentity,
        issuer: &PublicIdentity,
        serial: u64,
        not_before: u64,
        validity_secs: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self> {
        let body = IssuerBody {
            serial,
            key: issuer.spki_der().to_vec(),
            not_before,
            not_after: not_before.saturating_add(validity_secs),
            root: root.public().fingerprint(),
        };
        Self::new(root.public().clone(), IssuerCert::issue(root, &body, rng)?)
    }

    /// The root key.
    pub fn root(&self) -> &PublicIdentity {
        &self.0.root
    }

    /// The issuing key.
    pub fn issuer(&self) -> &PublicIdentity {
        &self.0.issuer
    }

    /// What the root certified (serial, validity).
    pub fn issuer_body(&self) -> &IssuerBody {
        &self.0.body
    }

    /// The issuer certificate as signed by the root.
    pub fn issuer_cert(&self) -> &IssuerCert {
        &self.0.cert
    }

    /// Whether the root key is the pinned one.
    pub fn check_pin(&self, pin: &Fingerprint) -> Result<()> {
        let actual = self.0.root.fingerprint();
        if !actual.ct_eq(pin) {
            return Err(AuthError::RelayKeyMismatch {
                expected: pin.to_string(),
                actual: actual.to_string(),
            }
            .into());
        }
        Ok(())
    }

    /// Whether the issuer certificate is valid at `now` (Unix seconds), with the same leeway
    /// for its start as operator certificates.
    pub fn check_valid(&self, now: u64) -> Result<()> {
        if now.saturating_add(NOT_BEFORE_LEEWAY_SECS) < self.0.body.not_before {
            return Err(AuthError::IssuerNotYetValid.into());
        }
        if now >= self.0.body.not_after {
            return Err(AuthError::IssuerExpired.into());
        }
        Ok(())
    }

    /// The whole check of an authority received from a relay or a peer: its root is the
    /// pinned key and its issuer certificate is valid at `now`.
    pub fn verify(&self, pin: &Fingerprint, now: u64) -> Result<()> {
        self.check_pin(pin)?;
        self.check_valid(now)
    }

    /// Verifies an operator certificate: the issuer certificate valid at `now`, the operator
    /// certificate signed by the issuing key, naming it as issuer, and valid at `now`. A
    /// certificate signed by the root key itself is refused: the root signs issuing keys only.
    pub fn verify_operator(&self, cert: &OperatorCert, now: u64) -> Result<CertBody> {
        self.check_valid(now)?;
        cert.verify(&self.0.issuer, now)
    }

    /// Checks only the signature chain of an operator certificate (for showing a stored one).
    pub fn verify_operator_signature(&self, cert: &OperatorCert) -> Result<CertBody> {
        cert.verify_signature(&self.0.issuer)
    }

    /// Serialised form, for storage.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        codec::encode(self)
    }

    /// Parses (and checks the root's signature over) the serialised form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        codec::decode(bytes, "relay authority")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::cert::Permissions;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::sync::OnceLock;

    const NOW: u64 = 1_800_000_000;
    const DAY: u64 = 86_400;

    struct Keys {
        root: PrivateIdentity,
        other_root: PrivateIdentity,
        issuer: PrivateIdentity,
        operator: PrivateIdentity,
    }

    fn keys() -> &'static Keys {
        static KEYS: OnceLock<Keys> = OnceLock::new();
        KEYS.get_or_init(|| {
            let mut rng = ChaCha20Rng::from_seed([17; 32]);
            Keys {
                root: PrivateIdentity::generate(&mut rng, CA_BITS).unwrap(),
                other_root: PrivateIdentity::generate(&mut rng, CA_BITS).unwrap(),
                issuer: PrivateIdentity::generate(&mut rng, ISSUER_BITS).unwrap(),
                operator: PrivateIdentity::generate(&mut rng, ISSUER_BITS).unwrap(),
            }
        })
    }

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::from_seed([3; 32])
    }

    fn authority(root: &PrivateIdentity, from: u64, days: u64) -> Authority {
        Authority::certify(
            root,
            keys().issuer.public(),
            11,
            from,
            days * DAY,
            &mut rng(),
        )
        .unwrap()
    }

    fn operator_cert(signer: &PrivateIdentity, issuer: Fingerprint) -> OperatorCert {
        let body = CertBody {
            serial: 5,
            operator: "alice".into(),
            display_name: "Alice".into(),
            organisation: "Help Desk".into(),
            permissions: Permissions::VIEW,
            max_session_secs: 0,
            key: keys().operator.public().fingerprint(),
            not_before: NOW - 60,
            not_after: NOW + 3600,
            issuer,
            recording: Default::default(),
        };
        OperatorCert::issue(signer, &body, &mut rng()).unwrap()
    }

    #[test]
    fn the_chain_verifies_root_issuer_operator() {
        let k = keys();
        let a = authority(&k.root, NOW - DAY, 90);
        let pin = k.root.public().fingerprint();
        a.verify(&pin, NOW).unwrap();
        // It survives the wire, and the decoded copy is the same.
        let b = Authority::from_bytes(&a.to_bytes().unwrap()).unwrap();
        assert_eq!(a, b);
        let cert = operator_cert(&k.issuer, k.issuer.public().fingerprint());
        let body = b.verify_operator(&cert, NOW).unwrap();
        assert_eq!(body.operator, "alice");
        assert_eq!(b.issuer_body().not_after, NOW + 89 * DAY);
    }

    #[test]
    fn a_wrong_root_or_an_issuer_for_another_root_is_refused() {
        let k = keys();
        let a = authority(&k.root, NOW - DAY, 90);
        // Pinned to another root.
        let err = a
            .verify(&k.other_root.public().fingerprint(), NOW)
            .unwrap_err();
        assert!(
            matches!(err, Error::Auth(AuthError::RelayKeyMismatch { .. })),
            "{err}"
        );
        // An issuer certificate signed by another root, presented with the pinned root's key.
        let foreign = authority(&k.other_root, NOW - DAY, 90);
        let err = Authority::new(k.root.public().clone(), foreign.issuer_cert().clone());
        assert_eq!(err.unwrap_err(), Error::Auth(AuthError::UntrustedIssuer));
        // Signed by the pinned root, but naming another root in its body: refused at issue,
        // and a forged one is refused when paired with either root.
        let body = IssuerBody {
            serial: 1,
            key: k.issuer.public().spki_der().to_vec(),
            not_before: NOW,
            not_after: NOW + DAY,
            root: k.other_root.public().fingerprint(),
        };
        assert!(IssuerCert::issue(&k.root, &body, &mut rng()).is_err());
        let bytes = codec::encode(&body).unwrap();
        let forged = IssuerCert {
            signature: k.root.sign(&mut rng(), ISSUER_LABEL, &bytes),
            body: bytes,
        };
        for root in [&k.root, &k.other_root] {
            assert!(Authority::new(root.public().clone(), forged.clone()).is_err());
        }
        // The wire form with the root swapped does not decode.
        let mut wire = AuthorityWire::from(a.clone());
        wire.root_key = k.other_root.public().spki_der().to_vec();
        assert!(Authority::from_bytes(&codec::encode(&wire).unwrap()).is_err());
    }

    #[test]
    fn an_expired_or_future_issuer_is_refused_and_so_are_its_certificates() {
        let k = keys();
        let pin = k.root.public().fingerprint();
        let old = authority(&k.root, NOW - 91 * DAY, 90);
        assert_eq!(
            old.verify(&pin, NOW).unwrap_err(),
            Error::Auth(AuthError::IssuerExpired)
        );
        let cert = operator_cert(&k.issuer, k.issuer.public().fingerprint());
        assert_eq!(
            old.verify_operator(&cert, NOW).unwrap_err(),
            Error::Auth(AuthError::IssuerExpired)
        );
        let future = authority(&k.root, NOW + DAY, 90);
        assert_eq!(
            future.verify(&pin, NOW).unwrap_err(),
            Error::Auth(AuthError::IssuerNotYetValid)
        );
        // Exactly at its end it is expired; a minute early at its start is tolerated.
        let ends = authority(&k.root, NOW - 90 * DAY, 90);
        assert!(ends.check_valid(NOW).is_err());
        assert!(authority(&k.root, NOW + 30, 90).check_valid(NOW).is_ok());
    }

    #[test]
    fn operator_certificates_must_come_from_the_issuing_key() {
        let k = keys();
        let a = authority(&k.root, NOW - DAY, 90);
        // Signed by the root directly (naming the root as issuer): refused.
        let by_root = operator_cert(&k.root, k.root.public().fingerprint());
        assert_eq!(
            a.verify_operator(&by_root, NOW).unwrap_err(),
            Error::Auth(AuthError::UntrustedCertificate)
        );
        // Signed by the issuing key but naming another issuer: refused.
        let mismatch = operator_cert(&k.issuer, k.root.public().fingerprint());
        assert_eq!(
            a.verify_operator(&mismatch, NOW).unwrap_err(),
            Error::Auth(AuthError::UntrustedCertificate)
        );
        // Naming the issuer but signed by another key: refused.
        let forged = operator_cert(&k.operator, k.issuer.public().fingerprint());
        assert!(a.verify_operator(&forged, NOW).is_err());
        assert!(a.verify_operator_signature(&forged).is_err());
    }

    #[test]
    fn validity_is_bounded_when_issuing() {
        let k = keys();
        let too_long = Authority::certify(
            &k.root,
            k.issuer.public(),
            1,
            NOW,
            MAX_ISSUER_VALIDITY_SECS + 1,
            &mut rng(),
        );
        assert!(too_long.is_err());
        let empty = Authority::certify(&k.root, k.issuer.public(), 1, NOW, 0, &mut rng());
        assert!(empty.is_err());
    }

    #[test]
    fn a_tampered_authority_never_decodes() {
        let k = keys();
        let bytes = authority(&k.root, NOW - DAY, 90).to_bytes().unwrap();
        for i in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(Authority::from_bytes(&bad).is_err(), "flip at {i} accepted");
        }
    }
}
