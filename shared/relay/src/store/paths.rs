//! Where the relay keeps its files: one private data directory holding the issuing key and its
//! certificate, the root CA key in the default one-machine set-up, the database, the audit
//! signing key, the session recordings (`recordings/`) and (optionally) the configuration
//! file.

use std::path::{Path, PathBuf};

/// File name of the root CA private key (PKCS#8 PEM, mode 0600): in the data directory in the
/// one-machine set-up, in the offline directory (`relay init --offline-ca DIR`) otherwise.
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// File name of the issuing private key (PKCS#8 PEM, mode 0600).
pub const ISSUER_KEY_FILE: &str = "issuer-key.pem";
/// File name of the issuing key's certificate with the root public key (a serialised
/// `Authority`, mode 0600).
pub const ISSUER_CERT_FILE: &str = "issuer-cert.bin";
/// File name of an issuing key waiting for its certificate (`relay ca request`), mode 0600.
pub const NEXT_ISSUER_KEY_FILE: &str = "issuer-key.next.pem";
/// File name of the SQLite database (mode 0600).
pub const DATABASE_FILE: &str = "relay.db";
/// File name of the audit-log signing key (Ed25519, PKCS#8 PEM, mode 0600).
pub const AUDIT_KEY_FILE: &str = "audit.key";
/// File name of the syslog export cursor: the last audit entry id delivered (mode 0600).
pub const SYSLOG_CURSOR_FILE: &str = "syslog.cursor";
/// Directory of the session recordings (mode 0700): `<session id>.age`, mode 0600.
pub const RECORDINGS_DIR: &str = "recordings";
/// File name ending of a recording.
pub const RECORDING_SUFFIX: &str = ".age";
/// File name of the optional configuration file.
pub const CONFIG_FILE: &str = "relay.toml";

/// The relay's data directory and the files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// A data directory at `root` (not created here).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The platform default: the user's data directory for "sightline", then `relay`.
    /// `None` when the platform has no home directory.
    pub fn platform_default() -> Option<Self> {
        directories::ProjectDirs::from("", "", "sightline")
            .map(|dirs| Self::new(dirs.data_dir().join("relay")))
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The root CA private key (present only in the one-machine set-up).
    pub fn ca_key(&self) -> PathBuf {
        self.root.join(CA_KEY_FILE)
    }

    /// The issuing private key.
    pub fn issuer_key(&self) -> PathBuf {
        self.root.join(ISSUER_KEY_FILE)
    }

    /// The issuing key's certificate (with the root public key).
    pub fn issuer_cert(&self) -> PathBuf {
        self.root.join(ISSUER_CERT_FILE)
    }

    /// An issuing key waiting to be certified and installed.
    pub fn next_issuer_key(&self) -> PathBuf {
        self.root.join(NEXT_ISSUER_KEY_FILE)
    }

    /// The SQLite database.
    pub fn database(&self) -> PathBuf {
        self.root.join(DATABASE_FILE)
    }

    /// The audit-log signing key.
    pub fn audit_key(&self) -> PathBuf {
        self.root.join(AUDIT_KEY_FILE)
    }

    /// The syslog export cursor.
    pub fn syslog_cursor(&self) -> PathBuf {
        self.root.join(SYSLOG_CURSOR_FILE)
    }

    /// The default configuration file.
    pub fn config(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    /// The directory of session recordings.
    pub fn recordings(&self) -> PathBuf {
        self.root.join(RECORDINGS_DIR)
    }

    /// The recording of session `id` (32 hex digits, checked by the caller).
    pub fn recording(&self, id: &str) -> PathBuf {
        self.recordings().join(format!("{id}{RECORDING_SUFFIX}"))
    }

    /// The optional policy file.
    pub fn policy(&self) -> PathBuf {
        self.root.join("policy.toml")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_live_in_the_root() {
        let d = DataDir::new("/srv/relay");
        assert_eq!(d.ca_key(), Path::new("/srv/relay/ca-key.pem"));
        assert_eq!(d.database(), Path::new("/srv/relay/relay.db"));
        assert_eq!(d.config(), Path::new("/srv/relay/relay.toml"));
        assert_eq!(
            d.recording("00ff"),
            Path::new("/srv/relay/recordings/00ff.age")
        );
    }
}
