//! The relay's audit signing key (`audit.key` in the data directory): Ed25519, PKCS#8 PEM,
//! mode 0600 ([`sightline_net::audit_key`]), separate from the certificate authority so that
//! neither key can stand in for the other. Made by `relay init`, or by the first `relay serve`
//! or `relay audit key` in a data directory from before the audit chain. Never logged; only
//! its public half is printed.

use crate::store::paths::DataDir;
use ed25519_dalek::SigningKey;
use sightline_net::audit_key;

pub use sightline_core::audit_chain::checkpoint::public_hex;
pub use sightline_net::audit_key::AuditKeyError;

/// Loads the audit key; [`AuditKeyError::Missing`] when there is none.
pub fn load(data: &DataDir) -> Result<SigningKey, AuditKeyError> {
    audit_key::load(&data.audit_key())
}

/// Loads the audit key, or makes one if the data directory has none. Returns the key and
/// whether it was made.
pub fn load_or_create(data: &DataDir) -> Result<(SigningKey, bool), AuditKeyError> {
    audit_key::load_or_create(&data.audit_key())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use sightline_net::keystore;

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
