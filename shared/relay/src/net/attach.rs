//! The operator of a running session attaches a second connection and hands in the events the
//! agent signed inside the end-to-end session, which the relay cannot read (consent asked and
//! answered, control revoked, the agent's view of the end): see
//! [`sightline_core::session_events`]; and the session's recording, which
//! [`crate::net::recording_upload`] stores. When the relay ends the session (a revoked
//! certificate, a stalled recording) the connection is told why and closed.
//!
//! The connection must prove it is the session's operator: the certificate issued at the login
//! that created the session (same serial, valid, issued by the same authority) and a signature
//! by the key it names over this channel and the session ([`AttachTranscript`]). Each event
//! must verify against the key the agent proved at join and belong to the session. Events go
//! to the audit log in their numbering; a number skipped (a viewer that withheld an event) is
//! recorded as a gap before the next event, and an event that does not verify is recorded as
//! refused and ends the connection.

use crate::context::Relay;
use crate::net::conn::Conn;
use crate::net::live::{Ended, LiveSession};
use crate::net::recording_upload::{self, Piece};
use crate::net::replies;
use crate::store::audit::{self, NewEntry};
use sightline_core::cert::OperatorCert;
use sightline_core::identity::{PublicIdentity, MIN_PEER_BITS};
use sightline_core::relay_proto::{ClientMessage, RelayMessage, SessionId, MAX_EVENTS_PER_MESSAGE};
use sightline_core::session_events::{EventBody, SignedEvent};
use sightline_core::session_proofs::AttachTranscript;
use sightline_net::clock;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long an attached connection may stay silent.
const IDLE: Duration = Duration::from_secs(120);

/// An attach request.
#[derive(Debug)]
pub struct Attach {
    /// The session.
    pub session_id: SessionId,
    /// The operator's certificate.
    pub certificate: OperatorCert,
    /// The operator's key (SPKI DER).
    pub operator_key: Vec<u8>,
    /// The signature over the transcript.
    pub proof: Vec<u8>,
}

/// Checks the attach request, then stores the events and recording pieces handed in until
/// the connection ends.
pub async fn attach(relay: Arc<Relay>, mut conn: Conn, req: Attach) {
    let Some(live) = relay.live.get(&req.session_id) else {
        tracing::warn!(peer = %conn.peer, "attach refused: no such session running");
        return conn.close_with(&replies::session_ended()).await;
    };
    if let Err(why) = check(&conn, &live, &req) {
        tracing::warn!(peer = %conn.peer, operator = %live.operator, %why, "attach refused");
        return conn.close_with(&replies::bad_request(&why)).await;
    }
    let session = hex::encode(req.session_id);
    let recording_stored = match recording_upload::stored(&relay, &live, &session).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(%session, error = %e, "cannot read the session's recording");
            return conn.close_with(&replies::internal()).await;
        }
    };
    if let Err(e) = conn
        .send(&RelayMessage::Attached { recording_stored })
        .await
    {
        return tracing::debug!(peer = %conn.peer, error = %e, "closing connection");
    }
    let answer = serve(&relay, &mut conn, &live, &req.session_id, &session).await;
    // Whatever the uploader stored goes to the audit log now, not when it comes back.
    recording_upload::close_segment(&relay, &live, &session, true).await;
    if let Some(answer) = answer {
        if let RelayMessage::Error { message, .. } = &answer {
            tracing::warn!(peer = %conn.peer, %session, why = %message, "attached connection closed");
        }
        conn.close_with(&answer).await;
    }
}

/// Serves an attached connection until it ends (`None`) or is to be closed with an answer (a
/// refusal, or the relay ending the session).
async fn serve(
    relay: &Relay,
    conn: &mut Conn,
    live: &Arc<LiveSession>,
    session_id: &SessionId,
    session: &str,
) -> Option<RelayMessage> {
    // Only an end from now on: a connection attached after the relay ended the session may
    // still hand in what it has, within the grace period.
    let mut end = live.watch_end();
    loop {
        let segment_due = recording_upload::segment_deadline(live).await;
        let msg = tokio::select! {
            m = tokio::time::timeout(IDLE, conn.receive()) => m,
            _ = until(segment_due) => {
                recording_upload::close_segment(relay, live, session, false).await;
                continue;
            }
            reason = ended_by_relay(&mut end) => {
                return Some(replies::session_ended_because(&reason));
            }
        };
        let reply = match msg {
            Ok(Ok(Some(ClientMessage::SessionEvents { events }))) => {
                if events.len() > MAX_EVENTS_PER_MESSAGE {
                    Err(replies::bad_request("too many events in one message"))
                } else {
                    store(relay, live, session_id, session, events)
                        .await
                        .map(|last| RelayMessage::EventsStored { last })
                        .map_err(|why| replies::bad_request(&why))
                }
            }
            Ok(Ok(Some(ClientMessage::RecordingChunk { offset, data, last }))) => {
                let piece = Piece { offset, data, last };
                recording_upload::piece(relay, live, session, piece).await
            }
            Ok(Ok(Some(_))) => Err(replies::bad_request(
                "an attached connection only hands in events and recordings",
            )),
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return None,
        };
        match reply {
            Ok(reply) => {
                if conn.send(&reply).await.is_err() {
                    return None;
                }
            }
            Err(refusal) => return Some(refusal),
        }
    }
}

