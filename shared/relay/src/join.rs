//! An agent joins with a code: brute-force limits (per address and relay-wide), then the code
//! is taken out of the registry — it dies here whatever happens next — and the agent's
//! connection is handed to the waiting operator's task.

use crate::conn::Conn;
use crate::context::{InternalError, Relay};
use crate::failures::{self, Limit};
use crate::registry::Pending;
use crate::replies;
use sightline_net::clock;
use std::net::IpAddr;
use std::sync::Arc;

/// The counters that apply to a join from `ip`.
pub fn limits_for(relay: &Relay, ip: IpAddr) -> [Limit; 2] {
    let policy = relay.config.join_limit;
    [
        Limit::join_address(ip, policy.per_address),
        Limit::join_global(policy.global),
    ]
}

/// What the limiter and the registry decided.
#[derive(Debug)]
pub enum Decision {
    /// The code was valid; here is the waiting operator.
    Valid(Pending<Conn>),
    /// Not valid (failure recorded).
    NotValid,
    /// Too many failures; retry after this many seconds.
    RateLimited(u64),
}

/// Checks the limits, takes the code and records a failure, as one step under the database
/// lock so that parallel guesses cannot all slip past the check.
pub async fn decide(
    relay: &Arc<Relay>,
    ip: IpAddr,
    code: String,
) -> Result<Decision, InternalError> {
    let limits = limits_for(relay, ip);
    let shared = relay.clone();
    relay
        .with_db(move |db| {
            let now = clock::now_unix();
            if let Some(wait) = failures::retry_after(db, &limits, now)? {
                return Ok(Decision::RateLimited(wait));
            }
            match shared.registry.take(&code, now) {
                Ok(pending) => Ok(Decision::Valid(pending)),
                Err(_) => {
                    failures::record_failure(db, &limits, now)?;
                    Ok(Decision::NotValid)
                }
            }
        })
        .await
}

/// Runs a join and either hands the connection over or answers and closes it.
pub async fn join(relay: Arc<Relay>, conn: Conn, code: String) {
    let ip = conn.peer.ip();
    let decision = match decide(&relay, ip, code).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, peer = %conn.peer, "join failed on the relay side");
            return conn.close_with(&replies::internal()).await;
        }
    };
    match decision {
        Decision::RateLimited(wait) => {
            tracing::warn!(peer = %conn.peer, retry_after = wait, "join refused: rate limited");
            conn.close_with(&replies::rate_limited(wait)).await
        }
        Decision::NotValid => {
            tracing::warn!(peer = %conn.peer, "join refused: code not valid");
            conn.close_with(&replies::code_not_valid()).await
        }
        Decision::Valid(pending) => {
            let operator = pending.operator.clone();
            let peer = conn.peer;
            match pending.hand_over(conn) {
                Ok(()) => tracing::info!(%operator, %peer, "code redeemed"),
                // The operator left between our taking the code and the hand-over.
                Err(conn) => {
                    tracing::info!(%operator, %peer, "code redeemed but the operator has gone");
                    conn.close_with(&replies::code_not_valid()).await
                }
            }
        }
    }
}
