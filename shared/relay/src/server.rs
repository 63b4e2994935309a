//! Listening and accepting: binds the configured addresses, caps simultaneous connections,
//! spawns one task per connection, prunes old brute-force records, watches revocations, and
//! stops on request.

use crate::connection;
use crate::context::Relay;
use crate::failures;
use sightline_net::clock;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How often forgotten brute-force records are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Pause after a failed accept (for example out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

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

async fn accept_loop(relay: Arc<Relay>, listener: TcpListener, slots: Arc<Semaphore>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // At capacity the connection is closed at once: cheaper than any answer.
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: max_connections reached");
            drop(tcp);
            continue;
        };
        let relay = relay.clone();
        tokio::spawn(connection::handle(relay, tcp, peer, permit));
    }
}

async fn prune_loop(relay: Arc<Relay>) {
    let quiet = relay.config.longest_forget_secs();
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tick.tick().await;
        let now = clock::now_unix();
        match relay
            .with_db(move |db| failures::prune(db, now, quiet))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::debug!(records = n, "pruned forgotten failure records"),
            Err(e) => tracing::warn!(error = %e, "cannot prune failure records"),
        }
    }
}

/// Serves on `listeners` until `shutdown` resolves. Open connections are dropped then.
pub async fn serve(
    relay: Arc<Relay>,
    listeners: Vec<TcpListener>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(relay.config.max_connections));
    let mut tasks = JoinSet::new();
    for listener in listeners {
        tasks.spawn(accept_loop(relay.clone(), listener, slots.clone()));
    }
    tasks.spawn(prune_loop(relay.clone()));
    tasks.spawn(crate::revocation::watch(relay.clone()));
    shutdown.await;
    tasks.shutdown().await;
}
