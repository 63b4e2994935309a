//! A relayed session that survives a broken connection (a Wi-Fi switch, a VPN that
//! reconnects): the pump pings often and counts the connection as lost after a few seconds of
//! silence, then comes back to the relay with its resume token (retrying with backoff) until
//! the relay has paired both sides again or [`RESUME_WINDOW`] has passed. Once paired again,
//! operator and agent resume the end-to-end session ([`sightline_core::resume`]): same peer,
//! same verification code, fresh keys. The application hears [`LinkEvent`]s; what it sends
//! while the connection is down is dropped (a close still ends the session).
//!
//! A failed resumption handshake is never retried: it means someone other than the peer
//! answered, and the session ends (fail closed).

use crate::clock;
use crate::dial::Relay;
use crate::relay_client::{ClientError, RelayClient};
use crate::session::{AppChannels, Liveness, Outcome, Pump, SessionEnd, SessionError};
use crate::stream::{BoxIo, FramedStream};
use sightline_core::e2e::{Role, Session};
use sightline_core::identity::Fingerprint;
use sightline_core::messages::{CloseReason, Message};
use sightline_core::relay_proto::{RelayErrorKind, ResumeToken, SessionId};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long a side may be gone before the session ends (the relay waits as long).
pub const RESUME_WINDOW: Duration = Duration::from_secs(30);
/// Pings and loss detection of a resumable session: a ping every 2 s, lost after 6 s without
/// anything from the peer (an end of stream or a reset is noticed at once).
pub const RESUMABLE: Liveness = Liveness {
    keepalive: Duration::from_secs(2),
    idle_timeout: Duration::from_secs(6),
};
/// One attempt to reach the relay (connect and channel handshake); a link that swallows
/// packets is given up on after this and tried again.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The resumption handshake, once both sides are paired again.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// First and longest pause between attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(2));

/// What the application hears about the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The connection was lost; the session waits (at most `within`) for it to come back.
    /// Nothing sent meanwhile arrives.
    Reconnecting {
        /// Why it counts as lost.
        why: String,
        /// How long it may take.
        within: Duration,
    },
    /// The session goes on over a new connection, with fresh keys.
    Resumed,
}

/// Where and how to come back to a relayed session.
#[derive(Debug, Clone)]
pub struct RelayLink {
    /// The relay's routes and how to dial them; a new connection tries the route that worked
    /// last first, then the whole list.
    pub relay: Relay,
    /// The pinned fingerprint of the relay's root key.
    pub pin: Fingerprint,
    /// The session.
    pub session_id: SessionId,
    /// The token of the last pairing (replaced at each resumption).
    pub token: ResumeToken,
}

/// Why coming back failed.
enum Failed {
    /// The application ended the session meanwhile.
    Closed(CloseReason),
    /// The window passed or the relay said the session is over.
    Gone(String),
    /// The peer failed the resumption handshake: never retried.
    Refused(String),
}

/// Runs a relayed session like [`crate::session::run`], resuming it over a new connection
/// each time its connection is lost, within [`RESUME_WINDOW`]; `link` reports each loss and
/// resumption. The session ends as before otherwise; a loss that is not repaired in time ends
/// it with "connection lost".
pub async fn run(
    stream: &mut FramedStream<BoxIo>,
    session: &mut Session,
    hello: Message,
    local_close: impl Future<Output = CloseReason>,
    mut app: AppChannels,
    mut relay: RelayLink,
    link: mpsc::Sender<LinkEvent>,
) -> SessionEnd {
    tokio::pin!(local_close);
    if let Err(e) = crate::session::send(stream, session, &hello).await {
        tracing::debug!(error = %e, "the first message did not go out");
    }
    loop {
        let mut pump = Pump {
            stream: &mut *stream,
            session: &mut *session,
            liveness: RESUMABLE,
            resumable: true,
        };
        let why = match pump.run(local_close.as_mut(), &mut app).await {
            Outcome::End(end) => return end,
            Outcome::Lost(why) => why,
        };
        tracing::warn!(reason = %why, "connection lost; resuming the session");
        // Let the relay know at once, if it can still hear: it then closes the other side's
        // connection too, and both come back sooner.
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
        let _ = link.try_send(LinkEvent::Reconnecting {
            why: why.clone(),
            within: RESUME_WINDOW,
        });
        // Boxed: connecting and handshaking make large futures, and a thread's stack is small.
        let back = Box::pin(come_back(
            &mut relay,
            session,
            local_close.as_mut(),
            &mut app,
        ));
        match back.await {
            Ok(new) => {
                *stream = new;
                tracing::info!("session resumed");
                let _ = link.try_send(LinkEvent::Resumed);
            }
            Err(Failed::Closed(reason)) => return SessionEnd::LocalClosed(reason),
            Err(Failed::Gone(last)) => {
                return SessionEnd::Abnormal(format!("connection lost ({why}; {last})"))
            }
            Err(Failed::Refused(e)) => {
                tracing::warn!(error = %e, "the session could not be resumed securely");
                return SessionEnd::Abnormal(format!("resumption refused: {e}"));
            }
        }
    }
}

