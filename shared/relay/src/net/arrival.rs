//! From an accepted socket to a byte stream and the client's real address: an optional
//! PROXY header (only, and always, from the listener's `proxy_protocol` senders), then the
//! transport sniffed from the first bytes ([`crate::net::sniff`]): TLS, and inside it or in
//! the clear a WebSocket upgrade or raw Noise frames. Bytes read while deciding are replayed
//! ([`crate::net::prefixed`]).
//!
//! The allow and deny lists and the connection caps apply to the client's real address as
//! soon as it is known: at accept for a direct connection (the caller's job), right after the
//! PROXY header, or right after the upgrade request's head from a trusted proxy, before any
//! answer.

use crate::config::Transport;
use crate::net::admission::Slot;
use crate::net::forwarded::{self, HeadError};
use crate::net::listener::Rulebook;
use crate::net::prefixed::Prefixed;
use crate::net::proxy_header::{self, ProxyError};
use crate::net::rules;
use crate::net::sniff::{sniff, Sniffed};
use crate::net::websocket::{self, WsError};
use sightline_net::stream::BoxIo;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

/// A connection ready for the channel handshake.
pub struct Arrived {
    /// Its byte stream.
    pub io: BoxIo,
    /// The client's real address.
    pub peer: SocketAddr,
    /// Its transport.
    pub via: Transport,
    /// Its place under the connection caps.
    pub slot: Slot,
    /// A plain HTTP request (no WebSocket upgrade) for this path: the support page or the
    /// agent's download ([`super::download`]), not a session.
    pub page: Option<Page>,
}

/// A plain HTTP request on a WebSocket transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The request target.
    pub path: String,
    /// Whether it came over TLS: from the client itself (wss) or through a trusted proxy
    /// that terminated it.
    pub secure: bool,
}

impl std::fmt::Debug for Arrived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arrived")
            .field("peer", &self.peer)
            .field("via", &self.via)
            .finish_non_exhaustive()
    }
}

/// Why a connection did not arrive.
#[derive(Debug, thiserror::Error)]
pub enum ArriveError {
    /// Closed before it said what it is.
    #[error("closed before the first bytes")]
    Closed,
    /// The socket failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// Refused by a rule or a cap (already logged).
    #[error("refused")]
    Refused,
    /// A transport the listener does not serve.
    #[error("transport {} not served on this listener", .0.name())]
    NotServed(Transport),
    /// A broken PROXY header.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// A broken upgrade request.
    #[error(transparent)]
    Head(#[from] HeadError),
    /// The WebSocket upgrade failed.
    #[error("WebSocket upgrade failed: {0}")]
    WebSocket(#[from] WsError),
}

/// Reads into `buf` until `decide` says something.
async fn fill<S, T, E>(
    io: &mut S,
    buf: &mut Vec<u8>,
    decide: impl Fn(&[u8]) -> Result<Option<T>, E>,
) -> Result<T, ArriveError>
where
    S: AsyncRead + Unpin,
    ArriveError: From<E>,
{
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(t) = decide(buf)? {
            return Ok(t);
        }
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(ArriveError::Closed);
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

fn sniffed(proxy: bool) -> impl Fn(&[u8]) -> Result<Option<Sniffed>, ArriveError> {
    move |b| {
        Ok(match sniff(b, proxy) {
            Sniffed::NeedMore => None,
            kind => Some(kind),
        })
    }
}

/// One connection's way in: the listener's rules and the caps.
struct Way<'a, G> {
    book: &'a Rulebook,
    gate: G,
    peer: SocketAddr,
    slot: Option<Slot>,
}

impl<G: Fn(SocketAddr) -> Option<Slot>> Way<'_, G> {
    /// Admits the client now that its address is final.
    fn settle(&mut self) -> Result<(), ArriveError> {
        if self.slot.is_none() {
            self.slot = Some((self.gate)(self.peer).ok_or(ArriveError::Refused)?);
        }
        Ok(())
    }

    fn serves(&self, via: Transport) -> Result<(), ArriveError> {
        if self.book.serves(via) {
            Ok(())
        } else {
            Err(ArriveError::NotServed(via))
        }
    }

    /// Finishes a stream whose transport is now known: a WebSocket's head is read (and the
    /// forwarding headers honoured from a trusted proxy), the client admitted.
    async fn finish<S>(
        mut self,
        mut io: S,
        mut buf: Vec<u8>,
        via: Transport,
    ) -> Result<Arrived, ArriveError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serves(via)?;
        let websocket = matches!(via, Transport::Ws | Transport::Wss);
        let mut page = None;
        if websocket {
            let head = fill(&mut io, &mut buf, forwarded::head).await?;
            let proxied = rules::contains(&self.book.spec.trusted_proxies, self.peer.ip());
            if !head.upgrade {
                page = Some(Page {
                    path: head.path.clone(),
                    secure: via == Transport::Wss || proxied,
                });
            }
            if proxied {
                let xff: Vec<&str> = head.xff.iter().map(String::as_str).collect();
                let fwd: Vec<&str> = head.forwarded.iter().map(String::as_str).collect();
                if let Some(client) = forwarded::client(&xff, &fwd, &self.book.spec.trusted_proxies)
                {
                    self.peer = client;
                }
            }
        }
        self.settle()?;
        let replay: BoxIo = Box::new(Prefixed::new(buf, io));
        let io = if websocket && page.is_none() {
            websocket::accept(replay).await?
        } else {
            replay
        };
        let slot = self.slot.ok_or(ArriveError::Refused)?;
        Ok(Arrived {
            io,
            peer: self.peer,
            via,
            slot,
            page,
        })
    }
}

