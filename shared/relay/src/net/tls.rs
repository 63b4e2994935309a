//! A listener's TLS server settings from its PEM certificate chain and key, held so that a
//! SIGHUP can swap in renewed files ([`reload_on_hangup`]) without a restart: connections
//! already open keep theirs, new ones get the new certificate. A file that does not load at
//! start stops the relay; on reload it is logged and the old certificate stays.

use crate::config::TlsFiles;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use tokio_rustls::TlsAcceptor;

/// A TLS file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("TLS file {file}: {reason}")]
pub struct TlsError {
    /// The file.
    pub file: PathBuf,
    /// What is wrong.
    pub reason: String,
}

fn bad(file: &Path, reason: impl ToString) -> TlsError {
    TlsError {
        file: file.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn read(file: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(file).map_err(|e| bad(file, e))
}

fn certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(file)?;
    let chain = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(file, e))?;
    if chain.is_empty() {
        return Err(bad(file, "no PEM certificate in it"));
    }
    Ok(chain)
}

/// Largest TLS key file read (a PEM RSA-8192 key is under 7 KiB).
const MAX_KEY_FILE: u64 = 64 * 1024;

/// The key, from a regular file that only its owner may read (as every key of the relay).
fn private_key(file: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = sightline_net::keystore::read_private_bytes(file, MAX_KEY_FILE).map_err(|e| TlsError {
        file: file.to_path_buf(),
        reason: match e {
            sightline_net::keystore::KeyError::LoosePermissions { mode, .. } => format!(
                "permissions {mode:o} let others read the key; chmod 600 it (owned by the user the relay runs as)"
            ),
            other => other.to_string(),
        },
    })?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| bad(file, e))?
        .ok_or_else(|| bad(file, "no PEM private key in it"))
}

/// Reads the files into server settings (ring provider, TLS 1.2 and 1.3).
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certificates(&files.certificate)?;
    let key = private_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&files.certificate, e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad(&files.key, format!("does not fit the certificate: {e}")))?;
    Ok(Arc::new(config))
}

/// A listener's current TLS settings.
#[derive(Debug)]
pub struct TlsSource {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsSource {
    /// Loads `files`.
    pub fn open(files: TlsFiles) -> Result<Self, TlsError> {
        let config = load(&files)?;
        Ok(Self {
            files,
            current: RwLock::new(config),
        })
    }

    /// An acceptor with the current certificate.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        TlsAcceptor::from(config)
    }

    /// Reads the files again; on failure the current settings stay.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = load(&self.files)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// The certificate file, for logs.
    pub fn certificate_file(&self) -> &Path {
        &self.files.certificate
    }
}

/// Makes SIGHUP harmless from now on (its default action ends the process): called before
/// the relay says it listens, so a reload request that comes early is not fatal.
pub fn arm_hangup() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        // Tokio keeps its handler installed for the life of the process.
        let _hangup = signal(SignalKind::hangup())?;
    }
    Ok(())
}

/// Reloads every source on each SIGHUP, until dropped.
pub async fn reload_on_hangup(sources: Vec<Arc<TlsSource>>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                return tracing::error!(error = %e, "cannot watch SIGHUP; TLS certificates will not be reloaded");
            }
        };
        while hangup.recv().await.is_some() {
            for source in &sources {
                match source.reload() {
                    Ok(()) => {
                        tracing::info!(certificate = %source.certificate_file().display(), "TLS certificate reloaded")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "TLS certificate not reloaded; the old one stays in use")
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    drop(sources);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str) -> TlsFiles {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let files = TlsFiles {
            certificate: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.certificate, made.cert.pem()).unwrap();
        std::fs::write(&files.key, made.key_pair.serialize_pem()).unwrap();
        std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o600)).unwrap();
        files
    }

    #[test]
    fn a_key_others_can_read_is_refused_and_says_how_to_fix_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = write(dir.path(), "a");
        assert!(TlsSource::open(files.clone()).is_ok());
        std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = TlsSource::open(files).unwrap_err().to_string();
        assert!(err.contains("644") && err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn bad_files_are_named_and_a_failed_reload_keeps_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a");
        let b = write(dir.path(), "b");
        let source = TlsSource::open(a.clone()).unwrap();

        // A key that is not the certificate's.
        std::fs::copy(&b.key, &a.key).unwrap();
        let err = source.reload().unwrap_err().to_string();
        assert!(err.contains("does not fit the certificate"), "{err}");
        // Not PEM at all, and an empty certificate file.
        std::fs::write(&a.key, "garbage").unwrap();
        assert!(source
            .reload()
            .unwrap_err()
            .to_string()
            .contains("no PEM private key"));
        std::fs::write(&a.certificate, "").unwrap();
        let err = TlsSource::open(a).unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
        // The source still serves what it loaded first.
        let _still = source.acceptor();
    }
}
