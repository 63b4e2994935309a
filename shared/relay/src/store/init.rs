//! Setting up a data directory (`relay init`): the root CA key (in the data directory, or in
//! an offline directory with `--offline-ca`), a first issuing key certified by it, the
//! database and the audit signing key.
//!
//! `init` never replaces anything: an existing key is an error, because replacing it would
//! silently break every viewer and agent that pins its fingerprint.

use crate::authority::ca::{self, CaError};
use crate::store::db::{Database, DbError};
use crate::store::paths::{DataDir, CA_KEY_FILE};
use rand_core::OsRng;
use sightline_core::identity::{Fingerprint, PrivateIdentity, CA_BITS};
use sightline_net::keystore::{self, KeyError};
use std::path::{Path, PathBuf};

/// Errors setting up the CA.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// `init` found a key already in place.
    #[error("a relay CA key already exists at {0}; refusing to replace it (viewers and agents pin its fingerprint)")]
    KeyExists(PathBuf),
    /// The key file or directory failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The issuing key could not be made.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// Key generation or encoding failed.
    #[error("cannot create the CA key: {0}")]
    Core(#[from] sightline_core::Error),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The audit signing key could not be made.
    #[error(transparent)]
    AuditKey(#[from] crate::store::audit::key::AuditKeyError),
}

/// What `init` made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Initialised {
    /// Fingerprint of the new root key (what clients pin).
    pub fingerprint: Fingerprint,
    /// Fingerprint of the first issuing key.
    pub issuer: Fingerprint,
    /// When its certificate ends, Unix seconds.
    pub issuer_not_after: u64,
    /// Whether the database was created (false: an existing one was kept and migrated).
    pub created_database: bool,
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Fails if the data directory already holds a root key or an issuing key, or `offline`
/// already holds a root key (checked again by [`init`]).
pub fn ensure_no_key(data: &DataDir, offline: Option<&Path>) -> Result<(), InitError> {
    let mut taken = vec![data.ca_key(), data.issuer_cert(), data.issuer_key()];
    taken.extend(offline.map(|d| d.join(CA_KEY_FILE)));
    match taken.into_iter().find(|p| exists(p)) {
        Some(p) => Err(InitError::KeyExists(p)),
        None => Ok(()),
    }
}

/// Creates the data directory (0700), a new RSA-4096 root key (0600) in it or in `offline`
/// (created 0700 when missing), a first issuing key certified by the root for
/// `issuer_validity_secs` from `now`, the database and the audit signing key (0600, an existing
/// one is kept). Takes seconds: the keys are
/// generated here.
pub fn init(
    data: &DataDir,
    offline: Option<&Path>,
    issuer_validity_secs: u64,
    now: u64,
) -> Result<Initialised, InitError> {
    ensure_no_key(data, offline)?;
    let root_dir = offline.unwrap_or(data.root());
    keystore::create_private_dir(data.root())?;
    keystore::create_private_dir(root_dir)?;
    let root = PrivateIdentity::generate(&mut OsRng, CA_BITS)?;
    let pem = root.to_pkcs8_pem()?;
    let created_database = !exists(&data.database());
    drop(Database::create(&data.database())?);
    crate::store::audit::key::load_or_create(data)?;
    // create_new: if another `init` won the race, this fails instead of replacing its key.
    keystore::write_new_secret(&root_dir.join(CA_KEY_FILE), pem.as_bytes())?;
    let issuing = ca::create_issuing(data, &root, now, issuer_validity_secs)?;
    Ok(Initialised {
        fingerprint: root.public().fingerprint(),
        issuer: issuing.authority().issuer().fingerprint(),
        issuer_not_after: issuing.not_after(),
        created_database,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_refuses_an_existing_key_anywhere_it_would_write_one() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("relay"));
        let offline = dir.path().join("usb");
        keystore::create_private_dir(data.root()).unwrap();
        keystore::write_new_secret(&data.ca_key(), b"placeholder").unwrap();
        // Refused before any slow key generation, and nothing is replaced or created.
        assert!(matches!(
            init(&data, None, 86_400, 0),
            Err(InitError::KeyExists(_))
        ));
        assert_eq!(std::fs::read(data.ca_key()).unwrap(), b"placeholder");
        assert!(!data.database().exists());
        std::fs::remove_file(data.ca_key()).unwrap();
        keystore::write_new_secret(&offline.join(CA_KEY_FILE), b"placeholder").unwrap();
        assert!(matches!(
            init(&data, Some(&offline), 86_400, 0),
            Err(InitError::KeyExists(p)) if p == offline.join(CA_KEY_FILE)
        ));
        assert!(!data.database().exists());
    }
}
