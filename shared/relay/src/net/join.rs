//! An agent joins with a code: brute-force limits (per address, per /24 and /16 or IPv6 /56
//! and /48, and relay-wide for prefixes that have failed before; see
//! [`sightline_core::join_gate`]), then the code is taken out of the registry — it dies here
//! whatever happens next — and the agent's connection is handed to the waiting operator's task.

use crate::context::{InternalError, Relay};
use crate::net::conn::Conn;
use crate::net::registry::Pending;
use crate::net::replies;
use crate::store::db::{Database, DbError};
use crate::store::failures::{self, Limit};
use sightline_core::identity::{PublicIdentity, MIN_PEER_BITS};
use sightline_core::join_gate::{self, Counter, Gate, Level};
use sightline_core::relay_proto::AgentProof;
use sightline_core::session_proofs::JoinTranscript;
use sightline_net::clock;
use std::net::IpAddr;
use std::sync::Arc;

/// The counters that apply to a join from one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinCounters {
    /// The address's prefixes, narrowest first ([`Level::ALL`]).
    pub levels: [Limit; 3],
    /// The relay-wide counter.
    pub global: Limit,
}

/// The counters that apply to a join from `ip`.
pub fn limits_for(relay: &Relay, ip: IpAddr) -> JoinCounters {
    let policies = relay.config.join_limit;
    JoinCounters {
        levels: Level::ALL.map(|level| Limit::join_prefix(ip, level, policies.policy(level))),
        global: Limit::join_global(policies.global),
    }
}

impl JoinCounters {
    /// What the stored records say about an attempt at `now`.
    fn gate(&self, db: &Database, now: u64) -> Result<Gate, DbError> {
        let load = |limit: &Limit| -> Result<Counter, DbError> {
            Ok(Counter {
                policy: limit.policy,
                record: failures::load(db, &limit.key)?,
            })
        };
        let levels = [
            load(&self.levels[0])?,
            load(&self.levels[1])?,
            load(&self.levels[2])?,
        ];
        Ok(join_gate::decide(&levels, &load(&self.global)?, now))
    }

    /// Records a wrong code at every level and globally, all or nothing.
    fn record_failure(&self, db: &mut Database, now: u64) -> Result<(), DbError> {
        let all: Vec<Limit> = self.levels.iter().chain([&self.global]).cloned().collect();
        failures::record_failure(db, &all, now)
    }
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
            if let Gate::Wait(wait) = limits.gate(db, now)? {
                return Ok(Decision::RateLimited(wait));
            }
            match shared.registry.take(&code, now) {
                Ok(pending) => Ok(Decision::Valid(pending)),
                Err(_) => {
                    limits.record_failure(db, now)?;
                    Ok(Decision::NotValid)
                }
            }
        })
        .await
}

/// Checks the agent's proof of its key, if it sent one: the key then travels with the
/// connection. `Err` with the reason when the key is unusable or the proof does not verify.
fn prove_agent(conn: &mut Conn, code: &str, agent: Option<AgentProof>) -> Result<(), String> {
    let Some(agent) = agent else {
        return Ok(());
    };
    let key = PublicIdentity::from_spki_der(&agent.key, MIN_PEER_BITS)
        .map_err(|e| format!("agent key rejected: {e}"))?;
    let transcript = JoinTranscript {
        channel_binding: conn.channel.handshake_hash(),
        code,
        agent_key: &agent.key,
    };
    transcript
        .verify(&key, &agent.proof)
        .map_err(|_| "the agent's proof of its key does not verify".to_string())?;
    conn.identity = Some(key);
    Ok(())
}

/// Runs a join and either hands the connection over or answers and closes it.
pub async fn join(relay: Arc<Relay>, mut conn: Conn, code: String, agent: Option<AgentProof>) {
    if let Err(why) = prove_agent(&mut conn, &code, agent) {
        tracing::warn!(peer = %conn.peer, %why, "join refused");
        return conn.close_with(&replies::bad_request(&why)).await;
    }
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
