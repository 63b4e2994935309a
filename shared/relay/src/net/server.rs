//! Listening and accepting: binds the configured addresses, admits connections under the
//! caps of [`crate::net::admission`] (closing the others at once, logged at most every
//! [`REFUSAL_LOG_EVERY`] per cap), spawns one task per connection, applies the retention
//! policy (at start, then every [`PRUNE_EVERY`]), watches revocations, and stops on request.

use crate::context::Relay;
use crate::net::admission::{Admission, Caps, Refusal};
use crate::net::connection;
use crate::net::log_throttle::LogThrottle;
use crate::store::retention;
use sightline_net::clock;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// How often a retention pass deletes what the policy no longer keeps.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Pause after a failed accept (for example out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Refused connections are logged at most once per this period and cap (a flood would
/// otherwise write a line per connection).
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// The connection table and the refusal log budgets, shared by every listener.
#[derive(Debug)]
struct Door {
    admission: Arc<Admission>,
    refusal_logs: [LogThrottle; 3],
}

impl Door {
    fn refused(&self, refusal: Refusal, peer: SocketAddr) {
        let Some(unlogged) = self.refusal_logs[refusal.index()].hit(Instant::now()) else {
            return;
        };
        let open = self.admission.open();
        tracing::warn!(%peer, open, unlogged_since_last = unlogged, "connection refused: {refusal}");
    }
}

/// A listening address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// The OS error.
    pub source: std::io::Error,
}

/// Binds every address; fails if any cannot be bound.
pub async fn bind(addrs: &[SocketAddr]) -> Result<Vec<TcpListener>, BindError> {
    let mut listeners = Vec::with_capacity(addrs.len());
    for &addr in addrs {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| BindError { addr, source })?;
        listeners.push(l);
    }
    Ok(listeners)
}

async fn accept_loop(relay: Arc<Relay>, listener: TcpListener, door: Arc<Door>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Over a cap the connection is closed at once: cheaper than any answer.
        let slot = match door.admission.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                drop(tcp);
                door.refused(refusal, peer);
                continue;
            }
        };
        let relay = relay.clone();
        tokio::spawn(connection::handle(relay, tcp, peer, slot));
    }
}

async fn prune_loop(relay: Arc<Relay>) {
    // The first tick is at once: a pass at start.
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tick.tick().await;
        match retention::run(&relay, clock::now_unix()).await {
            Ok(r) => {
                if let Some(bad) = &r.audit_refused {
                    tracing::warn!(%bad, "audit log not pruned: it fails verification; kept as evidence");
                }
                tracing::info!(
                    sessions = r.sessions,
                    failures = r.failures,
                    known_addresses = r.known_addresses,
                    certificates = r.certificates,
                    recordings = r.recordings,
                    audit_entries = r.audit,
                    prune_checkpoint = r.audit_prune,
                    "retention pass"
                );
            }
            Err(e) => tracing::warn!(error = %e, "retention pass failed; retried next time"),
        }
    }
}

/// Serves on `listeners` until `shutdown` resolves. Open connections are dropped then.
pub async fn serve(
    relay: Arc<Relay>,
    listeners: Vec<TcpListener>,
    shutdown: impl Future<Output = ()>,
) {
    let door = Arc::new(Door {
        admission: Admission::new(Caps {
            total: relay.config.max_connections,
            per_address: relay.config.max_connections_per_address,
            per_prefix: relay.config.max_connections_per_prefix,
        }),
        refusal_logs: Refusal::ALL.map(|_| LogThrottle::new(REFUSAL_LOG_EVERY)),
    });
    let mut tasks = JoinSet::new();
    for listener in listeners {
        tasks.spawn(accept_loop(relay.clone(), listener, door.clone()));
    }
    tasks.spawn(prune_loop(relay.clone()));
    tasks.spawn(crate::authority::revocation::watch(relay.clone()));
    shutdown.await;
    tasks.shutdown().await;
}
