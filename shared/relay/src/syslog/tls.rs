//! TLS to the collector (RFC 5425): rustls with the CAs of `ca_file` only (no system roots,
//! no way to skip verification), and the relay's client certificate when configured. The
//! files are read once, before the relay starts.

use super::settings::SyslogConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sightline_net::keystore::{self, KeyError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Most bytes read from a PEM file.
const PEM_MAX: u64 = 1 << 20;

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A file could not be read.
    #[error("syslog {key} {path}: {source}")]
    Read {
        /// The setting naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The private key file could not be read or is readable by others.
    #[error("syslog key_file: {0}")]
    Key(#[from] KeyError),
    /// A file holds no usable PEM.
    #[error("syslog {key} {path}: {reason}")]
    Contents {
        /// The setting naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("syslog TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The client configuration for `config` (whose `ca_file` must be set).
pub fn client_config(config: &SyslogConfig) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    let ca_file = config.ca_file.as_deref().unwrap_or(Path::new(""));
    let roots = roots(ca_file)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let tls = match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(chain(cert)?, private_key(key)?)?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(tls))
}

fn certificates(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = std::fs::read(path).map_err(|source| TlsSetupError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| contents(key, path, format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(contents(
            key,
            path,
            "contains no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

fn contents(key: &'static str, path: &Path, reason: String) -> TlsSetupError {
    TlsSetupError::Contents {
        key,
        path: path.to_path_buf(),
        reason,
    }
}

fn roots(path: &Path) -> Result<rustls::RootCertStore, TlsSetupError> {
    let mut store = rustls::RootCertStore::empty();
    for (n, cert) in certificates("ca_file", path)?.into_iter().enumerate() {
        store.add(cert).map_err(|e| {
            contents(
                "ca_file",
                path,
                format!("certificate {} is not usable: {e}", n + 1),
            )
        })?;
    }
    Ok(store)
}

fn chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    certificates("cert_file", path)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    let pem = keystore::read_private_bytes(path, PEM_MAX)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| contents("key_file", path, format!("not PEM: {e}")))?
        .ok_or_else(|| contents("key_file", path, "contains no PEM private key".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, ca: &str) -> SyslogConfig {
        let path = dir.join("ca.pem");
        std::fs::write(&path, ca).unwrap();
        toml::from_str(&format!(
            "url = \"tls://127.0.0.1\"\nca_file = {:?}",
            path.display().to_string()
        ))
        .unwrap()
    }

    #[test]
    fn ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let e = client_config(&config(dir.path(), "not a certificate\n")).unwrap_err();
        assert!(
            matches!(e, TlsSetupError::Contents { key: "ca_file", .. }),
            "{e}"
        );
        let mut c = config(dir.path(), "");
        c.ca_file = Some(dir.path().join("missing.pem"));
        let e = client_config(&c).unwrap_err();
        assert!(
            matches!(e, TlsSetupError::Read { key: "ca_file", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("missing.pem"), "{e}");
    }

    #[test]
    fn key_file_must_be_private_and_hold_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "no key here\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(private_key(&key), Err(TlsSetupError::Key(_))));
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let e = private_key(&key).unwrap_err();
        assert!(e.to_string().contains("no PEM private key"), "{e}");
    }
}
