//! Drives the end-to-end handshake and the established session over a framed stream:
//! keepalive, idle timeout, explicit close, and classification of how the session ended.

use crate::clock;
use crate::stream::{FramedStream, StreamError};
use sightline_core::cert::OperatorCert;
use sightline_core::e2e::{
    AgentHandshake, E2eConfig, Ending, OperatorHandshake, PeerCheck, PeerVerified, Progress,
    Session,
};
use sightline_core::identity::PrivateIdentity;
use sightline_core::messages::{CloseReason, Message};
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Time allowed for the whole end-to-end handshake including identity proofs.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// A ping is sent after this much silence from this side.
pub const KEEPALIVE: Duration = Duration::from_secs(10);
/// The session ends if nothing arrives for this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(40);

/// How often a pump pings and how long it waits for anything from the peer before it counts
/// the connection as lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// A ping is sent after this much silence from this side.
    pub keepalive: Duration,
    /// Nothing received for this long: the connection is lost.
    pub idle_timeout: Duration,
}

impl Liveness {
    /// A session that ends when its connection is lost ([`KEEPALIVE`], [`IDLE_TIMEOUT`]).
    pub const PATIENT: Liveness = Liveness {
        keepalive: KEEPALIVE,
        idle_timeout: IDLE_TIMEOUT,
    };
}

/// What ended one connection's run of the pump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The session is over.
    End(SessionEnd),
    /// The connection broke, went silent or ended without a close: the session itself is
    /// intact and may be resumed on a new connection.
    Lost(String),
}

/// Errors of the end-to-end handshake.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The connection failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The peer failed authentication or broke the protocol.
    #[error(transparent)]
    Protocol(#[from] sightline_core::Error),
    /// The stream ended during the handshake.
    #[error("connection closed during the end-to-end handshake")]
    Closed,
    /// The handshake took too long.
    #[error("end-to-end handshake timed out")]
    Timeout,
    /// A write waited too long: the connection stopped taking data.
    #[error("the connection stopped taking data")]
    Stalled,
}

async fn next<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut FramedStream<S>,
) -> Result<Vec<u8>, SessionError> {
    stream.read_message().await?.ok_or(SessionError::Closed)
}

async fn await_identity<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut FramedStream<S>,
    mut waiting: sightline_core::e2e::AwaitingPeerIdentity,
) -> Result<Session, SessionError> {
    loop {
        match waiting.receive(&next(stream).await?, clock::now_unix())? {
            Progress::Pending(w) => waiting = w,
            Progress::Established(s) => return Ok(s),
        }
    }
}

/// Operator side of the handshake (Noise initiator).
pub async fn operator_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut FramedStream<S>,
    cfg: E2eConfig,
    key: &PrivateIdentity,
    certificate: OperatorCert,
) -> Result<Session, SessionError> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        // -> e
        let (hs, m1) = OperatorHandshake::start(cfg)?;
        stream.write_all(&m1).await?;
        // <- e, ee, s, es ; -> s, se
        let (done, m3) = hs.read_response(&next(stream).await?)?;
        let (waiting, proof) = done.prove(key, Some(certificate))?;
        let mut out = m3;
        out.extend_from_slice(&proof);
        stream.write_all(&out).await?;
        await_identity(stream, waiting).await
    })
    .await
    .map_err(|_| SessionError::Timeout)?
}

/// Agent side of the handshake (Noise responder): the operator is verified first, then the
/// agent proves itself.
pub async fn agent_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut FramedStream<S>,
    cfg: E2eConfig,
    key: &PrivateIdentity,
) -> Result<Session, SessionError> {
    let verified = agent_verify_operator(stream, cfg).await?;
    agent_prove(stream, verified, key).await
}

/// The agent's first half: the Noise handshake and the operator's proof, verified. Nothing has
/// been signed yet; a caller with limited slots (a kiosk) takes one only after this.
pub async fn agent_verify_operator<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut FramedStream<S>,
    cfg: E2eConfig,
) -> Result<PeerVerified, SessionError> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let hs = AgentHandshake::new(cfg)?;
        // -> e ; <- e, ee, s, es
        let (hs, m2) = hs.read_hello(&next(stream).await?)?;
        stream.write_all(&m2).await?;
        // -> s, se (the operator's nonce opens its commitment)
        let done = hs.read_finish(&next(stream).await?)?;
        // The operator's identity proof follows at once; it is checked before the agent signs.
        let mut verifying = done.verify_peer_first();
        loop {
            match verifying.receive(&next(stream).await?, clock::now_unix())? {
                PeerCheck::Pending(v) => verifying = v,
                PeerCheck::Verified(v) => return Ok(v),
            }
        }
    })
    .await
    .map_err(|_| SessionError::Timeout)?
}

