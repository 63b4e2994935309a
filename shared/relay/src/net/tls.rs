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

fn private_key(file: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(file)?;
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
