//! Minisign public keys: the project's, pinned at compile time, or one the user gives (the
//! `.pub` file or its bare base64 line); and the signature check over `SHA256SUMS`.

use super::sums::SignedSums;
use super::ReleaseError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::fmt;

/// The project's release public key, as `minisign -G` wrote it (`sightline.pub`).
pub const PROJECT_KEY_TEXT: &str = include_str!("../../../../sightline.pub");

/// Bytes of a decoded public key: algorithm (2), key ID (8), Ed25519 key (32).
const PUBLIC_KEY_LEN: usize = 42;
/// Bytes of a decoded signature line: algorithm (2), key ID (8), Ed25519 signature (64).
const SIGNATURE_LEN: usize = 74;
/// minisign's algorithm tags: plain Ed25519 (legacy signatures), and over BLAKE2b-512.
const ALG_LEGACY: &[u8; 2] = b"Ed";
const ALG_PREHASHED: &[u8; 2] = b"ED";

/// A minisign key ID: the 8 bytes minisign prints as upper-case hex digits of the
/// little-endian number, without leading zeros (as minisign does), as in
/// `untrusted comment: minisign public key 9BB9060A6BDDCEA2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyId(pub(super) [u8; 8]);

impl KeyId {
    /// The ID in decoded key or signature bytes (after the 2-byte algorithm tag).
    fn from_decoded(bytes: &[u8]) -> Option<Self> {
        bytes.get(2..10)?.try_into().ok().map(KeyId)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}", u64::from_le_bytes(self.0))
    }
}

/// A public key that release signatures are checked against.
#[derive(Debug, Clone)]
pub struct ReleaseKey {
    key: minisign_verify::PublicKey,
    id: KeyId,
    pinned: bool,
}

impl ReleaseKey {
    /// The project's key, pinned in this build.
    pub fn project() -> Result<Self, ReleaseError> {
        let mut key = Self::parse(PROJECT_KEY_TEXT)?;
        key.pinned = true;
        Ok(key)
    }

    /// A key the user gives: minisign's `.pub` text (`untrusted comment:` line, then the
    /// base64 line) or the base64 line alone (what `minisign -P` takes).
    pub fn parse(text: &str) -> Result<Self, ReleaseError> {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let line = match lines.as_slice() {
            [line] => *line,
            [comment, line] if comment.starts_with("untrusted comment:") => *line,
            _ => {
                return Err(ReleaseError::BadKey(
                    "expected a comment line and a base64 line",
                ))
            }
        };
        let bytes = STANDARD
            .decode(line)
            .map_err(|_| ReleaseError::BadKey("not base64"))?;
        if bytes.len() != PUBLIC_KEY_LEN || !bytes.starts_with(ALG_LEGACY) {
            return Err(ReleaseError::BadKey("not an Ed25519 minisign key"));
        }
        let id = KeyId::from_decoded(&bytes).ok_or(ReleaseError::BadKey("too short"))?;
        let key = minisign_verify::PublicKey::from_base64(line)
            .map_err(|_| ReleaseError::BadKey("not an Ed25519 minisign key"))?;
        Ok(ReleaseKey {
            key,
            id,
            pinned: false,
        })
    }

    /// The key's ID.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Whether this is the project's key pinned in this build.
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// Checks `minisig` (the text of `SHA256SUMS.minisig`) over the exact bytes of
    /// `SHA256SUMS`, then parses them. Nothing of `sums` is read before the signature holds.
    pub fn verify_sums(&self, sums: &[u8], minisig: &str) -> Result<SignedSums, ReleaseError> {
        let found = signature_key_id(minisig)?;
        if found != self.id {
            return Err(ReleaseError::OtherKey {
                expected: self.to_string(),
                found,
            });
        }
        let signature = minisign_verify::Signature::decode(minisig)
            .map_err(|_| ReleaseError::BadSignatureFile("unreadable lines"))?;
        let bad = || ReleaseError::BadSignature {
            expected: self.to_string(),
        };
        match self.key.verify(sums, &signature, false) {
            Ok(()) => {}
            Err(minisign_verify::Error::UnexpectedAlgorithm) => {
                return Err(ReleaseError::LegacySignature)
            }
            Err(_) => return Err(bad()),
        }
        SignedSums::parse(sums, self.id, signature.trusted_comment())
    }
}

impl fmt::Display for ReleaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pinned {
            write!(f, "the Sightline release key {}", self.id)
        } else {
            write!(f, "the given public key {}", self.id)
        }
    }
}

/// The key ID a signature names (its second line), refusing legacy signatures.
fn signature_key_id(minisig: &str) -> Result<KeyId, ReleaseError> {
    let line = minisig
        .lines()
        .nth(1)
        .ok_or(ReleaseError::BadSignatureFile("too few lines"))?;
    let bytes = STANDARD
        .decode(line.trim())
        .map_err(|_| ReleaseError::BadSignatureFile("signature line not base64"))?;
    if bytes.len() != SIGNATURE_LEN {
        return Err(ReleaseError::BadSignatureFile(
            "signature line of the wrong size",
        ));
    }
    if bytes.starts_with(ALG_LEGACY) {
        return Err(ReleaseError::LegacySignature);
    }
    if !bytes.starts_with(ALG_PREHASHED) {
        return Err(ReleaseError::BadSignatureFile("unknown algorithm"));
    }
    KeyId::from_decoded(&bytes).ok_or(ReleaseError::BadSignatureFile("too short"))
}
