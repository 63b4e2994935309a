//! An operator's login through an OpenID Connect provider with the device grant
//! ([`crate::accounts::oidc`]): the proof that the viewer holds its key first (as for a
//! password login), then the provider's sign-in, which the operator completes in a browser
//! anywhere while this connection waits, then the claims made an operator, the relay
//! account's say (a disabled account is refused whatever the provider says), and the
//! certificate, valid no longer than the provider's session allows (`max_age`).
//!
//! Every outcome is in the audit log with the provider's issuer and subject; every refusal
//! reaches the viewer in words. A refusal counts as a failed login of the address (the
//! brute-force limits of password logins), and an address that is held back starts no
//! sign-in: each start costs requests to the provider.

use crate::accounts::auth::{Authenticated, Role};
use crate::accounts::issued;
use crate::accounts::login::{issue, LoginOutcome, Possession};
use crate::accounts::oidc::claims::{self, OidcOperator, VerifiedClaims};
use crate::accounts::oidc::config::OidcConfig;
use crate::accounts::oidc::device::{self, DeviceCode, OidcError};
use crate::accounts::users::{self, User};
use crate::context::{InternalError, Relay};
use crate::net::conn::Conn;
use crate::net::replies;
use crate::store::audit;
use crate::store::failures::{self, Limit};
use sightline_core::identity::{PublicIdentity, MIN_PEER_BITS};
use sightline_core::relay_proto::{oidc_login_user, RelayErrorKind, RelayMessage};
use sightline_net::clock;

/// How a login through a provider ended: the answer, and the connection closed when `None`.
#[derive(Debug)]
pub enum Ended {
    /// Accepted or refused: the outcome (`Accepted` carries the certificate).
    Outcome(LoginOutcome),
    /// Refused with these words for the viewer.
    Refused(RelayMessage),
}

/// Runs one login through `provider` for `operator_key`.
pub async fn attempt(
    relay: &Relay,
    conn: &mut Conn,
    provider: String,
    operator_key: Vec<u8>,
    possession: Possession,
) -> Result<Ended, InternalError> {
    let ip = conn.peer.ip();
    let key = match PublicIdentity::from_spki_der(&operator_key, MIN_PEER_BITS) {
        Ok(k) => k,
        Err(e) => return Ok(Ended::Outcome(LoginOutcome::BadKey(e.to_string()))),
    };
    if let Err(why) = possession.check(&key, &operator_key, &oidc_login_user(&provider)) {
        tracing::warn!(peer = %ip, reason = why, "oidc login refused: operator key not proven");
        return Ok(Ended::Outcome(LoginOutcome::NotProven(why)));
    }
    let Some(cfg) = relay.config.oidc.iter().find(|p| p.name == provider) else {
        let offered: Vec<&str> = relay.config.oidc.iter().map(|p| p.name.as_str()).collect();
        let msg = match offered.is_empty() {
            true => "this relay offers no sign-in with an identity provider".to_owned(),
            false => format!(
                "this relay has no identity provider {provider:?}; it offers: {}",
                offered.join(", ")
            ),
        };
        return Ok(Ended::Refused(replies::bad_request(&msg)));
    };
    let limit = address_limit(relay, ip);
    let check = vec![limit.clone()];
    let wait = relay
        .with_db(move |db| failures::retry_after(db, &check, clock::now_unix()))
        .await?;
    if let Some(wait) = wait {
        tracing::warn!(peer = %ip, wait, "oidc login refused: rate limited");
        return Ok(Ended::Outcome(LoginOutcome::RateLimited(wait)));
    }
    let signed_in = device::sign_in(cfg, |code: DeviceCode| {
        let shown = RelayMessage::OidcDevice {
            verification_uri: code.verification_uri,
            verification_uri_complete: code.verification_uri_complete,
            user_code: code.user_code,
            expires_in: code.expires_in,
        };
        async move { conn.send(&shown).await.map_err(|_| OidcError::Gone) }
    })
    .await;
    let now = clock::now_unix();
    let claims = match signed_in {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(peer = %ip, provider = %cfg.name, error = %e, "oidc login failed");
            // Only the operator's own failures count; an unreachable provider is not theirs.
            let counted = matches!(e, OidcError::NotCompleted { .. } | OidcError::BadToken(_));
            let counted = counted.then_some(&limit);
            refused_audit(relay, ip, cfg, None, e.audit_reason(), counted).await?;
            let kind = match e {
                OidcError::Unreachable { .. } | OidcError::Secret { .. } => {
                    RelayErrorKind::AuthUnavailable
                }
                _ => RelayErrorKind::LoginFailed,
            };
            return Ok(Ended::Refused(error(kind, &e.to_string())));
        }
    };
    let operator = match claims::operator(cfg, &claims, now) {
        Ok(o) => o,
        Err(refusal) => {
            tracing::warn!(peer = %ip, provider = %cfg.name, subject = %claims.subject, %refusal, "oidc login refused");
            refused_audit(
                relay,
                ip,
                cfg,
                Some(&claims),
                refusal.audit_reason(),
                Some(&limit),
            )
            .await?;
            return Ok(Ended::Refused(error(
                RelayErrorKind::LoginFailed,
                &refusal.to_string(),
            )));
        }
    };
    let name = operator.account.as_str().to_owned();
    let account = {
        let n = name.clone();
        relay.with_db(move |db| users::find(db, &n)).await?
    };
    if let Err(why) = admissible(account.as_ref(), &operator) {
        tracing::warn!(peer = %ip, user = %name, provider = %cfg.name, reason = why, "oidc login refused");
        refused_audit(relay, ip, cfg, Some(&claims), why, Some(&limit)).await?;
        return Ok(Ended::Refused(error(
            RelayErrorKind::LoginFailed,
            &words(why),
        )));
    }
    let role = account
        .as_ref()
        .map(|a| a.role)
        .or(operator.role)
        .unwrap_or(Role::Operator);
    let detail = format!("issuer={} subject={}", claims.issuer, claims.subject);
    let actor = ip.to_string();
    let subject = name.clone();
    // A complete sign-in takes a certificate from the account's quota, as a password login
    // does (under the database lock, so racing sign-ins cannot both take the last one).
    let (account_name, quota) = (
        operator.account.clone(),
        relay.config.login_limit.certificates,
    );
    let over_quota = relay
        .with_db(move |db| {
            if let Some(wait) = issued::take(db, &account_name, quota, now)? {
                return Ok(Some(wait));
            }
            audit::record(
                db,
                now,
                &actor,
                "login.oidc.ok",
                Some(&subject),
                Some(&detail),
            )?;
            Ok(None)
        })
        .await?;
    if let Some(wait) = over_quota {
        tracing::warn!(user = %name, peer = %ip, wait, "oidc login refused: certificate quota of the account used up");
        return Ok(Ended::Outcome(LoginOutcome::RateLimited(wait)));
    }
    relay.audit_recorded();
    let person = Authenticated {
        name,
        display_name: operator.display_name.clone(),
        organisation: operator.organisation.clone(),
        role,
    };
    let outcome = issue::certificate(
        relay,
        account.as_ref(),
        person,
        &key,
        ip,
        now,
        issue::Narrowed {
            not_after: operator.not_after,
            permissions: operator.permissions,
        },
    )
    .await?;
    Ok(Ended::Outcome(outcome))
}

