//! Operator login: the proof that the operator holds the key it wants certified first, then
//! brute-force limits, then the password (the relay's argon2id hash, or the LDAP directory),
//! then the second factor (TOTP or a recovery code), then — only on success — an operator
//! certificate signed by the issuing key (recorded first, so that it can be revoked), carrying
//! the permissions and session limit that the policy and the account allow.
//!
//! Order matters: a login whose key is unusable or not proven (no challenge asked for on this
//! connection; a signature that is missing, wrong, or made by another key) is refused before
//! any account is looked at, so no certificate is ever signed for a key whose private half did
//! not sign this very login ([`sightline_core::login_proof`]). Such a client is broken or
//! hostile but has guessed nothing (no factor was checked), so it is not counted as a failed
//! login; the connection is closed. Then the limiter is consulted before any expensive or
//! revealing work; the password is checked even when the account is unknown or disabled (same
//! cost, same answer); every failure of a factor, whatever its cause, gets the one answer
//! [`LoginOutcome::Failed`]; and the RSA signature over the certificate is only ever made for
//! a complete, rate-limited login.

use crate::audit;
use crate::auth::{AuthError, Authenticated, Rejection, Role, Verdict};
use crate::certs;
use crate::context::{InternalError, Relay};
use crate::failures::{self, Limit};
use crate::labels;
use crate::password::Verification;
use crate::recovery;
use crate::totp::{self, TotpCheck};
use crate::users::{self, Source, User};
use rand_core::OsRng;
use sightline_core::authority::Authority;
use sightline_core::cert::{CertBody, OperatorCert, Permissions};
use sightline_core::identity::{PublicIdentity, MIN_PEER_BITS};
use sightline_core::limiter::address_key;
use sightline_core::login_proof::{Challenge, LoginTranscript};
use sightline_core::relay_proto::Secret;
use sightline_net::clock;
use std::net::IpAddr;

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
}

impl LoginLimits {
    /// The counters for a login as `user` from `ip`; `known_address` says whether the account
    /// logged in from this address recently.
    pub fn new(relay: &Relay, ip: IpAddr, user: &str, known_address: bool) -> Self {
        let limits = relay.config.login_limit;
        let lock = Some(limits.lockout);
        let account = users::validate_name(user).is_ok().then(|| {
            if known_address {
                Limit::login_account_from(user, ip, limits.per_account, lock)
            } else {
                Limit::login_account(user, limits.per_account, lock)
            }
        });
        Self {
            address: Limit::login_address(ip, limits.per_address, lock),
            account,
        }
    }

    /// All of them, address first (the order in which their locks are taken).
    pub fn all(&self) -> Vec<Limit> {
        std::iter::once(self.address.clone())
            .chain(self.account.clone())
            .collect()
    }
}

/// Why a login failed, for the log and the audit trail only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Password(Rejection),
    NoSecondFactor,
    NotEnrolled,
    WrongCode,
    ReusedCode,
    DirectoryAccountWithoutDirectory,
}

