//! Revocation lists: the operator certificates the relay has withdrawn before their end,
//! signed by the issuing key and carrying the issuer certificate, so that a kiosk with no
//! connection to the relay can check a list against the root key it pins.
//!
//! Lists are ordered by a **sequence number** that the relay raises with every revocation:
//! of two lists from one relay, the one with the higher sequence is newer and lists at least
//! as much. A list only names certificates that have not yet expired (an expired certificate
//! is refused anyway), so it stays small.
//!
//! Like an [`Authority`], a [`RevocationList`] in memory has always been checked: its
//! signature, that it names its own issuer and root, that it was signed while the issuer
//! certificate was valid, and that its entries are in canonical order. Only the pin is
//! checked separately ([`RevocationList::check_pin`]).

use crate::authority::Authority;
use crate::cert::NOT_BEFORE_LEEWAY_SECS;
use crate::codec;
use crate::error::{AuthError, Error, Result};
use crate::identity::{Fingerprint, PrivateIdentity};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Domain-separation label of revocation-list signatures.
const LIST_LABEL: &[u8] = b"sightline revocation list v1";
/// Most entries one list may hold (the list must fit in one message of the LAN preamble;
/// certificates live hours, so a relay rarely lists more than a handful).
pub const MAX_ENTRIES: usize = 2000;
/// Largest serialised list accepted, bytes.
pub const MAX_LIST_BYTES: usize = 48 * 1024;

/// One withdrawn certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// The certificate's serial number.
    pub serial: u64,
    /// When the certificate would have expired, Unix seconds.
    pub not_after: u64,
}

/// The signed content of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListBody {
    /// Fingerprint of the root key the issuer chains to.
    pub root: Fingerprint,
    /// Fingerprint of the issuing key that signed the list.
    pub issuer: Fingerprint,
    /// Raised with every revocation on the relay: a higher sequence is a newer list.
    pub sequence: u64,
    /// When the list was signed, Unix seconds.
    pub issued_at: u64,
    /// The withdrawn certificates, by ascending serial, each serial once.
    pub revoked: Vec<Revoked>,
}

/// A signed revocation list with the authority that signed it. (Shared and immutable: a
/// clone is a reference count.)
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ListWire", into = "ListWire")]
pub struct RevocationList(Arc<Checked>);

/// A list's parts, checked together.
#[derive(PartialEq, Eq)]
struct Checked {
    authority: Authority,
    body: ListBody,
    body_bytes: Vec<u8>,
    signature: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct ListWire {
    authority: Authority,
    body: Vec<u8>,
    signature: Vec<u8>,
}

impl TryFrom<ListWire> for RevocationList {
    type Error = Error;
    fn try_from(w: ListWire) -> Result<Self> {
        let refused = || Error::from(AuthError::UntrustedRevocationList);
        w.authority
            .issuer()
            .verify(LIST_LABEL, &w.body, &w.signature)
            .map_err(|_| refused())?;
        let body: ListBody = codec::decode(&w.body, "revocation list body")?;
        if !body.root.ct_eq(&w.authority.root().fingerprint())
            || !body.issuer.ct_eq(&w.authority.issuer().fingerprint())
        {
            return Err(refused());
        }
        let validity = w.authority.issuer_body();
        // Signed while the issuing key was certified (an old list stays a true statement after
        // the issuer expires, but an issuer cannot speak for times it was not certified for).
        if body.issued_at.saturating_add(NOT_BEFORE_LEEWAY_SECS) < validity.not_before
            || body.issued_at >= validity.not_after
        {
            return Err(refused());
        }
        if body.revoked.len() > MAX_ENTRIES || !ascending(&body.revoked) {
            return Err(refused());
        }
        Ok(Self(Arc::new(Checked {
            authority: w.authority,
            body,
            body_bytes: w.body,
            signature: w.signature,
        })))
    }
}

impl From<RevocationList> for ListWire {
    fn from(l: RevocationList) -> Self {
        ListWire {
            authority: l.0.authority.clone(),
            body: l.0.body_bytes.clone(),
            signature: l.0.signature.clone(),
        }
    }
}

fn ascending(entries: &[Revoked]) -> bool {
    entries.windows(2).all(|w| w[0].serial < w[1].serial)
}

impl fmt::Debug for RevocationList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationList")
            .field("sequence", &self.0.body.sequence)
            .field("issued_at", &self.0.body.issued_at)
            .field("entries", &self.0.body.revoked.len())
            .field("authority", &self.0.authority)
            .finish()
    }
}

