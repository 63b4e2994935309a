//! Connecting to the relay over the first route that works, with staggered attempts in the
//! manner of Happy Eyeballs (RFC 8305): the first route starts at once, each next one
//! [`STAGGER`] later or as soon as the attempt before it failed; the first attempt to finish
//! its transport set-up (TCP connect, proxy CONNECT, TLS handshake, WebSocket upgrade) wins and
//! the others are dropped. Each attempt gives up after [`ATTEMPT_TIMEOUT`].

use crate::proxy::connect::ProxyError;
use crate::proxy::{ProxySettings, ProxyUrl};
use crate::route::{Route, RouteList, Transport};
use crate::stream::BoxIo;
use crate::tls::TlsClient;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The head start of each route over the next.
pub const STAGGER: Duration = Duration::from_millis(500);
/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a connection reached the relay: printed to tell the user which way worked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialed {
    /// The route that worked.
    pub route: Route,
    /// The proxy it went through, if any (its [`Display`](fmt::Display) shows no
    /// credentials).
    pub proxy: Option<ProxyUrl>,
}

impl fmt::Display for Dialed {
    /// `wss://relay.example.com:443/sightline through proxy http://proxy.corp:3128`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.route)?;
        if let Some(p) = &self.proxy {
            write!(f, " through proxy {p}")?;
        }
        Ok(())
    }
}

/// Every route failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot reach the relay: {}", .failures.iter().map(|(r, e)| format!("{r}: {e}")).collect::<Vec<_>>().join("; "))]
pub struct DialError {
    /// Each route tried (with its proxy, if any) and why it failed, in the list's order.
    pub failures: Vec<(String, String)>,
}

/// How routes are dialled: the proxy settings, the TLS trust, the timings.
#[derive(Debug, Clone)]
pub struct Dialer {
    /// Which proxy each route goes through.
    pub proxy: ProxySettings,
    /// TLS for tls:// and wss://.
    pub tls: TlsClient,
    /// Head start of each route over the next ([`STAGGER`]).
    pub stagger: Duration,
    /// Time limit of one attempt ([`ATTEMPT_TIMEOUT`]).
    pub attempt_timeout: Duration,
}

impl Dialer {
    /// The OS trust store and the standard timings.
    pub fn new(proxy: ProxySettings) -> Self {
        Self {
            proxy,
            tls: TlsClient::native(),
            stagger: STAGGER,
            attempt_timeout: ATTEMPT_TIMEOUT,
        }
    }

    /// Connects over the first of `routes` that works (see the module's doc).
    pub async fn dial(&self, routes: &[Route]) -> Result<(BoxIo, Dialed), DialError> {
        let mut failures: Vec<Option<(String, String)>> = vec![None; routes.len()];
        let mut running = JoinSet::new();
        let mut next = 0;
        let mut next_start = Instant::now();
        loop {
            let may_start = next < routes.len();
            if may_start && running.is_empty() {
                // Nothing in flight (at the start, or all failed): the next one starts now.
                next_start = Instant::now();
            }
            tokio::select! {
                _ = tokio::time::sleep_until(next_start), if may_start => {
                    running.spawn(self.clone().attempt(next, routes[next].clone()));
                    next += 1;
                    next_start = Instant::now() + self.stagger;
                }
                done = running.join_next(), if !running.is_empty() => match done {
                    Some(Ok((_, Ok(won)))) => return Ok(won),
                    Some(Ok((i, Err(failure)))) => {
                        if let Some(slot) = failures.get_mut(i) {
                            *slot = Some(failure);
                        }
                        // A failure lets the next route start at once.
                        next_start = Instant::now();
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "a connection attempt failed"),
                    None => {}
                },
                else => break,
            }
        }
        Err(DialError {
            failures: failures.into_iter().flatten().collect(),
        })
    }

    /// One route, within the attempt's time limit.
    async fn attempt(
        self,
        index: usize,
        route: Route,
    ) -> (usize, Result<(BoxIo, Dialed), (String, String)>) {
        let proxy = match self.proxy.proxy_for(&route) {
            Ok(p) => p,
            Err(e) => return (index, Err((route.to_string(), e))),
        };
        let dialed = Dialed { route, proxy };
        let result = tokio::time::timeout(self.attempt_timeout, self.open(&dialed)).await;
        let outcome = match result {
            Ok(Ok(io)) => Ok((io, dialed)),
            Ok(Err(e)) => Err((dialed.to_string(), e)),
            Err(_) => Err((dialed.to_string(), "connection timed out".into())),
        };
        (index, outcome)
    }

    /// TCP (or a proxy's tunnel), then TLS and the WebSocket as the route needs.
    async fn open(&self, dialed: &Dialed) -> Result<BoxIo, String> {
        let route = &dialed.route;
        let io: BoxIo = match &dialed.proxy {
            Some(proxy) => Box::new(
                crate::proxy::connect::connect(proxy, &route.authority())
                    .await
                    .map_err(|e| match e {
                        ProxyError::Reach(io) => {
                            format!("cannot reach the proxy: {}", io_text(&io))
                        }
                        other => other.to_string(),
                    })?,
            ),
            None => {
                let tcp = TcpStream::connect((route.host(), route.port()))
                    .await
                    .map_err(|e| io_text(&e))?;
                let _ = tcp.set_nodelay(true);
                Box::new(tcp)
            }
        };
        let io: BoxIo = if route.transport().uses_tls() {
            let tls = self.tls.connect(io, route.host()).await;
            Box::new(tls.map_err(|e| format!("TLS: {}", io_text(&e)))?)
        } else {
            io
        };
        match route.transport() {
            Transport::Ws | Transport::Wss => crate::ws::connect(io, route)
                .await
                .map_err(|e| format!("WebSocket: {e}")),
            Transport::Tcp | Transport::Tls => Ok(io),
        }
    }
}

/// A short, lower-case reason for the common connection errors.
fn io_text(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset".into(),
        TimedOut => "connection timed out".into(),
        HostUnreachable => "host unreachable".into(),
        NetworkUnreachable => "network unreachable".into(),
        UnexpectedEof => "connection closed".into(),
        _ => e.to_string(),
    }
}

/// A relay as the user gave it: its routes and how to dial them. Clones share the route that
/// worked last, which a new connection (a resumption, a second connection) tries first.
#[derive(Debug, Clone)]
pub struct Relay {
    routes: RouteList,
    dialer: Dialer,
    worked: Arc<Mutex<Option<Route>>>,
}

impl Relay {
    /// The relay at `routes`, dialled by `dialer`.
    pub fn new(routes: RouteList, dialer: Dialer) -> Self {
        Self {
            routes,
            dialer,
            worked: Arc::new(Mutex::new(None)),
        }
    }

    /// The routes, as the user gave them.
    pub fn routes(&self) -> &RouteList {
        &self.routes
    }

    /// Connects over the route that worked last, if any, then the whole list.
    pub async fn dial(&self) -> Result<(BoxIo, Dialed), DialError> {
        let last = self.worked.lock().ok().and_then(|w| w.clone());
        let routes = match &last {
            Some(r) => self.routes.preferring(r),
            None => self.routes.routes().to_vec(),
        };
        let (io, dialed) = self.dialer.dial(&routes).await?;
        if let Ok(mut w) = self.worked.lock() {
            *w = Some(dialed.route.clone());
        }
        Ok((io, dialed))
    }
}

impl fmt::Display for Relay {
    /// The routes as the user typed them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.routes.fmt(f)
    }
}
