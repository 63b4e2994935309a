//! The factors of one login: the password (the relay's argon2id hash or the directory), the
//! disabled flag, then the second factor (TOTP or a recovery code).
//!
//! Every path spends the attempt's hashing [`Slot`] on exactly one argon2id verification,
//! against the account's hash or a dummy one: a local account, a directory account, an
//! account that signs in with an OpenID Connect provider (it has no password: refused), an
//! unknown name and a name that is not a name cost the same hashing work, so neither the work
//! nor (with [`crate::accounts::login`]'s floor on failed answers) the time tells which it was. The
//! directory is only ever asked about a canonical [`AccountName`].

use crate::accounts::account_name::AccountName;
use crate::accounts::auth::{AuthError, Authenticated, Rejection, Verdict};
use crate::accounts::hashing::Slot;
use crate::accounts::password::Verification;
use crate::accounts::recovery;
use crate::accounts::totp::{self, TotpCheck};
use crate::accounts::users::{self, Source, User};
use crate::context::{InternalError, Relay};
use crate::store::audit;
use sightline_core::relay_proto::Secret;
use sightline_net::clock;

/// Why a login failed, for the log and the audit trail only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    InvalidName,
    Password(Rejection),
    NoSecondFactor,
    NotEnrolled,
    WrongCode,
    ReusedCode,
    DirectoryAccountWithoutDirectory,
    OidcAccount,
}

impl Failure {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Failure::InvalidName => "not a valid user name",
            Failure::Password(r) => r.as_str(),
            Failure::NoSecondFactor => "no second factor given",
            Failure::NotEnrolled => "two-factor login required but the account is not enrolled",
            Failure::WrongCode => "wrong authenticator or recovery code",
            Failure::ReusedCode => "authenticator code already used",
            Failure::DirectoryAccountWithoutDirectory => {
                "directory account but no [ldap] directory configured"
            }
            Failure::OidcAccount => {
                "the account signs in with an identity provider (OpenID Connect), not a password"
            }
        }
    }
}

/// Spends `slot` on the dummy hash: what a name that cannot be an account costs.
pub(super) async fn refuse_invalid_name(
    slot: Slot,
    password: Secret,
) -> Result<Failure, AuthError> {
    slot.verify(password, None).await.map_err(failed)?;
    Ok(Failure::InvalidName)
}

fn failed(e: impl std::fmt::Display) -> AuthError {
    AuthError::Failed(e.to_string())
}

/// Checks the password and the second factor. The outer error means the check could not be
/// made; the inner one that it failed.
pub(super) async fn check(
    relay: &Relay,
    name: &AccountName,
    account: Option<&User>,
    slot: Slot,
    password: Secret,
    second_factor: Option<Secret>,
) -> Result<Result<Authenticated, Failure>, AuthError> {
    let person = match first_factor(relay, name, account, slot, password).await? {
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
        .map_err(failed)?;
    Ok(verdict.map(|()| person))
}

async fn first_factor(
    relay: &Relay,
    name: &AccountName,
    account: Option<&User>,
    slot: Slot,
    password: Secret,
) -> Result<Result<Authenticated, Failure>, AuthError> {
    let directory = relay.directory.clone();
    match (account, directory) {
        (Some(a), _) if a.source == Source::Local => {
            let verdict = slot
                .verify(password, Some(a.password_hash.clone()))
                .await
                .map_err(failed)?;
            Ok(match verdict {
                Verification::Match => Ok(Authenticated {
                    name: a.name.clone(),
                    display_name: a.display_name.clone(),
                    organisation: a.organisation.clone(),
                    role: a.role,
                }),
                Verification::Mismatch => Err(Failure::Password(Rejection::WrongPassword)),
                Verification::BadHash => {
                    tracing::error!(user = %a.name, "stored password hash is unreadable; login refused");
                    Err(Failure::Password(Rejection::WrongPassword))
                }
            })
        }
        (account, Some(dir)) if account.is_none_or(|a| a.source == Source::Ldap) => {
            // The hashing work of a local account, done before the directory is asked, so a
            // directory login costs what a local one costs (plus the directory's own time).
            slot.verify(password.clone(), None).await.map_err(failed)?;
            Ok(match dir.authenticate(name.as_str(), &password).await? {
                // The certificate carries the relay account's name when there is one (the
                // account with the disabled flag and the permissions), else the canonical
                // name: never the directory's or the client's spelling.
                Verdict::Accepted(found) => Ok(Authenticated {
                    name: account.map_or_else(|| name.to_string(), |a| a.name.clone()),
                    ..found
                }),
                Verdict::Rejected(r) => Err(Failure::Password(r)),
            })
        }
        (account, _) => {
            // Unknown account, a directory account with no directory, or an account that signs
            // in with an identity provider (no password at all): same cost as a real check,
            // same answer.
            slot.verify(password, None).await.map_err(failed)?;
            Ok(Err(match account {
                Some(a) if a.source == Source::Oidc => Failure::OidcAccount,
                Some(_) => Failure::DirectoryAccountWithoutDirectory,
                None => Failure::Password(Rejection::UnknownUser),
            }))
        }
    }
}

async fn second_factor_ok(
    relay: &Relay,
    account: &User,
    code: Secret,
) -> Result<Result<(), Failure>, InternalError> {
    let id = account.id;
    let name = account.name.clone();
    let verdict = relay
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
        .await;
    // A recovery code used is an audit entry.
    relay.audit_recorded();
    verdict
}
