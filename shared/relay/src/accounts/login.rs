//! Operator login: the proof that the operator holds the key it wants certified first, then
//! the canonical account name, brute-force limits, a password-hashing slot, the password (the
//! relay's argon2id hash, or the LDAP directory), then the second factor (TOTP or a recovery
//! code), then — only on success, and within the account's certificate quota — an operator
//! certificate signed by the issuing key ([`issue`]), carrying the permissions and session
//! limit that the policy and the account allow.
//!
//! Order matters: a login whose key is unusable or not proven (no challenge asked for on this
//! connection; a signature that is missing, wrong, or made by another key) is refused before
//! any account is looked at, so no certificate is ever signed for a key whose private half did
//! not sign this very login ([`sightline_core::login_proof`]). Such a client is broken or
//! hostile but has guessed nothing (no factor was checked), so it is not counted as a failed
//! login; the connection is closed.
//!
//! Then the name typed is reduced to its one canonical spelling ([`AccountName`]); everything
//! after — the account lookup, every counter, the directory, the certificate — sees only
//! that, so "Alice " is alice, with alice's lockout, disabled flag and permissions. A name
//! that has no canonical form is refused before any directory sees it, and counts as a
//! failure of its address and of the relay.
//!
//! The limiter is consulted before any expensive or revealing work: per address, per account
//! (split by known address), and relay-wide for attempts from addresses new to the account
//! (so spraying passwords across accounts from many prefixes slows down, while operators at
//! their usual desks are not held back). Every attempt that passes then takes one hashing
//! slot ([`crate::accounts::hashing`]) and spends it on exactly one argon2id verification, the
//! account's or a dummy one, whatever the path ([`factors`]); every failure of a factor gets
//! the one answer [`LoginOutcome::Failed`], released no sooner than `failure_floor_ms` after
//! the attempt arrived, so neither work nor time tells an unknown name from a wrong password.
//! The RSA signature over the certificate is only ever made for a complete login, at most
//! `login_limit.certificates` times per account and window ([`crate::accounts::issued`]).

mod factors;
pub(crate) mod issue;

use crate::accounts::account_name::AccountName;
use crate::accounts::auth::Role;
use crate::accounts::hashing::Priority;
use crate::accounts::issued;
use crate::accounts::users::{self, User};
use crate::context::{InternalError, Relay};
use crate::store::audit;
use crate::store::failures::{self, Limit};
use factors::Failure;
use sightline_core::authority::Authority;
use sightline_core::cert::OperatorCert;
use sightline_core::identity::{PublicIdentity, MIN_PEER_BITS};
use sightline_core::limiter::address_key;
use sightline_core::login_proof::{Challenge, LoginTranscript};
use sightline_core::relay_proto::Secret;
use sightline_net::clock;
use std::net::IpAddr;
use std::time::Duration;

/// Who logged in, for the rest of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    /// Account name.
    pub name: String,
    /// Whether the relay has a record of the account (a directory user may have none when the
    /// directory provides the second factor); only such accounts can be disabled here.
    pub local: bool,
    /// Role on the relay.
    pub role: Role,
    /// Serial of the certificate issued at this login (revoking it ends the sessions).
    pub serial: u64,
    /// The authority whose issuing key signed that certificate (sent to the agent at pairing,
    /// so a session survives a rotation of the issuing key in between).
    pub authority: Authority,
    /// The recording rule that certificate carries: the relay enforces it on the operator's
    /// sessions ([`crate::net::recording_upload`]).
    pub recording: sightline_core::cert::RecordingPolicy,
}

/// How a login attempt ended.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Everything checked out; the certificate over the operator's key.
    Accepted {
        /// The signed certificate.
        certificate: OperatorCert,
        /// Who.
        who: LoggedIn,
    },
    /// Wrong user name, password or second factor, or an account that may not log in.
    Failed,
    /// Too many failures; retry after this many seconds.
    RateLimited(u64),
    /// The password could not be checked (directory unreachable); not counted as a failure.
    Unavailable,
    /// The operator key is unusable (checked before anything else).
    BadKey(String),
    /// The operator did not prove that it holds the key: no challenge was issued for this
    /// attempt, or the proof does not verify. Checked before anything else, not counted as a
    /// failed login; the reason is for the log only.
    NotProven(&'static str),
}

/// The counters that apply to one login attempt.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// Per source address.
    pub address: Limit,
    /// Per account name (per account and address for an address the account logged in from
    /// before); `None` for a name that cannot be an account, so junk names are counted per
    /// address only and do not grow the table.
    pub account: Option<Limit>,
    /// Relay-wide; `None` for a login from an address the account logged in from before.
    pub global: Option<Limit>,
}

