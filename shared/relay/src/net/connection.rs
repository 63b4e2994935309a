//! One client connection from accept to end: the channel handshake under a deadline, then
//! requests routed by state ([`crate::net::route`]) to login, session creation or join, under the
//! login deadline and refusal count of [`crate::net::probation`] until the client logs in.
//!
//! Any decryption or parse failure ends the connection without an answer: the peer is broken
//! or hostile, and details would only help it.

use crate::accounts::login::{self, Attempt, LoggedIn, LoginOutcome, Possession};
use crate::config::Roles;
use crate::context::{InternalError, Relay};
use crate::net::admission::Slot;
use crate::net::arrival::Arrived;
use crate::net::conn::{self, Conn, ConnError};
use crate::net::probation::{AfterRefusal, Probation};
use crate::net::replies;
use crate::net::route::{route, Route};
use crate::net::{attach, host, join, oidc_login, resume};
use rand_core::{OsRng, RngCore};
use sightline_core::login_proof::Challenge;
use sightline_core::relay_channel;
use sightline_core::relay_proto::RelayMessage;
use sightline_net::clock;
use sightline_net::stream::{BoxIo, FramedStream};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a handshake did not complete.
#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error(transparent)]
    Internal(#[from] InternalError),
    #[error("closed before the handshake")]
    Closed,
    #[error("handshake timed out")]
    Timeout,
}

async fn handshake(
    relay: &Relay,
    io: BoxIo,
    peer: SocketAddr,
    slot: Slot,
    roles: Roles,
) -> Result<Conn, HandshakeError> {
    let mut stream = FramedStream::new(io);
    // -> e
    let first = stream
        .read_message()
        .await
        .map_err(ConnError::from)?
        .ok_or(HandshakeError::Closed)?;
    let creds = relay
        .credentials
        .current(clock::now_unix())
        .await
        .map_err(InternalError::from)?;
    // <- e, ee, s, es
    let (channel, reply) =
        relay_channel::respond(&creds, &first, clock::seed(), conn::channel_config())
            .map_err(ConnError::from)?;
    stream.write_all(&reply).await.map_err(ConnError::from)?;
    Ok(Conn {
        stream,
        channel,
        peer,
        slot,
        identity: None,
        roles,
    })
}

/// Serves one arrived connection to its end, offering the listener's `roles`.
pub async fn handle(relay: Arc<Relay>, arrived: Arrived, roles: Roles) {
    let Arrived { io, peer, slot, .. } = arrived;
    let deadline = Duration::from_secs(relay.config.handshake_timeout_secs);
    let hs = handshake(&relay, io, peer, slot, roles);
    let conn = match tokio::time::timeout(deadline, hs).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(HandshakeError::Internal(e))) => {
            return tracing::error!(%peer, error = %e, "handshake failed on the relay side");
        }
        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "handshake failed"),
        Err(_) => {
            return tracing::debug!(%peer, error = %HandshakeError::Timeout, "handshake failed")
        }
    };
    // Boxed: the request futures are large, and a task's stack is not.
    Box::pin(serve_requests(relay, conn)).await;
}

async fn serve_requests(relay: Arc<Relay>, mut conn: Conn) {
    let mut probation = Probation::new(
        Instant::now(),
        Duration::from_secs(relay.config.login_timeout_secs),
        Duration::from_secs(relay.config.idle_timeout_secs),
    );
    let mut operator: Option<LoggedIn> = None;
    // The challenge for the next login attempt on this connection; each attempt uses it up.
    let mut challenge: Option<Challenge> = None;
    loop {
        let Some(wait) = probation.wait(Instant::now(), operator.is_some()) else {
            return tracing::debug!(peer = %conn.peer, "closing connection: no login or join in time");
        };
        let msg = match tokio::time::timeout(wait, conn.receive()).await {
            Ok(Ok(Some(msg))) => msg,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                return tracing::debug!(peer = %conn.peer, error = %e, "closing connection");
            }
            Err(_) if operator.is_some() => {
                return tracing::debug!(peer = %conn.peer, "closing idle connection")
            }
            Err(_) => {
                return tracing::debug!(peer = %conn.peer, "closing connection: no login or join in time")
            }
        };
        let route = route(operator.is_some(), msg);
        if let Some(reply) = role_refusal(conn.roles, &route) {
            tracing::warn!(peer = %conn.peer, "request refused: its role is not served on this listener");
            if !refuse(&mut conn, &mut probation, &reply).await {
                return;
            }
            continue;
        }
        match route {
            Route::Login {
                user,
                password,
                second_factor,
                operator_key,
                proof,
            } => {
                let attempt = Attempt {
                    ip: conn.peer.ip(),
                    user,
                    password,
                    second_factor,
                    operator_key,
                    possession: Possession {
                        channel_binding: *conn.channel.handshake_hash(),
                        challenge: challenge.take(),
                        proof,
                    },
                };
                let outcome = login::attempt(&relay, attempt).await.map(Ok);
                match answer_login(&relay, &mut conn, &mut probation, &mut operator, outcome).await
                {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(last) => return conn.close_with(&last).await,
                }
            }
            Route::OidcLogin {
                provider,
                operator_key,
                proof,
                flow,
            } => {
                let possession = Possession {
                    channel_binding: *conn.channel.handshake_hash(),
                    challenge: challenge.take(),
                    proof,
                };
                let asked = oidc_login::Asked {
                    provider,
                    operator_key,
                    possession,
                    flow,
                };
                let outcome = oidc_login::attempt(&relay, &mut conn, asked)
                    .await
                    .map(|ended| match ended {
                        oidc_login::Ended::Outcome(o) => Ok(o),
                        oidc_login::Ended::Refused(reply) => Err(reply),
                    });
                match answer_login(&relay, &mut conn, &mut probation, &mut operator, outcome).await
                {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(last) => return conn.close_with(&last).await,
                }
            }
            Route::Challenge => {
                let mut fresh = [0u8; 32];
                OsRng.fill_bytes(&mut fresh);
                challenge = Some(fresh);
                let reply = RelayMessage::LoginChallenge { challenge: fresh };
                if let Err(e) = conn.send(&reply).await {
                    return tracing::debug!(peer = %conn.peer, error = %e, "closing connection");
                }
            }
            Route::CreateSession => match operator.take() {
                Some(who) => match relay
                    .may_start_sessions(&who.name, who.local, who.serial)
                    .await
                {
                    Ok(true) => return Box::pin(host::host(relay, conn, who)).await,
                    Ok(false) => {
                        tracing::warn!(operator = %who.name, "session refused: account disabled or removed, or certificate revoked");
                        return conn.close_with(&replies::account_inactive()).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot check the account");
                        return conn.close_with(&replies::internal()).await;
                    }
                },
                // route() only yields CreateSession for a logged-in connection.
                None => return conn.close_with(&replies::not_logged_in()).await,
            },
            Route::Join { code, agent } => {
                return Box::pin(join::join(relay, conn, code, agent)).await
            }
            Route::Attach {
                session_id,
                certificate,
                operator_key,
                proof,
            } => {
                let attach = attach::Attach {
                    session_id,
                    certificate,
                    operator_key,
                    proof,
                };
                return Box::pin(attach::attach(relay, conn, attach)).await;
            }
            Route::Resume { session_id, token } => {
                return Box::pin(resume::resume(relay, conn, session_id, token)).await
            }
            Route::Refuse { reply, close: true } => return conn.close_with(&reply).await,
            Route::Refuse {
                reply,
                close: false,
            } => {
                if !refuse(&mut conn, &mut probation, &reply).await {
                    return;
                }
            }
        }
    }
}

