//! One connection to the collector: opened over UDP, TCP or TLS, sends a batch of messages
//! (write, then flush), and notices when a stream collector goes away.
//!
//! A syslog collector never answers, so a task reads the stream only to see it end: a
//! collector that stops closes the connection, and the exporter reconnects and resends from
//! its cursor instead of writing into a dead socket.

use super::format::Message;
use super::settings::{Host, Target, Transport};
use rustls::pki_types::ServerName;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// Time allowed to connect (TCP and the TLS handshake together).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to write and flush one batch.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a connection could not be made or used. Messages name the collector, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The host name did not resolve.
    #[error("cannot resolve {target}: {source}")]
    Resolve {
        /// The collector.
        target: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// No address accepted the connection.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The last address tried.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The TLS handshake failed (usually the collector's certificate).
    #[error("TLS handshake with {addr} failed: {source}; is the collector's certificate signed by a CA in ca_file and valid for the host in url?")]
    Handshake {
        /// The collector's address.
        addr: SocketAddr,
        /// rustls's reason.
        source: io::Error,
    },
    /// The host cannot be a TLS server name.
    #[error("{0} is not a valid TLS server name")]
    ServerName(String),
    /// `tls://` without a CA to check the collector against.
    #[error("tls:// needs ca_file")]
    NoCa,
    /// Connecting or sending took too long.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// Writing failed: the connection is broken.
    #[error("sending failed: {0}")]
    Send(io::Error),
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// An open connection.
#[derive(Debug)]
pub enum Link {
    /// UDP: each message one datagram.
    Datagram(UdpSocket),
    /// TCP or TLS: octet-counted messages on a stream.
    Stream(StreamLink),
}

/// The writing half of a stream and the task watching for its end.
pub struct StreamLink {
    writer: WriteHalf<Box<dyn Stream>>,
    watcher: JoinHandle<String>,
}

impl std::fmt::Debug for StreamLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamLink").finish_non_exhaustive()
    }
}

impl Drop for StreamLink {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl Link {
    /// Connects to `target`; `tls` is required for `tls://`.
    pub async fn connect(
        target: &Target,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<Self, LinkError> {
        tokio::time::timeout(CONNECT_TIMEOUT, Self::open(target, tls))
            .await
            .map_err(|_| LinkError::Timeout("connecting"))?
    }

    async fn open(
        target: &Target,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<Self, LinkError> {
        let addrs = resolve(target).await?;
        if target.transport == Transport::Udp {
            return udp(&addrs).await.map(Self::Datagram);
        }
        let (tcp, addr) = tcp(&addrs).await?;
        let stream: Box<dyn Stream> = match (target.transport, tls) {
            (Transport::Tls, Some(config)) => {
                let name = server_name(&target.host)?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|source| LinkError::Handshake { addr, source })?;
                Box::new(tls)
            }
            // Settings refuse tls:// without a CA; never fall back to plain TCP.
            (Transport::Tls, None) => return Err(LinkError::NoCa),
            _ => Box::new(tcp),
        };
        let (mut reader, writer) = tokio::io::split(stream);
        let watcher = tokio::spawn(async move {
            let mut sink = [0u8; 512];
            // Anything the collector sends is ignored; the end or an error (a TLS alert, such
            // as a refused client certificate) ends the task with the reason.
            loop {
                match reader.read(&mut sink).await {
                    Ok(0) => return "the collector closed the connection".to_string(),
                    Ok(_) => {}
                    Err(e) => return format!("the collector closed the connection: {e}"),
                }
            }
        });
        Ok(Self::Stream(StreamLink { writer, watcher }))
    }

    /// Sends `messages` in order: written and flushed (streams), or each sent (UDP).
    pub async fn send(&mut self, messages: &[Message]) -> Result<(), LinkError> {
        tokio::time::timeout(SEND_TIMEOUT, self.send_now(messages))
            .await
            .map_err(|_| LinkError::Timeout("sending"))?
            .map_err(LinkError::Send)
    }

    async fn send_now(&mut self, messages: &[Message]) -> io::Result<()> {
        match self {
            Self::Datagram(socket) => {
                for m in messages {
                    socket.send(&m.datagram()).await?;
                }
                Ok(())
            }
            Self::Stream(s) => {
                if s.watcher.is_finished() {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "the collector closed the connection",
                    ));
                }
                let mut buf = Vec::new();
                for m in messages {
                    m.frame_into(&mut buf);
                }
                s.writer.write_all(&buf).await?;
                s.writer.flush().await
            }
        }
    }

    /// Resolves, with the reason, when the collector has closed a stream connection; never
    /// for UDP.
    pub async fn closed(&mut self) -> String {
        match self {
            Self::Stream(s) => (&mut s.watcher)
                .await
                .unwrap_or_else(|_| "the connection's reader stopped".to_string()),
            Self::Datagram(_) => std::future::pending().await,
        }
    }
}

async fn resolve(target: &Target) -> Result<Vec<SocketAddr>, LinkError> {
    match &target.host {
        Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, target.port)]),
        Host::Name(name) => tokio::net::lookup_host((name.as_str(), target.port))
            .await
            .map(|a| a.collect())
            .map_err(|source| LinkError::Resolve {
                target: target.to_string(),
                source,
            }),
    }
}

fn no_address() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "the name has no address")
}

async fn udp(addrs: &[SocketAddr]) -> Result<UdpSocket, LinkError> {
    let addr = *addrs.first().ok_or_else(|| LinkError::Resolve {
        target: "collector".into(),
        source: no_address(),
    })?;
    let local: IpAddr = match addr {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let connect = |source| LinkError::Connect { addr, source };
    let socket = UdpSocket::bind(SocketAddr::new(local, 0))
        .await
        .map_err(connect)?;
    socket.connect(addr).await.map_err(connect)?;
    Ok(socket)
}

async fn tcp(addrs: &[SocketAddr]) -> Result<(TcpStream, SocketAddr), LinkError> {
    let mut last = None;
    for &addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok((s, addr));
            }
            Err(source) => last = Some(LinkError::Connect { addr, source }),
        }
    }
    Err(last.unwrap_or_else(|| LinkError::Resolve {
        target: "collector".into(),
        source: no_address(),
    }))
}

fn server_name(host: &Host) -> Result<ServerName<'static>, LinkError> {
    match host {
        Host::Ip(ip) => Ok(ServerName::IpAddress((*ip).into())),
        Host::Name(name) => {
            ServerName::try_from(name.clone()).map_err(|_| LinkError::ServerName(name.clone()))
        }
    }
}