impl LoginLimits {
    /// The counters for a login as `name` (`None`: not a name) from `ip`; `known_address`
    /// says whether the account logged in from this address recently.
    pub fn new(relay: &Relay, ip: IpAddr, name: Option<&AccountName>, known_address: bool) -> Self {
        let limits = relay.config.login_limit;
        let lock = Some(limits.lockout);
        let account = name.map(|name| {
            if known_address {
                Limit::login_account_from(name.as_str(), ip, limits.per_account, lock)
            } else {
                Limit::login_account(name.as_str(), limits.per_account, lock)
            }
        });
        Self {
            address: Limit::login_address(ip, limits.per_address, lock),
            account,
            global: (!known_address).then(|| Limit::login_global(limits.global)),
        }
    }

    /// The counters whose locks an attempt holds, address first (the order in which they are
    /// taken). The relay-wide counter is not locked (that would serialise every login); a
    /// burst can overshoot it by at most the logins in progress at once, which the hashing
    /// slots and their queue bound.
    pub fn locked(&self) -> Vec<Limit> {
        std::iter::once(self.address.clone())
            .chain(self.account.clone())
            .collect()
    }

    /// Every counter that applies.
    pub fn all(&self) -> Vec<Limit> {
        let mut all = self.locked();
        all.extend(self.global.clone());
        all
    }
}
/// One login attempt's inputs.
#[derive(Debug)]
pub struct Attempt {
    /// Source address.
    pub ip: IpAddr,
    /// Account name as typed.
    pub user: String,
    /// Password.
    pub password: Secret,
    /// TOTP or recovery code.
    pub second_factor: Option<Secret>,
    /// The operator's public key (SPKI DER).
    pub operator_key: Vec<u8>,
    /// The proof that the operator holds that key, and what it must cover.
    pub possession: Possession,
}

/// What a login's proof of possession must cover, and the proof.
#[derive(Debug, Clone)]
pub struct Possession {
    /// The relay channel's handshake hash.
    pub channel_binding: [u8; 32],
    /// The challenge this connection issued for the attempt; `None` when the client asked
    /// for none (or used it up on an earlier attempt).
    pub challenge: Option<Challenge>,
    /// The client's signature over the transcript.
    pub proof: Vec<u8>,
}

impl Possession {
    /// Checks that the private half of `key` (parsed from `operator_key`) signed this login
    /// of `user`; the reason when it did not.
    pub fn check(
        &self,
        key: &PublicIdentity,
        operator_key: &[u8],
        user: &str,
    ) -> Result<(), &'static str> {
        let Some(challenge) = &self.challenge else {
            return Err("no login challenge was asked for");
        };
        if self.proof.is_empty() {
            return Err("no proof of possession");
        }
        let transcript = LoginTranscript {
            channel_binding: &self.channel_binding,
            challenge,
            operator_key,
            user,
        };
        transcript
            .verify(key, &self.proof)
            .map_err(|_| "the proof of possession does not verify")
    }
}

/// Runs one login attempt. A failed one is answered no sooner than `failure_floor_ms` after
/// it arrived.
pub async fn attempt(relay: &Relay, attempt: Attempt) -> Result<LoginOutcome, InternalError> {
    let arrived = tokio::time::Instant::now();
    let outcome = run(relay, attempt).await?;
    if matches!(outcome, LoginOutcome::Failed) {
        let floor = Duration::from_millis(relay.config.login_work.failure_floor_ms);
        tokio::time::sleep_until(arrived + floor).await;
    }
    Ok(outcome)
}