impl RevocationList {
    /// Signs a list with the issuing key of `authority`. `revoked` may come in any order and
    /// with repeats; at most [`MAX_ENTRIES`] distinct serials.
    pub fn issue(
        issuing_key: &PrivateIdentity,
        authority: &Authority,
        sequence: u64,
        issued_at: u64,
        mut revoked: Vec<Revoked>,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self> {
        if issuing_key.public() != authority.issuer() {
            return Err(Error::Local(
                "the revocation list must be signed by the authority's issuing key".into(),
            ));
        }
        revoked.sort_by_key(|r| r.serial);
        revoked.dedup_by_key(|r| r.serial);
        if revoked.len() > MAX_ENTRIES {
            return Err(Error::Local(format!(
                "a revocation list holds at most {MAX_ENTRIES} certificates"
            )));
        }
        let body = ListBody {
            root: authority.root().fingerprint(),
            issuer: authority.issuer().fingerprint(),
            sequence,
            issued_at,
            revoked,
        };
        let body_bytes = codec::encode(&body)?;
        let signature = issuing_key.sign(rng, LIST_LABEL, &body_bytes);
        // Through the same checks as a received list.
        ListWire {
            authority: authority.clone(),
            body: body_bytes,
            signature,
        }
        .try_into()
    }

    /// Whether the list chains to the pinned root key.
    pub fn check_pin(&self, pin: &Fingerprint) -> Result<()> {
        self.0.authority.check_pin(pin)
    }

    /// The sequence number: higher is newer.
    pub fn sequence(&self) -> u64 {
        self.0.body.sequence
    }

    /// When the list was signed, Unix seconds.
    pub fn issued_at(&self) -> u64 {
        self.0.body.issued_at
    }

    /// The authority that signed it.
    pub fn authority(&self) -> &Authority {
        &self.0.authority
    }

    /// The withdrawn certificates, by ascending serial.
    pub fn entries(&self) -> &[Revoked] {
        &self.0.body.revoked
    }

    /// Whether the certificate with `serial` is withdrawn.
    pub fn is_revoked(&self, serial: u64) -> bool {
        self.0
            .body
            .revoked
            .binary_search_by_key(&serial, |r| r.serial)
            .is_ok()
    }

    /// Fails with [`AuthError::CertificateRevoked`] if `serial` is listed.
    pub fn check(&self, serial: u64) -> Result<()> {
        if self.is_revoked(serial) {
            return Err(AuthError::CertificateRevoked { serial }.into());
        }
        Ok(())
    }

    /// Whether this list is newer than `other` (a higher sequence).
    pub fn is_newer_than(&self, other: Option<&RevocationList>) -> bool {
        other.is_none_or(|o| self.sequence() > o.sequence())
    }

    /// Serialised form, for a file or a message.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        codec::encode(self)
    }

