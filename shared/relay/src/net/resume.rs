//! A side of a paired session comes back after its connection broke: its resume token is
//! looked up ([`crate::net::tickets`]) and the new connection goes to the session's task
//! ([`crate::net::paired`]), which pairs the two sides again once both are back. An unknown session,
//! a wrong or old token, or a session that is over all get the same answer: the session ended
//! (with the reason when the relay ended it and the token is that side's last one).
//!
//! Tokens are 256 random bits, sent only inside each side's channel: guessing one is hopeless,
//! so no brute-force counter is spent on them.

use crate::context::Relay;
use crate::net::conn::Conn;
use crate::net::replies;
use crate::net::tickets::{Arrival, Side};
use sightline_core::relay_proto::{ResumeToken, SessionId};
use std::sync::Arc;

/// Hands `conn` to the session `session_id` if `token` is one of its current tokens and the
/// listener serves that side's role, or answers why not and closes it.
pub async fn resume(relay: Arc<Relay>, conn: Conn, session_id: SessionId, token: ResumeToken) {
    let session = hex::encode(session_id);
    let peer = conn.peer;
    let (side, to_session) = match relay.tickets.claim(&session_id, &token) {
        Ok(found) => found,
        Err(ended) => {
            tracing::warn!(%peer, %session, "resume refused: session ended or token not valid");
            let answer = match ended.reason {
                // One of the session's own sides: it can tell its user why.
                Some(reason) => replies::session_ended_because(&reason),
                None => replies::session_ended(),
            };
            return conn.close_with(&answer).await;
        }
    };
    let (served, refusal) = match side {
        Side::Operator => (conn.roles.operator, replies::operators_not_here()),
        Side::Agent => (conn.roles.customer, replies::customers_not_here()),
    };
    if !served {
        tracing::warn!(%peer, %session, side = side.name(), "resume refused: its role is not served on this listener");
        return conn.close_with(&refusal).await;
    }
    match to_session.try_send(Arrival { side, conn }) {
        Ok(()) => tracing::info!(%peer, %session, side = side.name(), "resume token accepted"),
        // The session is ending right now, or a side floods it with reconnections.
        Err(e) => {
            tracing::warn!(%peer, %session, side = side.name(), "resume refused: the session is not waiting");
            e.into_inner()
                .conn
                .close_with(&replies::session_ended())
                .await
        }
    }
}
