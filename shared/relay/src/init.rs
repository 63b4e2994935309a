//! Setting up a data directory (`relay init`) and loading the CA key from it.
//!
//! `init` never replaces anything: an existing key is an error, because replacing it would
//! silently break every viewer and agent that pins its fingerprint.

use crate::db::{Database, DbError};
use crate::paths::DataDir;
use rand_core::OsRng;
use sightline_core::identity::{Fingerprint, PrivateIdentity, CA_BITS};
use sightline_net::keystore::{self, KeyError};
use std::path::PathBuf;

/// Errors setting up or loading the CA.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// `init` found a key already in place.
    #[error("a relay CA key already exists at {0}; refusing to replace it (viewers and agents pin its fingerprint)")]
    KeyExists(PathBuf),
    /// No key yet.
    #[error("no relay CA key at {0}; run `relay init` first")]
    KeyMissing(PathBuf),
    /// The key file or directory failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Key generation or encoding failed.
    #[error("cannot create the CA key: {0}")]
    Core(#[from] sightline_core::Error),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What `init` made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Initialised {
    /// Fingerprint of the new CA key.
    pub fingerprint: Fingerprint,
    /// Whether the database was created (false: an existing one was kept and migrated).
    pub created_database: bool,
}

fn exists(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Fails if the data directory already holds a CA key (checked again by [`init`]).
pub fn ensure_no_key(data: &DataDir) -> Result<(), InitError> {
    let key_path = data.ca_key();
    if exists(&key_path) {
        return Err(InitError::KeyExists(key_path));
    }
    Ok(())
}

/// Creates the data directory (0700), a new RSA-4096 CA key (0600) and the database (0600).
/// Takes seconds: the key is generated here.
pub fn init(data: &DataDir) -> Result<Initialised, InitError> {
    ensure_no_key(data)?;
    let key_path = data.ca_key();
    keystore::create_private_dir(data.root())?;
    let key = PrivateIdentity::generate(&mut OsRng, CA_BITS)?;
    let pem = key.to_pkcs8_pem()?;
    let created_database = !exists(&data.database());
    drop(Database::create(&data.database())?);
    // create_new: if another `init` won the race, this fails instead of replacing its key.
    keystore::write_new_secret(&key_path, pem.as_bytes())?;
    Ok(Initialised {
        fingerprint: key.public().fingerprint(),
        created_database,
    })
}

/// Loads the CA key, refusing loose permissions, bad contents or a short key.
pub fn load_ca(data: &DataDir) -> Result<PrivateIdentity, InitError> {
    let path = data.ca_key();
    if !exists(&path) {
        return Err(InitError::KeyMissing(path));
    }
    Ok(keystore::load_key(&path, CA_BITS)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_refuses_an_existing_key_and_load_refuses_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("relay"));
        assert!(matches!(load_ca(&data), Err(InitError::KeyMissing(_))));
        keystore::create_private_dir(data.root()).unwrap();
        keystore::write_new_secret(&data.ca_key(), b"placeholder").unwrap();
        // Refused before any slow key generation, and nothing is replaced or created.
        assert!(matches!(init(&data), Err(InitError::KeyExists(_))));
        assert_eq!(std::fs::read(data.ca_key()).unwrap(), b"placeholder");
        assert!(!data.database().exists());
        assert!(matches!(
            load_ca(&data),
            Err(InitError::Key(KeyError::BadContents { .. }))
        ));
    }
}
