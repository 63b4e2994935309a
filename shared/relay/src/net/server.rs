//! Listening and accepting: admits connections by each listener's allow and deny lists
//! ([`crate::net::listener`]) and under the caps of [`crate::net::admission`] (closing the
//! others at once, logged at most every [`REFUSAL_LOG_EVERY`] per cap), spawns one task per
//! connection that finds its transport and real address ([`crate::net::arrival`]) and serves
//! it, reloads TLS certificates on SIGHUP, applies the retention policy (at start, then every
//! [`PRUNE_EVERY`]), watches revocations, and stops on request.

use crate::config::ListenerSpec;
use crate::context::Relay;
use crate::net::admission::{Admission, Caps, Refusal, Slot};
use crate::net::arrival::{self, ArriveError};
use crate::net::connection;
use crate::net::download;
use crate::net::listener::{self, Listener, Rulebook};
use crate::net::log_throttle::LogThrottle;
use crate::net::tls;
use crate::store::retention;
use sightline_net::clock;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

pub use crate::net::listener::BindError;

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

    /// Admits the client at `peer` on `book`'s listener: its allow and deny lists, then the
    /// caps. `None`: refused (and logged).
    fn gate(&self, book: &Rulebook, peer: SocketAddr) -> Option<Slot> {
        if !book.check(peer) {
            return None;
        }
        match self.admission.admit(peer.ip()) {
            Ok(slot) => Some(slot),
            Err(refusal) => {
                self.refused(refusal, peer);
                None
            }
        }
    }
}

/// Binds plain TCP listeners (both roles, no rules) on `addrs`; fails if any cannot be bound.
pub async fn bind(addrs: &[SocketAddr]) -> Result<Vec<Listener>, BindError> {
    let mut listeners = Vec::with_capacity(addrs.len());
    for &addr in addrs {
        match listener::open_one(&ListenerSpec::plain(addr)).await {
            Ok(l) => listeners.push(l),
            Err(listener::OpenError::Bind(e)) => return Err(e),
            Err(e) => {
                let source = std::io::Error::other(e.to_string());
                return Err(BindError { addr, source });
            }
        }
    }
    Ok(listeners)
}

/// Binds the configured listeners and loads their TLS files.
pub use crate::net::listener::open;

async fn accept_loop(relay: Arc<Relay>, listener: Listener, door: Arc<Door>) {
    let book = listener.book;
    loop {
        let (tcp, peer) = match listener.tcp.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // A direct client is judged at once, before a byte is read: refused connections are
        // closed, cheaper than any answer. A proxied one once its real address is known.
        let slot = if book.deferred(peer) {
            None
        } else {
            match door.gate(&book, peer) {
                Some(slot) => Some(slot),
                None => {
                    drop(tcp);
                    continue;
                }
            }
        };
        tokio::spawn(arrive(
            relay.clone(),
            tcp,
            peer,
            book.clone(),
            slot,
            door.clone(),
        ));
    }
}

/// Finds the connection's transport and real address, then serves it.
async fn arrive(
    relay: Arc<Relay>,
    tcp: TcpStream,
    tcp_peer: SocketAddr,
    book: Arc<Rulebook>,
    slot: Option<Slot>,
    door: Arc<Door>,
) {
    let _ = tcp.set_nodelay(true);
    let deadline = Duration::from_secs(relay.config.handshake_timeout_secs);
    let gate = |peer| door.gate(&book, peer);
    let way_in = arrival::arrive(tcp, tcp_peer, &book, slot, gate);
    let mut arrived = match tokio::time::timeout(deadline, way_in).await {
        Ok(Ok(arrived)) => arrived,
        Ok(Err(ArriveError::Refused)) => return,
        Ok(Err(e)) => {
            return tracing::debug!(peer = %tcp_peer, error = %e, "connection dropped before the handshake")
        }
        Err(_) => {
            return tracing::debug!(peer = %tcp_peer, "connection dropped: no transport in time")
        }
    };
    if let Some(page) = arrived.page.take() {
        tracing::debug!(peer = %arrived.peer, path = %page.path, listener = %book.local, "page request");
        return download::serve(&relay, arrived.io, &page.path, page.secure).await;
    }
    tracing::debug!(peer = %arrived.peer, via = arrived.via.name(), listener = %book.local, "connection arrived");
    connection::handle(relay, arrived, book.spec.roles).await;
}

/// Logs what each listener serves.
fn describe(listeners: &[Listener]) {
    for l in listeners {
        let spec = &l.book.spec;
        let transports: Vec<&str> = spec.transports.iter().map(|t| t.name()).collect();
        tracing::info!(
            address = %l.book.local,
            transports = ?transports,
            roles = ?spec.roles.names(),
            rules = spec.rule_count(),
            "listener"
        );
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
    listeners: Vec<Listener>,
    shutdown: impl Future<Output = ()>,
) {
    describe(&listeners);
    let door = Arc::new(Door {
        admission: Admission::new(Caps {
            total: relay.config.max_connections,
            per_address: relay.config.max_connections_per_address,
            per_prefix: relay.config.max_connections_per_prefix,
        }),
        refusal_logs: Refusal::ALL.map(|_| LogThrottle::new(REFUSAL_LOG_EVERY)),
    });
    let mut tasks = JoinSet::new();
    let certificates: Vec<_> = listeners
        .iter()
        .filter_map(|l| l.book.tls.clone())
        .collect();
    if !certificates.is_empty() {
        tasks.spawn(tls::reload_on_hangup(certificates));
    }
    for listener in listeners {
        tasks.spawn(accept_loop(relay.clone(), listener, door.clone()));
    }
    tasks.spawn(prune_loop(relay.clone()));
    tasks.spawn(crate::authority::revocation::watch(relay.clone()));
    shutdown.await;
    tasks.shutdown().await;
}
