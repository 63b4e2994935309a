//! Operator login: brute-force limits first, then the password (argon2id, constant cost for
//! unknown accounts), then — only on success — an operator certificate signed by the CA.
//!
//! Order matters: the limiter is consulted before any expensive or revealing work, and the
//! RSA signature over the certificate is only ever made for a correct, rate-limited login.

use crate::context::{InternalError, Relay};
use crate::failures::{self, Limit};
use crate::password::Verification;
use crate::users::{self, User};
use rand_core::{OsRng, RngCore};
use sightline_core::cert::{CertBody, OperatorCert};
use sightline_core::identity::{PublicIdentity, MIN_PEER_BITS};
use sightline_core::relay_proto::Secret;
use sightline_net::clock;
use std::net::IpAddr;

/// How a login attempt ended.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Correct password; the certificate over the operator's key.
    Accepted {
        /// The signed certificate.
        certificate: OperatorCert,
        /// The account.
        user: User,
    },
    /// Wrong user name or password, or a disabled account.
    Failed,
    /// Too many failures; retry after this many seconds.
    RateLimited(u64),
    /// The password was right but the operator key is unusable.
    BadKey(String),
}

/// The counters that apply to one login attempt.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// Per source address.
    pub address: Limit,
    /// Per account name; `None` for a name that cannot be an account, so junk names are
    /// counted per address only and do not grow the table.
    pub account: Option<Limit>,
}

impl LoginLimits {
    /// The counters for a login as `user` from `ip`.
    pub fn new(relay: &Relay, ip: IpAddr, user: &str) -> Self {
        let policy = relay.config.login_limit;
        Self {
            address: Limit::login_address(ip, policy.per_address),
            account: users::validate_name(user)
                .is_ok()
                .then(|| Limit::login_account(user, policy.per_account)),
        }
    }

    /// All of them, address first (the order in which their locks are taken).
    pub fn all(&self) -> Vec<Limit> {
        std::iter::once(self.address.clone())
            .chain(self.account.clone())
            .collect()
    }
}

/// Runs one login attempt from `ip`.
pub async fn attempt(
    relay: &Relay,
    ip: IpAddr,
    user: String,
    password: Secret,
    operator_key: Vec<u8>,
) -> Result<LoginOutcome, InternalError> {
    let counters = LoginLimits::new(relay, ip, &user);
    let limits = counters.all();
    // Check, verify and record as one step per key (address first, then account: always the
    // same order).
    let mut guards = Vec::with_capacity(limits.len());
    for limit in &limits {
        guards.push(relay.login_locks.lock(&limit.key).await);
    }

    let now = clock::now_unix();
    let check = limits.clone();
    if let Some(wait) = relay
        .with_db(move |db| failures::retry_after(db, &check, now))
        .await?
    {
        return Ok(LoginOutcome::RateLimited(wait));
    }

    let account = if users::validate_name(&user).is_ok() {
        let name = user.clone();
        relay.with_db(move |db| users::find(db, &name)).await?
    } else {
        None
    };
    // Unknown accounts are checked against the dummy hash: same cost, same answer.
    let verdict = relay
        .verify_password(password, account.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    if verdict == Verification::BadHash {
        tracing::error!(user = %user, "stored password hash is unreadable; login refused");
    }
    let account = match account {
        Some(a) if verdict == Verification::Match && !a.disabled => a,
        other => {
            let now = clock::now_unix();
            let record = limits.clone();
            relay
                .with_db(move |db| failures::record_failure(db, &record, now))
                .await?;
            // Only names of existing accounts reach the log: a password typed into the user
            // field must not.
            let shown = other.as_ref().map_or("(unknown)", |u| u.name.as_str());
            tracing::warn!(user = shown, peer = %ip, "login failed");
            return Ok(LoginOutcome::Failed);
        }
    };
    // A correct password clears the account's counter; the address counter stays, so one
    // valid account cannot be used to reset an address that guesses others.
    if let Some(account_limit) = &counters.account {
        let key = account_limit.key.clone();
        relay.with_db(move |db| failures::forget(db, &key)).await?;
    }
    drop(guards);

    let key = match PublicIdentity::from_spki_der(&operator_key, MIN_PEER_BITS) {
        Ok(k) => k,
        Err(e) => return Ok(LoginOutcome::BadKey(e.to_string())),
    };
    let now = clock::now_unix();
    let body = CertBody {
        serial: OsRng.next_u64(),
        operator: account.name.clone(),
        display_name: account.shown_name().to_string(),
        organisation: account.shown_organisation().to_string(),
        permissions: account.permissions,
        key: key.fingerprint(),
        not_before: now,
        not_after: now.saturating_add(relay.config.certificate_validity_secs),
        issuer: relay.ca.public().fingerprint(),
    };
    let ca = relay.ca.clone();
    let certificate =
        tokio::task::spawn_blocking(move || OperatorCert::issue(&ca, &body, &mut OsRng))
            .await
            .map_err(|_| InternalError::Worker)??;
    tracing::info!(user = %account.name, peer = %ip, key = %key.fingerprint(), "login succeeded");
    Ok(LoginOutcome::Accepted {
        certificate,
        user: account,
    })
}
