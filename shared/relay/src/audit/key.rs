//! The audit signing key (`audit.key` in the data directory): Ed25519, PKCS#8 PEM, mode 0600,
//! separate from the certificate authority so that neither key can stand in for the other.
//! Made by `relay init`, or by the first `relay serve` or `relay audit key` in a data
//! directory from before the audit chain. Never logged; only its public half is printed.

use crate::paths::DataDir;
use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use sightline_net::keystore::{self, KeyError};
use std::path::PathBuf;
use zeroize::Zeroizing;

/// Errors loading or creating the audit key.
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

/// Loads the audit key; [`AuditKeyError::Missing`] when there is none.
pub fn load(data: &DataDir) -> Result<SigningKey, AuditKeyError> {
    let path = data.audit_key();
    if std::fs::symlink_metadata(&path).is_err() {
        return Err(AuditKeyError::Missing(path));
    }
    let pem = Zeroizing::new(keystore::read_secret(&path)?);
    SigningKey::from_pkcs8_pem(&pem).map_err(|_| AuditKeyError::BadContents(path))
}

/// Loads the audit key, or makes one if the data directory has none. Returns the key and
/// whether it was made.
pub fn load_or_create(data: &DataDir) -> Result<(SigningKey, bool), AuditKeyError> {
    match load(data) {
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

/// The public key as printed by `relay audit key` and taken by `verify --key`: the raw
/// 32-byte Ed25519 public key in 64 lowercase hex digits.
pub fn public_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().to_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("relay"));
        assert!(matches!(load(&data), Err(AuditKeyError::Missing(_))));
        let (first, made) = load_or_create(&data).unwrap();
        assert!(made);
        let (again, made) = load_or_create(&data).unwrap();
        assert!(!made);
        assert_eq!(public_hex(&first), public_hex(&again));
        assert_eq!(public_hex(&first).len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data.audit_key())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn garbage_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        keystore::write_new_secret(&data.audit_key(), b"not a key").unwrap();
        assert!(matches!(
            load_or_create(&data),
            Err(AuditKeyError::BadContents(_))
        ));
        assert_eq!(std::fs::read(data.audit_key()).unwrap(), b"not a key");
    }
}
