//! A logged-in operator's session: hand out a code, wait for the customer's agent (or the
//! operator leaving, or the code expiring), then run the paired session ([`crate::net::paired`]).

use crate::accounts::login::LoggedIn;
use crate::context::Relay;
use crate::net::conn::Conn;
use crate::net::paired;
use crate::net::registry::Registration;
use crate::net::replies;
use crate::store::audit::{self, NewEntry};
use rand_core::OsRng;
use sightline_core::relay_proto::{RelayMessage, SessionId};
use sightline_net::clock;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Creates a session for the logged-in operator `who` on `conn` and runs it to its end.
pub async fn host(relay: Arc<Relay>, mut conn: Conn, who: LoggedIn) {
    let operator = who.name.clone();
    let ttl = relay.config.code_ttl_secs;
    let expires_at = clock::now_unix().saturating_add(ttl);
    let (handoff, mut arrival) = oneshot::channel::<Conn>();
    let reg = match relay
        .registry
        .register(&operator, expires_at, handoff, &mut OsRng)
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, %operator, "cannot create a session");
            return conn.close_with(&replies::internal()).await;
        }
    };
    let Registration {
        code,
        session_id,
        expires_at,
    } = reg;
    // Durable before the code is out: a code the log does not know never admits anyone.
    let issued = format!("expires {}", sightline_net::cli::utc(expires_at));
    if !audit_code(
        &relay,
        "code.issued",
        &conn.peer.to_string(),
        &operator,
        &session_id,
        issued,
    )
    .await
    {
        relay.registry.withdraw(&code, &session_id);
        return conn.close_with(&replies::internal()).await;
    }
    let created = RelayMessage::SessionCreated {
        code: code.digits(),
        session_id,
        expires_at,
    };
    if let Err(e) = conn.send(&created).await {
        relay.registry.withdraw(&code, &session_id);
        tracing::debug!(error = %e, %operator, "operator left before receiving the code");
        return;
    }
    tracing::info!(%operator, session = %hex::encode(session_id), pending = relay.registry.len(),
        "session created");

    let expiry = tokio::time::sleep(Duration::from_secs(ttl));
    tokio::pin!(expiry);
    let agent = tokio::select! {
        biased;
        agent = &mut arrival => agent.ok(),
        // The operator sends nothing while waiting: any frame, the end of the stream or an
        // error means it gave up.
        _ = conn.stream.read_message() => {
            if !relay.registry.withdraw(&code, &session_id) {
                // An agent took the code just now; do not leave it hanging.
                arrival.close();
                if let Ok(agent) = arrival.try_recv() {
                    agent.close_with(&replies::code_not_valid()).await;
                }
            }
            tracing::info!(%operator, session = %hex::encode(session_id), "operator left before pairing");
            let left = "the operator left before a customer joined".to_string();
            audit_code(&relay, "code.withdrawn", &conn.peer.to_string(), &operator, &session_id, left).await;
            return;
        }
        _ = &mut expiry => {
            if relay.registry.withdraw(&code, &session_id) {
                tracing::info!(%operator, session = %hex::encode(session_id), "session code expired");
                let unused = format!("unused after {ttl} s");
                audit_code(&relay, "code.expired", "relay", &operator, &session_id, unused).await;
                return conn.close_with(&replies::code_expired()).await;
            }
            // Taken at the last moment: the hand-over is under way.
            arrival.await.ok()
        }
    };
    // The account may have been disabled, or the certificate revoked, while the code was out.
    let agent = match agent {
        Some(agent) => match relay
            .may_start_sessions(&operator, who.local, who.serial)
            .await
        {
            Ok(true) => Some(agent),
            Ok(false) => {
                tracing::warn!(%operator, "customer arrived but the account was disabled or removed, or the certificate revoked");
                agent.close_with(&replies::code_not_valid()).await;
                return conn.close_with(&replies::account_inactive()).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot check the account");
                agent.close_with(&replies::internal()).await;
                return conn.close_with(&replies::internal()).await;
            }
        },
        None => None,
    };
    match agent {
        Some(agent) => paired::run(&relay, conn, agent, session_id, &who).await,
        // The joiner dropped the hand-over without sending (only when the relay stops).
        None => conn.close_with(&replies::internal()).await,
    }
}

/// Writes an audit entry about a session code (never the code itself); `false` (logged) when
/// it cannot be written.
async fn audit_code(
    relay: &Relay,
    action: &'static str,
    actor: &str,
    operator: &str,
    session_id: &SessionId,
    detail: String,
) -> bool {
    let (actor, operator, session) = (
        actor.to_string(),
        operator.to_string(),
        hex::encode(session_id),
    );
    let written = relay
        .with_db(move |db| {
            let entry = NewEntry {
                at: clock::now_unix(),
                actor: &actor,
                action,
                subject: Some(&operator),
                detail: Some(&detail),
                session: Some(&session),
            };
            audit::append(db, &entry).map(drop)
        })
        .await;
    match &written {
        Ok(()) => relay.audit_recorded(),
        Err(e) => tracing::error!(error = %e, action, "cannot write the audit log"),
    }
    written.is_ok()
}
