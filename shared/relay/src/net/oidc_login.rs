//! An operator's login through an OpenID Connect provider ([`crate::accounts::oidc`]): the
//! proof that the viewer holds its key first (as for a password login), then the provider's
//! sign-in, which the operator completes in a browser while this connection waits (the device
//! grant, in any browser; or the authorization-code flow in the viewer's system browser, which
//! comes back to the viewer's loopback redirect and the viewer passes on), then the claims
//! made an operator, the relay account that operator is ([`crate::accounts::oidc::provision`]:
//! linked to this provider and its user there, or created by `auto_provision`; a disabled
//! account is refused whatever the provider says), and the certificate, valid no longer than
//! the provider's session allows (`max_age`).
//!
//! Every outcome is in the audit log with the provider's issuer and subject; every refusal
//! reaches the viewer in words. A refusal counts as a failed login of the address (the
//! brute-force limits of password logins), and an address that is held back starts no
//! sign-in: each start costs requests to the provider.

use crate::accounts::auth::Authenticated;
use crate::accounts::issued;
use crate::accounts::login::{issue, LoginOutcome, Possession};
use crate::accounts::oidc::browser;
use crate::accounts::oidc::claims::{self, VerifiedClaims};
use crate::accounts::oidc::config::OidcConfig;
use crate::accounts::oidc::device::{self, DeviceCode};
use crate::accounts::oidc::error::OidcError;
use crate::accounts::oidc::provision;
use crate::context::{InternalError, Relay};
use crate::net::conn::Conn;
use crate::net::replies;
use crate::net::route::OidcFlow;
use crate::store::audit;
use crate::store::failures::{self, Limit};
use sightline_core::identity::{PublicIdentity, MIN_PEER_BITS};
use sightline_core::relay_proto::{oidc_login_user, ClientMessage, RelayErrorKind, RelayMessage};
use sightline_net::clock;

/// How a login through a provider ended: the answer, and the connection closed when `None`.
#[derive(Debug)]
pub enum Ended {
    /// Accepted or refused: the outcome (`Accepted` carries the certificate).
    Outcome(LoginOutcome),
    /// Refused with these words for the viewer.
    Refused(RelayMessage),
}

/// What the viewer asked for: a login through `provider` for `operator_key`, with the proof
/// of possession, by the device grant or in the browser.
#[derive(Debug)]
pub struct Asked {
    /// The `[[oidc]]` table's name.
    pub provider: String,
    /// The operator's public key (SPKI DER).
    pub operator_key: Vec<u8>,
    /// The proof that the viewer holds it.
    pub possession: Possession,
    /// Which grant.
    pub flow: OidcFlow,
}

/// Runs one login through a provider.
pub async fn attempt(relay: &Relay, conn: &mut Conn, asked: Asked) -> Result<Ended, InternalError> {
    let Asked {
        provider,
        operator_key,
        possession,
        flow,
    } = asked;
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
    let signed_in = sign_in(cfg, conn, flow).await;
    let now = clock::now_unix();
    let claims = match signed_in {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(peer = %ip, provider = %cfg.name, error = %e, "oidc login failed");
            // Only the operator's own failures count (a forged redirect included); an
            // unreachable provider is not theirs.
            let counted = matches!(
                e,
                OidcError::NotCompleted { .. } | OidcError::BadToken(_) | OidcError::BadRedirect(_)
            );
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
            let why = (refusal.audit_reason(), refusal.to_string());
            return refuse_verified(relay, ip, cfg, &claims, why, &limit).await;
        }
    };
    let name = operator.account.as_str().to_owned();
    // The relay account linked to the provider (created now with `auto_provision`), which
    // may be disabled or another user's: one step under the database lock.
    let admitted = {
        let (cfg, claims, operator) = (cfg.clone(), claims.clone(), operator.clone());
        let actor = ip.to_string();
        relay
            .with_db(move |db| provision::admit(db, &cfg, &claims, &operator, &actor, now))
            .await?
    };
    let admitted = match admitted {
        Ok(a) => a,
        Err(refusal) => {
            let why = (refusal.audit_reason(), refusal.to_string());
            return refuse_verified(relay, ip, cfg, &claims, why, &limit).await;
        }
    };
    // The account made or its user recorded, with their audit entries.
    relay.audit_recorded();
    if admitted.provisioned {
        tracing::info!(user = %name, provider = %cfg.name, role = %admitted.account.role, "relay account created at its first sign-in (auto_provision)");
    }
    let role = admitted.account.role;
    let account = Some(admitted.account);
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

/// The provider's sign-in by `flow`: the viewer is told where to sign in (a page and a code,
/// or the authorization page to open), and in the browser flow it sends back what the browser
/// brought to its loopback redirect.
async fn sign_in(
    cfg: &OidcConfig,
    conn: &mut Conn,
    flow: OidcFlow,
) -> Result<VerifiedClaims, OidcError> {
    match flow {
        OidcFlow::Device => {
            device::sign_in(cfg, |code: DeviceCode| {
                let shown = RelayMessage::OidcDevice {
                    verification_uri: code.verification_uri,
                    verification_uri_complete: code.verification_uri_complete,
                    user_code: code.user_code,
                    expires_in: code.expires_in,
                };
                async move { conn.send(&shown).await.map_err(|_| OidcError::Gone) }
            })
            .await
        }
        OidcFlow::Browser { redirect_uri } => {
            browser::sign_in(cfg, &redirect_uri, |authorization_url: String| async move {
                conn.send(&RelayMessage::OidcBrowser { authorization_url })
                    .await
                    .map_err(|_| OidcError::Gone)?;
                let answer = tokio::time::timeout(browser::MAX_WAIT, conn.receive()).await;
                match answer {
                    Ok(Ok(Some(ClientMessage::OidcRedirect { query }))) => Ok(query),
                    Ok(Ok(Some(_))) => Err(OidcError::BadRedirect(
                        "the viewer sent something else while the browser sign-in ran".into(),
                    )),
                    Ok(Ok(None) | Err(_)) => Err(OidcError::Gone),
                    Err(_) => Err(OidcError::NotCompleted {
                        provider: cfg.name.clone(),
                        detail: "the browser did not come back in time".into(),
                    }),
                }
            })
            .await
        }
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

/// Refuses a sign-in whose token verified (`why`: the audit reason and the operator's words):
/// logged and audited with the user at the provider, and counted against the address.
async fn refuse_verified(
    relay: &Relay,
    ip: std::net::IpAddr,
    cfg: &OidcConfig,
    claims: &VerifiedClaims,
    why: (&'static str, String),
    limit: &Limit,
) -> Result<Ended, InternalError> {
    let (reason, words) = why;
    tracing::warn!(peer = %ip, provider = %cfg.name, subject = %claims.subject, reason, "oidc login refused");
    refused_audit(relay, ip, cfg, Some(claims), reason, Some(limit)).await?;
    Ok(Ended::Refused(error(RelayErrorKind::LoginFailed, &words)))
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
