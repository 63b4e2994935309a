//! Where the relay keeps its files: one private data directory holding the CA key, the
//! database and (optionally) the configuration file.

use std::path::{Path, PathBuf};

/// File name of the CA private key (PKCS#8 PEM, mode 0600).
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// File name of the SQLite database (mode 0600).
pub const DATABASE_FILE: &str = "relay.db";
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

    /// The CA private key.
    pub fn ca_key(&self) -> PathBuf {
        self.root.join(CA_KEY_FILE)
    }

    /// The SQLite database.
    pub fn database(&self) -> PathBuf {
        self.root.join(DATABASE_FILE)
    }

    /// The default configuration file.
    pub fn config(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
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
    }
}