/// The agent's second half: signs the transcript and sends its proof.
pub async fn agent_prove<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut FramedStream<S>,
    verified: PeerVerified,
    key: &PrivateIdentity,
) -> Result<Session, SessionError> {
    let (session, proof) = verified.prove(key)?;
    stream.write_all(&proof).await?;
    Ok(session)
}

/// How a session run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The peer closed with a reason.
    PeerClosed(CloseReason),
    /// This side closed with a reason.
    LocalClosed(CloseReason),
    /// The stream ended or failed without a close message.
    Abnormal(String),
}

impl SessionEnd {
    /// A reason text for users and JSON events.
    pub fn reason(&self) -> String {
        match self {
            SessionEnd::PeerClosed(r) | SessionEnd::LocalClosed(r) => r.to_string(),
            SessionEnd::Abnormal(why) => format!("abnormal end: {why}"),
        }
    }

    /// Whether the session ended with an explicit close.
    pub fn is_normal(&self) -> bool {
        !matches!(self, SessionEnd::Abnormal(_))
    }

    /// Whether the other side refused the session: the customer declined or did not answer,
    /// or the agent found the operator not permitted. (A customer's own refusal is a normal
    /// end for the agent: `LocalClosed`.)
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            SessionEnd::PeerClosed(
                CloseReason::DeclinedByCustomer
                    | CloseReason::NoAnswerFromCustomer
                    | CloseReason::NotPermitted
            )
        )
    }
}

/// The application's side of a running session: what it wants sent, and where the
/// application messages that arrive go (everything except hello, ping, pong and close, which the
/// pump handles itself). Both channels are bounded, so a slow side applies backpressure.
#[derive(Debug)]
pub struct AppChannels {
    /// Messages to send; a `Close` sent here ends the session from this side.
    pub outgoing: mpsc::Receiver<Message>,
    /// Application messages received from the peer.
    pub incoming: mpsc::Sender<Message>,
}

impl AppChannels {
    /// Channels for an application that neither sends nor receives application messages;
    /// returns the application's ends too (keep them alive for as long as the session runs).
    pub fn pair(capacity: usize) -> (AppChannels, mpsc::Sender<Message>, mpsc::Receiver<Message>) {
        let (out_tx, out_rx) = mpsc::channel(capacity);
        let (in_tx, in_rx) = mpsc::channel(capacity);
        (
            AppChannels {
                outgoing: out_rx,
                incoming: in_tx,
            },
            out_tx,
            in_rx,
        )
    }
}

/// Runs an established session until either side closes it, the stream ends, or
/// `local_close` resolves (with the reason to send).
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut FramedStream<S>,
    session: &mut Session,
    hello: Message,
    local_close: impl Future<Output = CloseReason>,
    mut app: AppChannels,
) -> SessionEnd {
    tokio::pin!(local_close);
    if let Err(e) = send(stream, session, &hello).await {
        return write_failed(stream, session, e).await.into_end();
    }
    let mut pump = Pump {
        stream,
        session,
        liveness: Liveness::PATIENT,
        resumable: false,
    };
    match pump.run(local_close, &mut app).await {
        Outcome::End(end) => end,
        Outcome::Lost(why) => SessionEnd::Abnormal(why),
    }
}

