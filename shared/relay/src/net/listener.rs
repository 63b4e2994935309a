//! A bound listening socket with what it serves: its [`ListenerSpec`] (transports, roles,
//! rules), its TLS settings, and the budgets of its refusal logs. [`open`] binds every
//! configured listener and loads their TLS files, failing on the first that does not work.

use crate::config::{ListenerSpec, Transport};
use crate::net::log_throttle::LogThrottle;
use crate::net::rules::{self, Rules};
use crate::net::server::REFUSAL_LOG_EVERY;
use crate::net::tls::{self, TlsError, TlsSource};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

/// A listening address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// The OS error.
    pub source: std::io::Error,
}

/// A listener could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Its address.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// Its TLS files.
    #[error("listener {addr}: {source}")]
    Tls {
        /// The configured address.
        addr: SocketAddr,
        /// What is wrong with the file.
        source: TlsError,
    },
    /// SIGHUP could not be watched.
    #[error("cannot watch SIGHUP for TLS reloads: {0}")]
    Signal(std::io::Error),
}

/// What a listener's connections share.
#[derive(Debug)]
pub struct Rulebook {
    /// The listener as configured.
    pub spec: ListenerSpec,
    /// Where it listens (with the port the system chose for port 0).
    pub local: SocketAddr,
    /// Allow and deny lists.
    pub rules: Rules,
    /// TLS settings, when a transport needs them.
    pub tls: Option<Arc<TlsSource>>,
    /// Refusals by the allow and deny lists.
    rule_log: LogThrottle,
    /// Refused PROXY headers, and connections missing one.
    proxy_log: LogThrottle,
}

impl Rulebook {
    /// Whether `transport` is served here.
    pub fn serves(&self, transport: Transport) -> bool {
        self.spec.transports.contains(&transport)
    }

    /// Whether the client's address is only known later (a PROXY header or a forwarding
    /// header will name it).
    pub fn deferred(&self, tcp_peer: SocketAddr) -> bool {
        rules::contains(&self.spec.proxy_protocol, tcp_peer.ip())
            || rules::contains(&self.spec.trusted_proxies, tcp_peer.ip())
    }

    /// Applies the allow and deny lists to the client's address; a refusal is logged (within
    /// the log budget).
    pub fn check(&self, peer: SocketAddr) -> bool {
        let Err(denied) = self.rules.check(peer.ip()) else {
            return true;
        };
        if let Some(unlogged) = self.rule_log.hit(Instant::now()) {
            tracing::warn!(%peer, unlogged_since_last = unlogged, "connection refused by listener {}: {denied}", self.local);
        }
        false
    }

    /// Logs a PROXY refusal (within the log budget).
    pub fn proxy_refused(&self, tcp_peer: SocketAddr, why: &str) {
        if let Some(unlogged) = self.proxy_log.hit(Instant::now()) {
            tracing::warn!(peer = %tcp_peer, unlogged_since_last = unlogged, listener = %self.local, "{why}");
        }
    }
}

/// A bound listener.
#[derive(Debug)]
pub struct Listener {
    /// The socket.
    pub tcp: TcpListener,
    /// What it serves.
    pub book: Arc<Rulebook>,
}

impl Listener {
    /// Where it listens.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

async fn bind(spec: &ListenerSpec) -> Result<TcpListener, BindError> {
    TcpListener::bind(spec.address)
        .await
        .map_err(|source| BindError {
            addr: spec.address,
            source,
        })
}

/// Binds one listener and loads its TLS files.
pub async fn open_one(spec: &ListenerSpec) -> Result<Listener, OpenError> {
    let tls = match &spec.tls {
        Some(files) => Some(Arc::new(TlsSource::open(files.clone()).map_err(
            |source| OpenError::Tls {
                addr: spec.address,
                source,
            },
        )?)),
        None => None,
    };
    let tcp = bind(spec).await?;
    let local = tcp.local_addr().map_err(|source| BindError {
        addr: spec.address,
        source,
    })?;
    let book = Rulebook {
        spec: spec.clone(),
        local,
        rules: Rules {
            allow: spec.allow.clone(),
            deny: spec.deny.clone(),
        },
        tls,
        rule_log: LogThrottle::new(REFUSAL_LOG_EVERY),
        proxy_log: LogThrottle::new(REFUSAL_LOG_EVERY),
    };
    Ok(Listener {
        tcp,
        book: Arc::new(book),
    })
}

/// Binds every listener, in order, and loads their TLS files. With any TLS listener, SIGHUP
/// stops being fatal from here on (it reloads the certificates once serving).
pub async fn open(specs: &[ListenerSpec]) -> Result<Vec<Listener>, OpenError> {
    let mut listeners = Vec::with_capacity(specs.len());
    for spec in specs {
        listeners.push(open_one(spec).await?);
    }
    if specs.iter().any(|s| s.tls.is_some()) {
        tls::arm_hangup().map_err(OpenError::Signal)?;
    }
    Ok(listeners)
}