impl Failure {
    fn as_str(self) -> &'static str {
        match self {
            Failure::Password(r) => r.as_str(),
            Failure::NoSecondFactor => "no second factor given",
            Failure::NotEnrolled => "two-factor login required but the account is not enrolled",
            Failure::WrongCode => "wrong authenticator or recovery code",
            Failure::ReusedCode => "authenticator code already used",
            Failure::DirectoryAccountWithoutDirectory => {
                "directory account but no [ldap] directory configured"
            }
        }
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

/// Runs one login attempt.
pub async fn attempt(relay: &Relay, attempt: Attempt) -> Result<LoginOutcome, InternalError> {
    let Attempt {
        ip,
        user,
        password,
        second_factor,
        operator_key,
        possession,
    } = attempt;
    // Proof of possession first: one RSA verification (public key only), nothing secret,
    // no account looked at. A certificate is never signed for a key not proven here.
    let key = match PublicIdentity::from_spki_der(&operator_key, MIN_PEER_BITS) {
        Ok(k) => k,
        Err(e) => return Ok(LoginOutcome::BadKey(e.to_string())),
    };
    if let Err(why) = possession.check(&key, &operator_key, &user) {
        tracing::warn!(peer = %ip, reason = why, "login refused: operator key not proven");
        return Ok(LoginOutcome::NotProven(why));
    }
    let now = clock::now_unix();
    let valid_name = users::validate_name(&user).is_ok();
    let account = if valid_name {
        let name = user.clone();
        relay.with_db(move |db| users::find(db, &name)).await?
    } else {
        None
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
    let counters = LoginLimits::new(relay, ip, &user, known);
    let limits = counters.all();
    // Check, verify and record as one step per key (address first, then account: always the
    // same order).
    let mut guards = Vec::with_capacity(limits.len());
    for limit in &limits {
        guards.push(relay.login_locks.lock(&limit.key).await);
    }
    let check = limits.clone();
    if let Some(wait) = relay
        .with_db(move |db| failures::retry_after(db, &check, now))
        .await?
    {
        tracing::warn!(user = shown(&account), peer = %ip, wait, "login refused: rate limited");
        return Ok(LoginOutcome::RateLimited(wait));
    }

    let checked = match check_factors(relay, &user, account.as_ref(), password, second_factor).await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(peer = %ip, error = %e, "login could not be checked");
            return Ok(LoginOutcome::Unavailable);
        }
    };
    let person = match checked {
        Ok(person) => person,
        Err(why) => {
            let now = clock::now_unix();
            let record = limits.clone();
            let subject = account.as_ref().map(|a| a.name.clone());
            let actor = ip.to_string();
            relay
                .with_db(move |db| {
                    failures::record_failure(db, &record, now)?;
                    // Junk names stay out of the audit trail, as out of the counters.
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
            // Only names of existing accounts reach the log: a password typed into the user
            // field must not.
            tracing::warn!(user = shown(&account), peer = %ip, reason = why.as_str(), "login failed");
            return Ok(LoginOutcome::Failed);
        }
    };
    // A complete login clears the account's counter; the address counter stays, so one valid
    // account cannot be used to reset an address that guesses others.
    let account_key = counters.account.as_ref().map(|l| l.key.clone());
    let user_id = account.as_ref().map(|a| a.id);
    let (src, actor, name) = (source.clone(), ip.to_string(), person.name.clone());
    relay
        .with_db(move |db| {
            if let Some(key) = account_key {
                failures::forget(db, &key)?;
            }
            if let Some(id) = user_id {
                users::remember_source(db, id, &src, now)?;
            }
            audit::record(db, now, &actor, "login.ok", Some(&name), None)
        })
        .await?;
    drop(guards);

    let policy = &relay.policy;
    let (permissions, max_session_secs) = match &account {
        Some(a) => (
            a.effective_permissions(policy.allowed()),
            a.effective_session_limit(policy.max_session_secs()),
        ),
        None => (policy.allowed(), policy.max_session_secs()),
    };
    // What the customer will read: cleaned whatever its source (an LDAP attribute, a value
    // stored before `relay user` refused such text).
    let shown = labels::for_certificate(account.as_ref(), &person);
    let issuing = relay.issuing.get();
    let body = CertBody {
        serial: crate::ca::serial(),
        // Follows `users::validate_name` (checked before any password is), so it holds
        // nothing a terminal would interpret.
        operator: person.name.clone(),
        display_name: shown.display_name,
        organisation: shown.organisation,
        permissions,
        max_session_secs,
        key: key.fingerprint(),
        not_before: now,
        // Never past the issuing key's own certificate.
        not_after: now
            .saturating_add(relay.config.certificate_validity_secs)
            .min(issuing.not_after()),
        issuer: issuing.authority().issuer().fingerprint(),
    };
    // Recorded before it exists, so that it can be revoked as soon as it is handed out.
    let record = (body.serial, body.operator.clone(), body.issuer, body.key);
    let (not_before, not_after) = (body.not_before, body.not_after);
    relay
        .with_db(move |db| {
            certs::record(
                db,
                &certs::Issued {
                    serial: record.0,
                    account: &record.1,
                    issuer: record.2,
                    key: record.3,
                    not_before,
                    not_after,
                },
            )
        })
        .await?;
    let serial = body.serial;
    let signer = issuing.clone();
    let certificate =
        tokio::task::spawn_blocking(move || OperatorCert::issue(signer.key(), &body, &mut OsRng))
            .await
            .map_err(|_| InternalError::Worker)??;
    tracing::info!(user = %person.name, role = %person.role, peer = %ip, key = %key.fingerprint(),
        permissions = ?permissions_names(permissions), "login succeeded");
    Ok(LoginOutcome::Accepted {
        certificate,
        who: LoggedIn {
            name: person.name,
            local: account.is_some(),
            role: person.role,
            serial,
            authority: issuing.authority().clone(),
        },
    })
}

fn permissions_names(p: Permissions) -> Vec<&'static str> {
    p.names()
}

fn shown(account: &Option<User>) -> &str {
    account.as_ref().map_or("(unknown)", |u| u.name.as_str())
}

/// Checks the password and the second factor. The outer error means the check could not be
/// made; the inner one that it failed.
async fn check_factors(
    relay: &Relay,
    user: &str,
    account: Option<&User>,
    password: Secret,
    second_factor: Option<Secret>,
) -> Result<Result<Authenticated, Failure>, AuthError> {
    let person = match first_factor(relay, user, account, password).await? {
        Ok(p) => p,
        Err(why) => return Ok(Err(why)),
    };
    if account.is_some_and(|a| a.disabled) {
        return Ok(Err(Failure::Password(Rejection::Disabled)));
    }
    let directory_2fa = relay.directory_provides_second_factor();
    let needs_second = match account {
        Some(a) => {
            a.two_factor
                || (relay.policy.two_factor_required()
                    && !(a.source == Source::Ldap && directory_2fa))
        }
        // A directory user without a relay account has nowhere to keep a TOTP secret.
        None => !directory_2fa,
    };
    if !needs_second {
        return Ok(Ok(person));
    }
    let Some(account) = account.filter(|a| a.two_factor) else {
        return Ok(Err(Failure::NotEnrolled));
    };
    let Some(code) = second_factor else {
        return Ok(Err(Failure::NoSecondFactor));
    };
    let verdict = second_factor_ok(relay, account, code)
        .await
        .map_err(|e| AuthError::Failed(e.to_string()))?;
    Ok(verdict.map(|()| person))
}

async fn first_factor(
    relay: &Relay,
    user: &str,
    account: Option<&User>,
    password: Secret,
) -> Result<Result<Authenticated, Failure>, AuthError> {
    let directory = relay.directory.clone();
    let local = |a: &User| Authenticated {
        name: a.name.clone(),
        display_name: a.display_name.clone(),
        organisation: a.organisation.clone(),
        role: a.role,
    };
    match (account, directory) {
        (Some(a), _) if a.source == Source::Local => {
            let verdict = relay
                .verify_password(password, Some(a.password_hash.clone()))
                .await
                .map_err(|e| AuthError::Failed(e.to_string()))?;
            Ok(match verdict {
                Verification::Match => Ok(local(a)),
                Verification::Mismatch => Err(Failure::Password(Rejection::WrongPassword)),
                Verification::BadHash => {
                    tracing::error!(user = %a.name, "stored password hash is unreadable; login refused");
                    Err(Failure::Password(Rejection::WrongPassword))
                }
            })
        }
        (account, Some(dir)) if valid_for_directory(account, user) => {
            Ok(match dir.authenticate(user, &password).await? {
                // The relay's own account keeps its name's spelling and settings; the
                // directory decides the role.
                Verdict::Accepted(found) => Ok(Authenticated {
                    name: account.map_or(found.name.clone(), |a| a.name.clone()),
                    ..found
                }),
                Verdict::Rejected(r) => Err(Failure::Password(r)),
            })
        }
        (account, _) => {
            // Unknown account, or a directory account with no directory: same cost as a real
            // check, same answer.
            relay
                .verify_password(password, None)
                .await
                .map_err(|e| AuthError::Failed(e.to_string()))?;
            Ok(Err(match account {
                Some(_) => Failure::DirectoryAccountWithoutDirectory,
                None => Failure::Password(Rejection::UnknownUser),
            }))
        }
    }
}

/// Whether the directory checks this login: a directory account, or no account at all, and a
/// name that follows the naming rule (the contract of [`crate::auth::Authenticator`]). Another
/// spelling that the directory matches anyway ("alice " in a search filter) would dodge the
/// per-account counters, which only count valid names, and would go into the certificate.
fn valid_for_directory(account: Option<&User>, user: &str) -> bool {
    users::validate_name(user).is_ok() && account.is_none_or(|a| a.source == Source::Ldap)
}

async fn second_factor_ok(
    relay: &Relay,
    account: &User,
    code: Secret,
) -> Result<Result<(), Failure>, InternalError> {
    let id = account.id;
    let name = account.name.clone();
    relay
        .with_db(move |db| {
            let now = clock::now_unix();
            let text = code.expose().trim();
            if recovery::looks_like_recovery_code(text) {
                if users::use_recovery_code(db, id, text, now)? {
                    let left = users::recovery_codes_left(db, id)?;
                    tracing::warn!(user = %name, left, "recovery code used");
                    audit::record(
                        db,
                        now,
                        "relay",
                        "recovery-code.used",
                        Some(&name),
                        Some(&format!("{left} left")),
                    )?;
                    return Ok(Ok(()));
                }
                return Ok(Err(Failure::WrongCode));
            }
            let Some((secret, last)) = users::totp_state(db, id)? else {
                return Ok(Err(Failure::NotEnrolled));
            };
            Ok(match totp::verify(&secret, text, now, last) {
                // Recorded under the database lock: two logins racing with one code cannot
                // both win.
                TotpCheck::Accepted { step } => {
                    if users::accept_totp_step(db, id, step)? {
                        Ok(())
                    } else {
                        Err(Failure::ReusedCode)
                    }
                }
                TotpCheck::Reused => Err(Failure::ReusedCode),
                TotpCheck::Wrong => Err(Failure::WrongCode),
            })
        })
        .await
}
