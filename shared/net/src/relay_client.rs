//! Client side of the relay channel: connect, verify the pinned relay key, log in, create or
//! join a session, and hand over the stream for the end-to-end session once paired.

use crate::clock;
use crate::stream::{FramedStream, StreamError};
use sightline_core::cert::OperatorCert;
use sightline_core::channel::{Channel, ChannelConfig};
use sightline_core::code::SessionCode;
use sightline_core::identity::{Fingerprint, PublicIdentity};
use sightline_core::relay_channel::{ClientHandshake, RelayInfo};
use sightline_core::relay_proto::{ClientMessage, RelayErrorKind, RelayMessage, Secret, SessionId};
use std::time::Duration;
use tokio::net::TcpStream;

/// How long connecting and each request/answer exchange may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Errors talking to the relay.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The relay could not be reached.
    #[error("cannot connect to relay {addr}: {source}")]
    Connect {
        /// Address tried.
        addr: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The relay did not answer in time.
    #[error("relay did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed or carried invalid data.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// Protocol or authentication failure (including a relay key that does not match the pin).
    #[error(transparent)]
    Protocol(#[from] sightline_core::Error),
    /// The relay closed the connection.
    #[error("relay closed the connection")]
    Closed,
    /// The relay refused the request.
    #[error("{message}")]
    Refused {
        /// Category.
        kind: RelayErrorKind,
        /// Relay's explanation.
        message: String,
        /// Seconds to wait when rate limited.
        retry_after_secs: Option<u64>,
    },
    /// The relay answered something that does not fit the request.
    #[error("unexpected answer from relay")]
    Unexpected,
}

/// A session code handed out by the relay.
#[derive(Debug, Clone)]
pub struct CreatedSession {
    /// The code to read to the customer.
    pub code: SessionCode,
    /// Session id.
    pub session_id: SessionId,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
}

/// A connection to the relay over a verified Noise channel.
#[derive(Debug)]
pub struct RelayClient {
    stream: FramedStream<TcpStream>,
    channel: Channel,
    info: RelayInfo,
}

async fn timed<T>(
    d: Duration,
    f: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(d, f)
        .await
        .map_err(|_| ClientError::Timeout(d))?
}

impl RelayClient {
    /// Connects to `addr` and completes the channel handshake; fails unless the relay proves
    /// the CA key whose fingerprint is `pin`. Nothing secret is sent before that check.
    pub async fn connect(addr: &str, pin: Fingerprint) -> Result<Self, ClientError> {
        timed(REQUEST_TIMEOUT, async {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|source| ClientError::Connect {
                    addr: addr.to_string(),
                    source,
                })?;
            let _ = tcp.set_nodelay(true);
            let mut stream = FramedStream::new(tcp);
            let (hs, first) = ClientHandshake::start(pin, clock::seed(), ChannelConfig::default())?;
            stream.write_all(&first).await?;
            let answer = stream.read_message().await?.ok_or(ClientError::Closed)?;
            let (channel, info) = hs.finish(&answer, clock::now_unix())?;
            Ok(Self {
                stream,
                channel,
                info,
            })
        })
        .await
    }

    /// The relay's CA key (verified against the pin).
    pub fn ca(&self) -> &PublicIdentity {
        &self.info.ca
    }

    async fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        let bytes = self.channel.send(msg)?;
        self.stream.write_all(&bytes).await?;
        Ok(())
    }

    async fn receive(&mut self) -> Result<RelayMessage, ClientError> {
        loop {
            let frame = self
                .stream
                .read_message()
                .await?
                .ok_or(ClientError::Closed)?;
            if let Some(msg) = self
                .channel
                .receive::<RelayMessage>(&frame, "relay message")?
            {
                return match msg {
                    RelayMessage::Error {
                        kind,
                        message,
                        retry_after_secs,
                    } => Err(ClientError::Refused {
                        kind,
                        message,
                        retry_after_secs,
                    }),
                    other => Ok(other),
                };
            }
        }
    }

    /// Logs in as an operator; returns the certificate over `key`.
    pub async fn login(
        &mut self,
        user: &str,
        password: Secret,
        second_factor: Option<Secret>,
        key: &PublicIdentity,
    ) -> Result<OperatorCert, ClientError> {
        let msg = ClientMessage::Login {
            user: user.to_string(),
            password,
            second_factor,
            operator_key: key.spki_der().to_vec(),
        };
        timed(REQUEST_TIMEOUT, async {
            self.send(&msg).await?;
            match self.receive().await? {
                RelayMessage::LoginOk { certificate } => Ok(certificate),
                _ => Err(ClientError::Unexpected),
            }
        })
        .await
    }

    /// Asks for a session code (after login).
    pub async fn create_session(&mut self) -> Result<CreatedSession, ClientError> {
        timed(REQUEST_TIMEOUT, async {
            self.send(&ClientMessage::CreateSession).await?;
            match self.receive().await? {
                RelayMessage::SessionCreated {
                    code,
                    session_id,
                    expires_at,
                } => {
                    let code = code.parse().map_err(|_| ClientError::Unexpected)?;
                    Ok(CreatedSession {
                        code,
                        session_id,
                        expires_at,
                    })
                }
                _ => Err(ClientError::Unexpected),
            }
        })
        .await
    }

    /// Waits (without timeout: the relay expires the code) until a customer joins. The
    /// returned stream then carries the end-to-end session.
    pub async fn wait_paired(
        mut self,
    ) -> Result<(FramedStream<TcpStream>, SessionId), ClientError> {
        match self.receive().await? {
            RelayMessage::Paired { session_id } => Ok((self.stream, session_id)),
            _ => Err(ClientError::Unexpected),
        }
    }

    /// Joins a session with a code. The returned stream then carries the end-to-end session.
    pub async fn join(
        mut self,
        code: &SessionCode,
    ) -> Result<(FramedStream<TcpStream>, SessionId), ClientError> {
        timed(REQUEST_TIMEOUT, async {
            self.send(&ClientMessage::Join {
                code: code.digits(),
            })
            .await?;
            match self.receive().await? {
                RelayMessage::Paired { session_id } => Ok(session_id),
                _ => Err(ClientError::Unexpected),
            }
        })
        .await
        .map(|sid| (self.stream, sid))
    }
}