async fn run(relay: &Relay, attempt: Attempt) -> Result<LoginOutcome, InternalError> {
    let Attempt {
        ip,
        user,
        password,
        second_factor,
        operator_key,
        possession,
    } = attempt;
    // Proof of possession first: one RSA verification (public key only), nothing secret,
    // no account looked at. A certificate is never signed for a key not proven here. The
    // proof covers the name as the client sent it.
    let key = match PublicIdentity::from_spki_der(&operator_key, MIN_PEER_BITS) {
        Ok(k) => k,
        Err(e) => return Ok(LoginOutcome::BadKey(e.to_string())),
    };
    if let Err(why) = possession.check(&key, &operator_key, &user) {
        tracing::warn!(peer = %ip, reason = why, "login refused: operator key not proven");
        return Ok(LoginOutcome::NotProven(why));
    }
    let now = clock::now_unix();
    // From here on only the canonical name: the typed one may hold anything (a password typed
    // into the user field) and must not reach the log, the counters or the directory.
    let name = AccountName::parse(&user);
    drop(user);
    let account = match &name {
        Some(n) => {
            let n = n.clone();
            relay.with_db(move |db| users::find(db, n.as_str())).await?
        }
        None => None,
    };
    let source = address_key(ip);
    let known = match &account {
        Some(a) => {
            let (id, src) = (a.id, source.clone());
            let within = relay
                .config
                .login_limit
                .known_address_days
                .saturating_mul(86_400);
            relay
                .with_db(move |db| users::is_known_source(db, id, &src, now, within))
                .await?
        }
        None => false,
    };
    let counters = LoginLimits::new(relay, ip, name.as_ref(), known);
    // Check, verify and record as one step per key (address first, then account: always the
    // same order).
    let mut guards = Vec::new();
    for limit in counters.locked() {
        guards.push(relay.login_locks.lock(&limit.key).await);
    }
    let (check, quota, quota_name) = (
        counters.all(),
        relay.config.login_limit.certificates,
        name.clone(),
    );
    let wait = relay
        .with_db(move |db| {
            // The clock is read under the database lock, as when failures are recorded: the
            // relay-wide counter is not locked per key, and a `now` from before another
            // attempt's failure would read as "that failure is in the future, wait".
            let now = clock::now_unix();
            let failed = failures::retry_after(db, &check, now)?;
            let issued = match &quota_name {
                Some(n) => issued::retry_after(db, n, quota, now)?,
                None => None,
            };
            Ok(failed.max(issued))
        })
        .await?;
    if let Some(wait) = wait {
        tracing::warn!(user = shown(&account), peer = %ip, wait, "login refused: rate limited");
        return Ok(LoginOutcome::RateLimited(wait));
    }
    let priority = if known {
        Priority::KnownAddress
    } else {
        Priority::Other
    };
    let Ok(slot) = relay.hashing.slot(priority).await else {
        tracing::warn!(peer = %ip, "login refused: too many logins waiting for password hashing");
        return Ok(LoginOutcome::RateLimited(1));
    };

    let checked = match &name {
        Some(n) => factors::check(relay, n, account.as_ref(), slot, password, second_factor).await,
        None => factors::refuse_invalid_name(slot, password).await.map(Err),
    };
    let checked = match checked {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(peer = %ip, error = %e, "login could not be checked");
            return Ok(LoginOutcome::Unavailable);
        }
    };
    let (person, name) = match (checked, name) {
        (Ok(person), Some(name)) => (person, name),
        (Err(why), _) => return record_failure(relay, &counters, account.as_ref(), ip, why).await,
        // A check cannot pass without a name; should one, it is refused.
        (Ok(_), None) => return Ok(LoginOutcome::Failed),
    };
    // A complete login takes a certificate from the account's quota (under the database lock,
    // so racing logins cannot both have the last one) and clears the account's failure
    // counter; the address counter stays, so one valid account cannot be used to reset an
    // address that guesses others.
    let account_key = counters.account.as_ref().map(|l| l.key.clone());
    let user_id = account.as_ref().map(|a| a.id);
    let (src, actor, shown_name) = (source.clone(), ip.to_string(), person.name.clone());
    let over_quota = relay
        .with_db(move |db| {
            if let Some(wait) = issued::take(db, &name, quota, now)? {
                return Ok(Some(wait));
            }
            if let Some(key) = account_key {
                failures::forget(db, &key)?;
            }
            if let Some(id) = user_id {
                users::remember_source(db, id, &src, now)?;
            }
            audit::record(db, now, &actor, "login.ok", Some(&shown_name), None)?;
            Ok(None)
        })
        .await?;
    relay.audit_recorded();
    drop(guards);
    if let Some(wait) = over_quota {
        tracing::warn!(user = %person.name, peer = %ip, wait, "login refused: certificate quota of the account used up");
        return Ok(LoginOutcome::RateLimited(wait));
    }
    issue::certificate(
        relay,
        account.as_ref(),
        person,
        &key,
        ip,
        now,
        Default::default(),
    )
    .await
}

/// Records a failed login under every counter that applies, and in the audit trail when the
/// name is an account's.
async fn record_failure(
    relay: &Relay,
    counters: &LoginLimits,
    account: Option<&User>,
    ip: IpAddr,
    why: Failure,
) -> Result<LoginOutcome, InternalError> {
    let record = counters.all();
    let subject = account.map(|a| a.name.clone());
    let actor = ip.to_string();
    relay
        .with_db(move |db| {
            let now = clock::now_unix();
            failures::record_failure(db, &record, now)?;
            // Junk names stay out of the audit trail, as out of the account counters.
            if let Some(s) = subject {
                audit::record(
                    db,
                    now,
                    &actor,
                    "login.failed",
                    Some(&s),
                    Some(why.as_str()),
                )?;
            }
            Ok(())
        })
        .await?;
    relay.audit_recorded();
    // Only names of existing accounts reach the log: a password typed into the user field
    // must not.
    let user = account.map_or("(unknown)", |u| u.name.as_str());
    tracing::warn!(user, peer = %ip, reason = why.as_str(), "login failed");
    Ok(LoginOutcome::Failed)
}

fn shown(account: &Option<User>) -> &str {
    account.as_ref().map_or("(unknown)", |u| u.name.as_str())
}