/// Takes an accepted socket from `tcp_peer` to a stream ready for the channel handshake.
/// `slot` is its admission when the caller admitted it at accept; `gate` admits the real
/// client otherwise (allow/deny lists, then caps; `None`: refused, and logged).
pub async fn arrive(
    mut tcp: TcpStream,
    tcp_peer: SocketAddr,
    book: &Rulebook,
    slot: Option<Slot>,
    gate: impl Fn(SocketAddr) -> Option<Slot>,
) -> Result<Arrived, ArriveError> {
    let mut way = Way {
        book,
        gate,
        peer: tcp_peer,
        slot,
    };
    let mut buf = Vec::new();
    let from_sender = rules::contains(&book.spec.proxy_protocol, tcp_peer.ip());
    let mut kind = fill(&mut tcp, &mut buf, sniffed(true)).await?;
    match (kind, from_sender) {
        (Sniffed::Proxy, true) => {
            let header = fill(&mut tcp, &mut buf, proxy_header::parse).await?;
            buf.drain(..header.len.min(buf.len()));
            if let Some(source) = header.source {
                way.peer = source;
            }
            if !rules::contains(&book.spec.trusted_proxies, way.peer.ip()) {
                way.settle()?;
            }
            kind = fill(&mut tcp, &mut buf, sniffed(false)).await?;
        }
        (Sniffed::Proxy, false) => {
            let why = format!("PROXY header from {tcp_peer} not in proxy_protocol; refused");
            book.proxy_refused(tcp_peer, &why);
            return Err(ArriveError::Refused);
        }
        (_, true) => {
            let why = format!("no PROXY header from {tcp_peer}, a proxy_protocol sender; refused");
            book.proxy_refused(tcp_peer, &why);
            return Err(ArriveError::Refused);
        }
        (_, false) => {}
    }
    match kind {
        Sniffed::Tls => {
            if !(book.serves(Transport::Tls) || book.serves(Transport::Wss)) {
                return Err(ArriveError::NotServed(Transport::Tls));
            }
            let Some(tls) = &book.tls else {
                return Err(ArriveError::NotServed(Transport::Tls));
            };
            let mut stream = tls.acceptor().accept(Prefixed::new(buf, tcp)).await?;
            let mut inner = Vec::new();
            let via = match fill(&mut stream, &mut inner, sniffed(false)).await? {
                Sniffed::Http => Transport::Wss,
                _ => Transport::Tls,
            };
            way.finish(stream, inner, via).await
        }
        Sniffed::Http => way.finish(tcp, buf, Transport::Ws).await,
        _ => way.finish(tcp, buf, Transport::Tcp).await,
    }
}