/// Sleeps until `at`; never without one.
async fn until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Resolves with the reason once the relay ends the session (never for any other end).
async fn ended_by_relay(end: &mut watch::Receiver<Option<Ended>>) -> String {
    loop {
        if end.changed().await.is_err() {
            return std::future::pending().await;
        }
        if let Some(reason) = end
            .borrow_and_update()
            .as_ref()
            .and_then(|e| e.by_relay.clone())
        {
            return reason;
        }
    }
}

/// Whether `req` comes from the operator whose login created the session.
fn check(conn: &Conn, live: &LiveSession, req: &Attach) -> Result<(), String> {
    let body = live
        .authority
        .verify_operator(&req.certificate, clock::now_unix())
        .map_err(|e| format!("certificate not valid: {e}"))?;
    if body.serial != live.serial {
        return Err("not the certificate the session was created with".into());
    }
    let key = PublicIdentity::from_spki_der(&req.operator_key, MIN_PEER_BITS)
        .map_err(|e| format!("operator key rejected: {e}"))?;
    if key.fingerprint() != body.key {
        return Err("the key is not the one the certificate names".into());
    }
    let transcript = AttachTranscript {
        channel_binding: conn.channel.handshake_hash(),
        session_id: &req.session_id,
        operator_key: &req.operator_key,
    };
    transcript
        .verify(&key, &req.proof)
        .map_err(|_| "the attach proof does not verify".to_string())
}

/// Verifies `events` against the agent's key and writes them, with any gap before them, to
/// the audit log; the highest number on record. A batch with one bad event is refused whole
/// and the refusal recorded.
async fn store(
    relay: &Relay,
    live: &Arc<LiveSession>,
    session_id: &SessionId,
    session: &str,
    events: Vec<SignedEvent>,
) -> Result<u32, String> {
    let Some(agent_key) = &live.agent_key else {
        return Err(
            "the agent did not prove a key when it joined: its events cannot be checked".into(),
        );
    };
    let verified: Result<Vec<EventBody>, _> = events
        .iter()
        .map(|e| e.verify(agent_key, session_id))
        .collect();
    let (live, session) = (live.clone(), session.to_string());
    let actor = format!("agent {}", short(&agent_key.fingerprint().to_string()));
    let written = relay
        .with_db(move |db| {
            let now = clock::now_unix();
            let write = |db: &mut crate::store::db::Database, action: &str, detail: &str| {
                let entry = NewEntry {
                    at: now,
                    actor: &actor,
                    action,
                    subject: Some(&live.operator),
                    detail: Some(detail),
                    session: Some(&session),
                };
                audit::append(db, &entry).map(drop)
            };
            let mut bodies = match verified {
                Ok(b) => b,
                Err(e) => {
                    let why = format!("the viewer handed in an event that does not verify: {e}");
                    write(db, "session.events_refused", &why)?;
                    return Ok(Err(why));
                }
            };
            bodies.sort_by_key(|b| b.seq);
            let mut last = live.last_event();
            for body in bodies {
                if body.seq <= *last {
                    continue; // handed in before
                }
                if body.seq > *last + 1 {
                    let gap = format!(
                        "events #{} to #{} never reached the relay",
                        *last + 1,
                        body.seq - 1
                    );
                    write(db, "session.events_missing", &gap)?;
                }
                let detail = format!("#{}: {}", body.seq, body.event.detail());
                write(db, body.event.action(), &detail)?;
                *last = body.seq;
            }
            Ok(Ok(*last))
        })
        .await
        .map_err(|e| format!("cannot write the audit log: {e}"))?;
    relay.audit_recorded();
    written
}

/// The first 16 hex digits of a fingerprint, for the audit log's actor column.
fn short(fingerprint: &str) -> &str {
    fingerprint.get(..16).unwrap_or(fingerprint)
}