/// Answers a login attempt's outcome (or the refusal it already has in words): the
/// certificate, and the connection is logged in as `operator`; or a refusal, counted. `false`
/// when the connection is done; the last answer when the caller must close the connection
/// with it (a key not proven or unusable, a failure on the relay's side).
async fn answer_login(
    relay: &Relay,
    conn: &mut Conn,
    probation: &mut Probation,
    operator: &mut Option<LoggedIn>,
    outcome: Result<Result<LoginOutcome, RelayMessage>, InternalError>,
) -> Result<bool, RelayMessage> {
    let reply = match outcome {
        Ok(Ok(LoginOutcome::Accepted { certificate, who })) => {
            let authority = who.authority.clone();
            *operator = Some(who);
            RelayMessage::LoginOk {
                certificate,
                authority,
                revocations: relay.revocations.current().list.clone(),
            }
        }
        Ok(Err(refusal)) => refusal,
        Ok(Ok(LoginOutcome::Failed)) => replies::login_failed(),
        Ok(Ok(LoginOutcome::Unavailable)) => replies::auth_unavailable(),
        Ok(Ok(LoginOutcome::RateLimited(wait))) => replies::rate_limited(wait),
        Ok(Ok(LoginOutcome::NotProven(_))) => return Err(replies::not_proven()),
        Ok(Ok(LoginOutcome::BadKey(why))) => {
            return Err(replies::bad_request(&format!(
                "operator key rejected: {why}"
            )))
        }
        Err(e) => {
            tracing::error!(peer = %conn.peer, error = %e, "login failed on the relay side");
            return Err(replies::internal());
        }
    };
    if operator.is_none() {
        // Any answer but LoginOk refuses the attempt.
        return Ok(refuse(conn, probation, &reply).await);
    }
    if let Err(e) = conn.send(&reply).await {
        tracing::debug!(peer = %conn.peer, error = %e, "closing connection");
        return Ok(false);
    }
    Ok(true)
}

/// The refusal for a request whose role the listener does not serve. A resume is judged by
/// its side once its token is known ([`resume::resume`]).
fn role_refusal(roles: Roles, route: &Route) -> Option<RelayMessage> {
    match route {
        Route::Login { .. }
        | Route::OidcLogin { .. }
        | Route::Challenge
        | Route::CreateSession
        | Route::Attach { .. }
            if !roles.operator =>
        {
            Some(replies::operators_not_here())
        }
        Route::Join { .. } if !roles.customer => Some(replies::customers_not_here()),
        _ => None,
    }
}

/// Answers a refused request and counts it; `false` when the connection is done (the answer
/// could not be sent, or this was one refusal too many and the connection is now closed).
async fn refuse(conn: &mut Conn, probation: &mut Probation, reply: &RelayMessage) -> bool {
    let after = probation.refused();
    if let Err(e) = conn.send(reply).await {
        tracing::debug!(peer = %conn.peer, error = %e, "closing connection");
        return false;
    }
    match after {
        AfterRefusal::Continue => true,
        AfterRefusal::Close => {
            tracing::debug!(peer = %conn.peer, "closing connection: too many refused requests");
            let _ = conn.stream.shutdown().await;
            false
        }
    }
}