/// One connection's run of an established session.
pub(crate) struct Pump<'a, S> {
    pub(crate) stream: &'a mut FramedStream<S>,
    pub(crate) session: &'a mut Session,
    pub(crate) liveness: Liveness,
    /// Whether a lost connection may be resumed (otherwise a silent peer is sent a close
    /// before the session ends).
    pub(crate) resumable: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Pump<'_, S> {
    /// Pumps until the session ends or the connection is lost.
    pub(crate) async fn run(
        &mut self,
        mut local_close: std::pin::Pin<&mut impl Future<Output = CloseReason>>,
        app: &mut AppChannels,
    ) -> Outcome {
        let (stream, session) = (&mut *self.stream, &mut *self.session);
        // A resumable session must notice a link that swallows everything even while a write
        // waits on it (a full send buffer): a write may take as long as the peer may be silent.
        let limit = self.resumable.then_some(self.liveness.idle_timeout);
        let mut last_rx = Instant::now();
        let mut ping_id = 0u64;
        let mut keepalive = tokio::time::interval(self.liveness.keepalive);
        keepalive.tick().await;
        let mut outgoing_open = true;
        loop {
            tokio::select! {
                reason = &mut local_close => {
                    // What the application queued before it decided to close goes out first.
                    while let Ok(msg) = app.outgoing.try_recv() {
                        if matches!(msg, Message::Close { .. })
                            || send_within(limit, stream, session, &msg).await.is_err()
                        {
                            break;
                        }
                    }
                    return Outcome::End(close_locally(stream, session, reason).await);
                }
                msg = app.outgoing.recv(), if outgoing_open => match msg {
                    Some(Message::Close { reason }) => {
                        return Outcome::End(close_locally(stream, session, reason).await);
                    }
                    Some(msg) => {
                        if let Err(e) = send_within(limit, stream, session, &msg).await {
                            return write_failed(stream, session, e).await;
                        }
                    }
                    None => outgoing_open = false,
                },
                _ = keepalive.tick() => {
                    if last_rx.elapsed() >= self.liveness.idle_timeout {
                        if !self.resumable {
                            if let Ok(bytes) = session.close(CloseReason::Timeout) {
                                let _ = stream.write_all(&bytes).await;
                            }
                        }
                        return Outcome::Lost("peer stopped answering".into());
                    }
                    ping_id += 1;
                    let ping = Message::Ping { id: ping_id, payload: Vec::new() };
                    if let Err(e) = send_within(limit, stream, session, &ping).await {
                        return write_failed(stream, session, e).await;
                    }
                }
                frame = stream.read_message() => {
                    let frame = match frame {
                        Ok(Some(f)) => f,
                        Ok(None) => return match session.ending() {
                            Ending::Closed(r) => Outcome::End(SessionEnd::PeerClosed(r)),
                            _ => Outcome::Lost("connection closed without a close message".into()),
                        },
                        Err(e) => return Outcome::Lost(e.to_string()),
                    };
                    last_rx = Instant::now();
                    match session.receive(&frame) {
                        Ok(None) => {}
                        Ok(Some(Message::Close { reason })) => {
                            return Outcome::End(SessionEnd::PeerClosed(reason));
                        }
                        Ok(Some(Message::Ping { id, payload })) => {
                            let pong = Message::Pong { id, payload };
                            if let Err(e) = send_within(limit, stream, session, &pong).await {
                                return write_failed(stream, session, e).await;
                            }
                        }
                        Ok(Some(Message::Pong { .. } | Message::Hello { .. })) => {}
                        Ok(Some(other)) => {
                            // The application may have stopped listening (it is shutting
                            // down); the session then only waits for the close.
                            let _ = app.incoming.send(other).await;
                        }
                        Err(e) => {
                            // Never resumed: a message that does not open is an attack or a
                            // broken peer, not a broken connection.
                            tracing::warn!(error = %e, "ending session after a protocol error");
                            return Outcome::End(SessionEnd::Abnormal(e.to_string()));
                        }
                    }
                }
            }
        }
    }
}

impl Outcome {
    /// The end, for a session that is not resumed.
    pub(crate) fn into_end(self) -> SessionEnd {
        match self {
            Outcome::End(end) => end,
            Outcome::Lost(why) => SessionEnd::Abnormal(why),
        }
    }
}

/// How long a failed write waits for what the peer sent before the connection broke.
const CLOSE_READ_GRACE: Duration = Duration::from_secs(1);

/// A write failed (the peer closed, the relay tore the pair down): the peer's close message may
/// still be waiting to be read, sent just before the connection went. Reads what is left for a
/// moment; a close found there is a normal end, anything else the abnormal end it looks like.
async fn write_failed<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut FramedStream<S>,
    session: &mut Session,
    error: impl std::fmt::Display,
) -> Outcome {
    let lost = Outcome::Lost(error.to_string());
    let drained = tokio::time::timeout(CLOSE_READ_GRACE, async {
        while let Ok(Some(frame)) = stream.read_message().await {
            match session.receive(&frame) {
                Ok(Some(Message::Close { reason })) => return Some(reason),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await;
    match drained {
        Ok(Some(reason)) => Outcome::End(SessionEnd::PeerClosed(reason)),
        _ => lost,
    }
}

async fn close_locally<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut FramedStream<S>,
    session: &mut Session,
    reason: CloseReason,
) -> SessionEnd {
    if let Ok(bytes) = session.close(reason) {
        let _ = stream.write_all(&bytes).await;
    }
    let _ = stream.shutdown().await;
    SessionEnd::LocalClosed(reason)
}

/// Sends `msg`, failing if the write takes longer than `limit` (when given).
async fn send_within<S: AsyncRead + AsyncWrite + Unpin>(
    limit: Option<Duration>,
    stream: &mut FramedStream<S>,
    session: &mut Session,
    msg: &Message,
) -> Result<(), SessionError> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, send(stream, session, msg))
            .await
            .map_err(|_| SessionError::Stalled)?,
        None => send(stream, session, msg).await,
    }
}

pub(crate) async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut FramedStream<S>,
    session: &mut Session,
    msg: &Message,
) -> Result<(), SessionError> {
    let bytes = session.send(msg)?;
    stream.write_all(&bytes).await?;
    Ok(())
}
