//! TLS to the relay for tls:// and wss:// routes (rustls with the ring provider). The relay's
//! certificate is verified against the OS trust store (which honours `SSL_CERT_FILE` and
//! `SSL_CERT_DIR`, and holds a TLS-inspecting proxy's CA where a company uses one) for the
//! route's host name, and a failure ends the attempt: there is no switch to skip it. TLS here
//! only gets the bytes through firewalls; the Noise channel inside still authenticates the
//! relay by its pinned key, so whoever terminates TLS reads nothing.

use rustls::pki_types::ServerName;
use rustls::RootCertStore;
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Makes TLS client connections to relays.
#[derive(Clone)]
pub struct TlsClient {
    /// The connector, or why there is none (every handshake then fails, closed).
    connector: Result<TlsConnector, String>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsClient(..)")
    }
}

impl TlsClient {
    /// Trusts the OS store (read once per process).
    pub fn native() -> Self {
        static NATIVE: OnceLock<TlsClient> = OnceLock::new();
        NATIVE
            .get_or_init(|| Self::with_roots(native_roots()))
            .clone()
    }

    /// Trusts exactly `roots` (tests, or a branded build with its own CA).
    pub fn with_roots(roots: RootCertStore) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let connector = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| {
                let config = b.with_root_certificates(roots).with_no_client_auth();
                TlsConnector::from(Arc::new(config))
            })
            .map_err(|e| format!("TLS is unavailable: {e}"));
        Self { connector }
    }

    /// The TLS handshake over `io` for `host` (the SNI name and the name the certificate
    /// must carry; an IP address is checked against the certificate's IP addresses).
    pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: S,
        host: &str,
    ) -> std::io::Result<TlsStream<S>> {
        let name = ServerName::try_from(host.to_string()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{host:?} is not a valid TLS server name"),
            )
        })?;
        let connector = self
            .connector
            .as_ref()
            .map_err(|e| std::io::Error::other(e.clone()))?;
        connector.connect(name, io).await
    }
}

/// The OS trust store; certificates that do not parse are skipped (and logged).
fn native_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "reading the trusted certificates");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::debug!(added, ignored, "some trusted certificates do not parse");
    }
    if added == 0 {
        tracing::warn!("no trusted certificates found: tls:// and wss:// routes will fail");
    }
    roots
}
