//! An audit signing key file (Ed25519, PKCS#8 PEM, mode 0600): the relay's `audit.key` and a
//! LAN kiosk's `kiosk-audit.key`, each separate from the program's other keys so that no key
//! can stand in for another. Never logged; only its public half is printed
//! ([`sightline_core::audit_chain::checkpoint::public_hex`]).

use crate::keystore::{self, KeyError};
use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Errors loading or creating an audit key.
#[derive(Debug, thiserror::Error)]
pub enum AuditKeyError {
    /// The file could not be read or written, or its permissions are loose.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The file holds no Ed25519 PKCS#8 key.
    #[error("{0}: not an Ed25519 PKCS#8 PEM private key; refusing to replace it")]
    BadContents(PathBuf),
    /// The key could not be encoded.
    #[error("cannot encode the audit key")]
    Encode,
    /// No key file exists.
    #[error("no audit key at {0}")]
    Missing(PathBuf),
}

/// Loads the key at `path`; [`AuditKeyError::Missing`] when there is none.
pub fn load(path: &Path) -> Result<SigningKey, AuditKeyError> {
    if std::fs::symlink_metadata(path).is_err() {
        return Err(AuditKeyError::Missing(path.to_path_buf()));
    }
    let pem = Zeroizing::new(keystore::read_secret(path)?);
    SigningKey::from_pkcs8_pem(&pem).map_err(|_| AuditKeyError::BadContents(path.to_path_buf()))
}

/// Loads the key at `path`, or makes one there if there is none. Returns the key and whether
/// it was made.
pub fn load_or_create(path: &Path) -> Result<(SigningKey, bool), AuditKeyError> {
    match load(path) {
        Err(AuditKeyError::Missing(path)) => {
            let key = SigningKey::generate(&mut rand_core::OsRng);
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|_| AuditKeyError::Encode)?;
            // create_new: a key made meanwhile by another process is not replaced.
            keystore::write_new_secret(&path, pem.as_bytes())?;
            Ok((key, true))
        }
        other => other.map(|k| (k, false)),
    }
}