/// Whether the relay lets this operator in: its account is not disabled, it has one or the
/// provider's groups give a role, and the second factor is the provider's (the relay's TOTP
/// cannot be typed in a device sign-in). The reason for the audit log when not.
fn admissible(account: Option<&User>, operator: &OidcOperator) -> Result<(), &'static str> {
    if account.is_some_and(|a| a.disabled) {
        return Err("oidc account disabled");
    }
    if account.is_none() && operator.role.is_none() {
        return Err("oidc no relay account and no group role");
    }
    // An acr outside `require_acr` was refused with the claims; what is left is a table that
    // does not let the provider's second factor stand in for the relay's.
    if !operator.second_factor_done {
        return Err("oidc no second factor");
    }
    Ok(())
}

/// The operator's words for a reason of [`admissible`].
fn words(why: &str) -> String {
    match why {
        "oidc account disabled" => "your relay account is disabled: ask your administrator".into(),
        "oidc no relay account and no group role" => {
            "you have no relay account, and your groups at the identity provider give you no role \
             on the relay: ask your administrator"
                .into()
        }
        _ => "the relay needs a second factor: the identity provider must vouch for one \
              (require_acr with mfa_replaces_totp), since the relay's own code cannot be typed \
              in this sign-in"
            .into(),
    }
}

fn error(kind: RelayErrorKind, message: &str) -> RelayMessage {
    RelayMessage::Error {
        kind,
        message: message.to_owned(),
        retry_after_secs: None,
    }
}

/// The address's brute-force counter, as for password logins.
fn address_limit(relay: &Relay, ip: std::net::IpAddr) -> Limit {
    let limits = relay.config.login_limit;
    Limit::login_address(ip, limits.per_address, Some(limits.lockout))
}

/// Records a refused sign-in with the provider, its issuer and (when known) the subject, and
/// counts it against `counted` when given.
async fn refused_audit(
    relay: &Relay,
    ip: std::net::IpAddr,
    cfg: &OidcConfig,
    claims: Option<&VerifiedClaims>,
    reason: &'static str,
    counted: Option<&Limit>,
) -> Result<(), InternalError> {
    let now = clock::now_unix();
    let detail = match claims {
        Some(c) => format!("reason={reason} issuer={} subject={}", c.issuer, c.subject),
        None => format!("reason={reason} issuer={}", cfg.issuer),
    };
    let actor = ip.to_string();
    let counted = counted.cloned();
    relay
        .with_db(move |db| {
            if let Some(limit) = counted {
                failures::record_failure(db, &[limit], now)?;
            }
            audit::record(db, now, &actor, "login.oidc.refused", None, Some(&detail))
        })
        .await?;
    relay.audit_recorded();
    Ok(())
}