    /// Parses and checks the serialised form (not the pin).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_LIST_BYTES {
            return Err(crate::error::Malformed::Oversized {
                size: bytes.len(),
                limit: MAX_LIST_BYTES,
            }
            .into());
        }
        codec::decode(bytes, "revocation list")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::authority::ISSUER_BITS;
    use crate::identity::CA_BITS;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::sync::OnceLock;

    const NOW: u64 = 1_800_000_000;
    const DAY: u64 = 86_400;

    struct Keys {
        root: PrivateIdentity,
        issuer: PrivateIdentity,
        other: PrivateIdentity,
    }

    fn keys() -> &'static Keys {
        static KEYS: OnceLock<Keys> = OnceLock::new();
        KEYS.get_or_init(|| {
            let mut rng = ChaCha20Rng::from_seed([23; 32]);
            Keys {
                root: PrivateIdentity::generate(&mut rng, CA_BITS).unwrap(),
                issuer: PrivateIdentity::generate(&mut rng, ISSUER_BITS).unwrap(),
                other: PrivateIdentity::generate(&mut rng, ISSUER_BITS).unwrap(),
            }
        })
    }

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::from_seed([5; 32])
    }

    fn authority(issuer: &PrivateIdentity) -> Authority {
        Authority::certify(
            &keys().root,
            issuer.public(),
            1,
            NOW - DAY,
            90 * DAY,
            &mut rng(),
        )
        .unwrap()
    }

    fn entry(serial: u64) -> Revoked {
        Revoked {
            serial,
            not_after: NOW + 3600,
        }
    }

    fn list(sequence: u64, serials: &[u64]) -> RevocationList {
        let k = keys();
        RevocationList::issue(
            &k.issuer,
            &authority(&k.issuer),
            sequence,
            NOW,
            serials.iter().copied().map(entry).collect(),
            &mut rng(),
        )
        .unwrap()
    }

    #[test]
    fn a_list_round_trips_sorted_and_answers_membership() {
        let l = list(3, &[40, 7, 99, 7]);
        let serials: Vec<u64> = l.entries().iter().map(|r| r.serial).collect();
        assert_eq!(serials, vec![7, 40, 99], "sorted, repeats removed");
        let back = RevocationList::from_bytes(&l.to_bytes().unwrap()).unwrap();
        assert_eq!(back, l);
        assert!(back.is_revoked(40) && !back.is_revoked(41));
        assert_eq!(
            back.check(99).unwrap_err(),
            Error::Auth(AuthError::CertificateRevoked { serial: 99 })
        );
        back.check_pin(&keys().root.public().fingerprint()).unwrap();
        assert!(back
            .check_pin(&keys().issuer.public().fingerprint())
            .is_err());
    }

    #[test]
    fn newer_means_a_higher_sequence() {
        let (old, new) = (list(1, &[1]), list(2, &[1, 2]));
        assert!(new.is_newer_than(Some(&old)));
        assert!(!old.is_newer_than(Some(&new)));
        assert!(!new.is_newer_than(Some(&new.clone())));
        assert!(old.is_newer_than(None));
    }

    #[test]
    fn tampering_is_refused() {
        let l = list(4, &[10, 20, 30]);
        let bytes = l.to_bytes().unwrap();
        // Any flipped byte: the signature, the body or the authority fails.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(
                RevocationList::from_bytes(&bad).is_err(),
                "flip at {i} accepted"
            );
        }
        // An entry removed from a genuine body (re-encoded): the signature no longer matches.
        let mut wire = ListWire::from(l.clone());
        let mut body: ListBody = codec::decode(&wire.body, "body").unwrap();
        body.revoked.remove(1);
        wire.body = codec::encode(&body).unwrap();
        let e = RevocationList::from_bytes(&codec::encode(&wire).unwrap()).unwrap_err();
        assert!(matches!(e, Error::Malformed(_) | Error::Auth(_)), "{e}");
    }

    #[test]
    fn signed_by_another_key_or_out_of_order_is_refused() {
        let k = keys();
        // The other key signs a list but presents the genuine authority.
        let genuine = authority(&k.issuer);
        assert!(RevocationList::issue(&k.other, &genuine, 1, NOW, vec![], &mut rng()).is_err());
        let body = ListBody {
            root: k.root.public().fingerprint(),
            issuer: k.issuer.public().fingerprint(),
            sequence: 9,
            issued_at: NOW,
            revoked: vec![],
        };
        let bytes = codec::encode(&body).unwrap();
        let forged = ListWire {
            authority: genuine.clone(),
            signature: k.other.sign(&mut rng(), LIST_LABEL, &bytes),
            body: bytes,
        };
        assert!(RevocationList::try_from(forged).is_err());
        // Entries out of order (or repeated) are not canonical: refused even when signed.
        let unordered = ListBody {
            revoked: vec![entry(5), entry(3)],
            ..body.clone()
        };
        let bytes = codec::encode(&unordered).unwrap();
        let wire = ListWire {
            authority: genuine.clone(),
            signature: k.issuer.sign(&mut rng(), LIST_LABEL, &bytes),
            body: bytes,
        };
        assert!(RevocationList::try_from(wire).is_err());
        // Signed after the issuer certificate ended.
        let late =
            RevocationList::issue(&k.issuer, &genuine, 1, NOW + 90 * DAY, vec![], &mut rng());
        assert!(late.is_err());
    }
}