/// Tries to come back until the window passes, the relay says the session is over, or the
/// application ends it; what it sends meanwhile is dropped.
async fn come_back(
    relay: &mut RelayLink,
    session: &mut Session,
    mut local_close: Pin<&mut impl Future<Output = CloseReason>>,
    app: &mut AppChannels,
) -> Result<FramedStream<BoxIo>, Failed> {
    let deadline = Instant::now() + RESUME_WINDOW;
    let mut pause = BACKOFF.0;
    let mut last = String::from("not resumed in time");
    let mut outgoing_open = true;
    loop {
        if Instant::now() >= deadline {
            return Err(Failed::Gone(last));
        }
        let mut trying = Box::pin(attempt(relay, session, deadline));
        let result = loop {
            tokio::select! {
                r = &mut trying => break r,
                reason = local_close.as_mut() => return Err(Failed::Closed(reason)),
                msg = app.outgoing.recv(), if outgoing_open => match msg {
                    Some(Message::Close { reason }) => return Err(Failed::Closed(reason)),
                    // Anything else is dropped: it would only arrive stale, if at all.
                    Some(_) => {}
                    None => outgoing_open = false,
                },
                _ = tokio::time::sleep_until(deadline) => return Err(Failed::Gone(last)),
            }
        };
        match result {
            Ok(stream) => return Ok(stream),
            Err(Attempt::Refused(e)) => return Err(Failed::Refused(e)),
            Err(Attempt::Over(e)) => return Err(Failed::Gone(e)),
            Err(Attempt::Retry(e)) => {
                tracing::debug!(error = %e, "resumption attempt failed; trying again");
                last = e;
            }
        }
        let wait =
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        tokio::select! {
            _ = wait => {}
            reason = local_close.as_mut() => return Err(Failed::Closed(reason)),
        }
        pause = (pause * 2).min(BACKOFF.1);
    }
}

/// Why one attempt failed.
enum Attempt {
    /// Try again (the relay is unreachable, the connection broke again).
    Retry(String),
    /// The relay says the session is over.
    Over(String),
    /// The resumption handshake failed.
    Refused(String),
}

/// One attempt: connect to the relay, present the token, wait until both sides are paired
/// again (until `deadline`), then resume the end-to-end session.
async fn attempt(
    relay: &mut RelayLink,
    session: &mut Session,
    deadline: Instant,
) -> Result<FramedStream<BoxIo>, Attempt> {
    let retry = |e: ClientError| Attempt::Retry(e.to_string());
    let client = tokio::time::timeout(
        ATTEMPT_TIMEOUT,
        Box::pin(RelayClient::connect_to(&relay.relay, relay.pin)),
    )
    .await
    .map_err(|_| Attempt::Retry("the relay did not answer".into()))?
    .map_err(retry)?;
    let wait = deadline.saturating_duration_since(Instant::now());
    let paired = match Box::pin(client.resume(relay.session_id, relay.token, wait)).await {
        Ok(p) => p,
        Err(ClientError::Refused {
            kind: RelayErrorKind::SessionEnded,
            message,
            ..
        }) => return Err(Attempt::Over(message)),
        Err(e) => return Err(retry(e)),
    };
    relay.token = paired.resume_token;
    let mut stream = paired.stream;
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut stream, session)).await {
        Ok(Ok(())) => Ok(stream),
        Ok(Err(SessionError::Protocol(e))) => Err(Attempt::Refused(e.to_string())),
        Ok(Err(e)) => Err(Attempt::Retry(e.to_string())),
        Err(_) => Err(Attempt::Retry("the resumption handshake timed out".into())),
    }
}

/// The resumption handshake over the new stream: the operator offers, the agent answers.
async fn handshake(
    stream: &mut FramedStream<BoxIo>,
    session: &mut Session,
) -> Result<(), SessionError> {
    match session.role() {
        Role::Operator => {
            let (offer, m1) = session.offer_resume(&clock::seed())?;
            // -> count, psk, e, es, ss
            stream.write_all(&m1).await?;
            // <- e, ee, se
            let m2 = stream.read_message().await?.ok_or(SessionError::Closed)?;
            session.complete_resume(offer, &m2)?;
        }
        Role::Agent => {
            let m1 = stream.read_message().await?.ok_or(SessionError::Closed)?;
            let m2 = session.answer_resume(&m1, &clock::seed())?;
            stream.write_all(&m2).await?;
        }
    }
    Ok(())
}
