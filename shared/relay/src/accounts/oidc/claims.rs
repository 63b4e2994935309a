//! From the claims of an ID token that has already been verified (signature, issuer,
//! audience, expiry, nonce) to the operator the relay would certify: the account name, the
//! name and organisation customers see, the role and permissions the groups give, whether the
//! provider's second factor counts, and how long the certificate may live. Sans-IO: the token
//! verification and the account lookup are the caller's.
//!
//! Every refusal has words for the operator and a short reason for the audit log.

use serde_json::{Map, Value};
use sightline_core::cert::Permissions;

use super::config::OidcConfig;
use crate::accounts::account_name::AccountName;
use crate::accounts::auth::Role;

/// The claims of a verified ID token.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    /// `iss`.
    pub issuer: String,
    /// `sub`: with the issuer, who the user is for the provider (audited).
    pub subject: String,
    /// `auth_time`: when the user last authenticated at the provider (Unix seconds).
    pub auth_time: Option<u64>,
    /// `acr`.
    pub acr: Option<String>,
    /// Every claim, for the configured ones (name, groups, organisation).
    pub all: Map<String, Value>,
}

/// The operator an accepted login describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcOperator {
    /// The relay account name (from `username_claim`, canonical).
    pub account: AccountName,
    /// Shown to customers (from `display_name_claim`).
    pub display_name: Option<String>,
    /// Shown to customers (from `organisation_claim`).
    pub organisation: Option<String>,
    /// The role the groups give; `None` when the provider's groups give none (only an
    /// account pre-provisioned at the relay may then log in, with its own role).
    pub role: Option<Role>,
    /// The union of the masks of the user's groups in `group_permissions`; `None` when none
    /// of them is listed (the role's permissions apply).
    pub permissions: Option<Permissions>,
    /// The provider vouched for a second factor (an accepted `acr`) and the table lets it
    /// replace the relay's TOTP.
    pub second_factor_done: bool,
    /// The certificate must not outlive this (Unix seconds): `auth_time + max_age`.
    pub not_after: Option<u64>,
}

/// Why a verified token does not make an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcRefusal {
    /// A claim the table relies on is absent or not text.
    #[error("the identity provider did not send the {0:?} claim: ask your administrator to release it to the relay")]
    MissingClaim(String),
    /// The username claim cannot be a relay account name.
    #[error("your user name at the identity provider ({0:?}) cannot be a relay account name")]
    BadName(String),
    /// The table names groups and the user is in none of them.
    #[error("your account at the identity provider is not in a group allowed to use the relay")]
    NoAllowedGroup,
    /// The authentication's class is not an accepted one.
    #[error("the identity provider's sign-in did not use an accepted method (acr {0:?}): sign in again with your second factor")]
    AcrNotAccepted(Option<String>),
    /// The user authenticated too long ago (or the provider did not say when).
    #[error("your sign-in at the identity provider is too old: sign in again")]
    TooOld,
}

impl OidcRefusal {
    /// A short reason for the audit log.
    pub fn audit_reason(&self) -> &'static str {
        match self {
            OidcRefusal::MissingClaim(_) => "oidc claim missing",
            OidcRefusal::BadName(_) => "oidc name invalid",
            OidcRefusal::NoAllowedGroup => "oidc user in no allowed group",
            OidcRefusal::AcrNotAccepted(_) => "oidc acr not accepted",
            OidcRefusal::TooOld => "oidc authentication too old",
        }
    }
}

/// What `claims` make of the operator under `cfg`, at `now` (Unix seconds).
pub fn operator(
    cfg: &OidcConfig,
    claims: &VerifiedClaims,
    now: u64,
) -> Result<OidcOperator, OidcRefusal> {
    let acr_ok = cfg.require_acr.is_empty()
        || claims
            .acr
            .as_ref()
            .is_some_and(|acr| cfg.require_acr.contains(acr));
    if !acr_ok {
        return Err(OidcRefusal::AcrNotAccepted(claims.acr.clone()));
    }
    let not_after = match cfg.max_age {
        None => None,
        Some(max_age) => {
            let at = claims.auth_time.ok_or(OidcRefusal::TooOld)?;
            let until = at.saturating_add(max_age);
            if until <= now {
                return Err(OidcRefusal::TooOld);
            }
            Some(until)
        }
    };
    let typed = text(&claims.all, &cfg.username_claim)
        .ok_or_else(|| OidcRefusal::MissingClaim(cfg.username_claim.clone()))?;
    let account = AccountName::parse(&typed).ok_or(OidcRefusal::BadName(typed))?;
    let groups = groups(&claims.all, &cfg.groups_claim);
    let member = |g: &Option<String>| g.as_ref().is_some_and(|g| groups.contains(g));
    let role = if member(&cfg.admin_group) {
        Some(Role::Admin)
    } else if member(&cfg.operator_group) {
        Some(Role::Operator)
    } else {
        None
    };
    let names_groups = cfg.operator_group.is_some() || cfg.admin_group.is_some();
    if names_groups && role.is_none() {
        return Err(OidcRefusal::NoAllowedGroup);
    }
    let permissions = cfg
        .group_permissions
        .iter()
        .filter(|(group, _)| groups.contains(group))
        .flat_map(|(_, names)| names.iter().filter_map(|n| Permissions::from_name(n)))
        .fold(None, |acc: Option<Permissions>, p| {
            Some(acc.unwrap_or(Permissions::NONE).union(p))
        });
    Ok(OidcOperator {
        account,
        display_name: text(&claims.all, &cfg.display_name_claim),
        organisation: cfg
            .organisation_claim
            .as_ref()
            .and_then(|c| text(&claims.all, c)),
        role,
        permissions,
        second_factor_done: cfg.mfa_replaces_totp && !cfg.require_acr.is_empty() && acr_ok,
        not_after,
    })
}

/// A claim's value when it is a non-empty string.
fn text(all: &Map<String, Value>, claim: &str) -> Option<String> {
    all.get(claim)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The groups claim: an array of strings (other entries ignored), or one string.
fn groups(all: &Map<String, Value>, claim: &str) -> Vec<String> {
    match all.get(claim) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(extra: &str) -> OidcConfig {
        let text = format!(
            "name = \"corp\"\nissuer = \"https://idp.example\"\nclient_id = \"relay\"\n{extra}"
        );
        let cfg: OidcConfig = toml::from_str(&text).unwrap();
        cfg.validate().unwrap();
        cfg
    }

    fn claims(all: Value, acr: Option<&str>, auth_time: Option<u64>) -> VerifiedClaims {
        VerifiedClaims {
            issuer: "https://idp.example".to_owned(),
            subject: "abc-123".to_owned(),
            auth_time,
            acr: acr.map(str::to_owned),
            all: all.as_object().unwrap().clone(),
        }
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn groups_give_role_permissions_and_the_names_customers_see() {
        let cfg = cfg(concat!(
            "operator_group = \"ops\"\nadmin_group = \"admins\"\n",
            "organisation_claim = \"org\"\nrequire_acr = [\"mfa\"]\nmfa_replaces_totp = true\n",
            "max_age = 3600\n[group_permissions]\nops = [\"view\"]\nremote = [\"control\"]\n"
        ));
        let all = json!({"preferred_username": " Alice ", "name": "Alice Example",
                         "org": "Example Corp", "groups": ["ops", "remote", 7]});
        let op = operator(&cfg, &claims(all, Some("mfa"), Some(NOW - 60)), NOW).unwrap();
        assert_eq!(op.account.as_str(), "alice");
        assert_eq!(op.display_name.as_deref(), Some("Alice Example"));
        assert_eq!(op.organisation.as_deref(), Some("Example Corp"));
        assert_eq!(op.role, Some(Role::Operator));
        assert_eq!(
            op.permissions,
            Some(Permissions::VIEW.union(Permissions::CONTROL))
        );
        assert!(op.second_factor_done);
        assert_eq!(op.not_after, Some(NOW - 60 + 3600));

        let all = json!({"preferred_username": "carol", "groups": "admins"});
        let op = operator(&cfg, &claims(all, Some("mfa"), Some(NOW)), NOW).unwrap();
        assert_eq!((op.role, op.permissions), (Some(Role::Admin), None));
    }

    #[test]
    fn each_refusal_says_why() {
        let cfg = cfg("operator_group = \"ops\"\nrequire_acr = [\"mfa\"]\nmax_age = 600\n");
        let ok = json!({"preferred_username": "alice", "groups": ["ops"]});
        let refuse = |all: Value, acr: Option<&str>, at: Option<u64>| {
            operator(&cfg, &claims(all, acr, at), NOW).unwrap_err()
        };
        assert_eq!(
            refuse(ok.clone(), Some("pwd"), Some(NOW)),
            OidcRefusal::AcrNotAccepted(Some("pwd".to_owned()))
        );
        assert_eq!(
            refuse(ok.clone(), None, Some(NOW)),
            OidcRefusal::AcrNotAccepted(None)
        );
        assert_eq!(
            refuse(ok.clone(), Some("mfa"), Some(NOW - 600)),
            OidcRefusal::TooOld
        );
        assert_eq!(refuse(ok.clone(), Some("mfa"), None), OidcRefusal::TooOld);
        assert_eq!(
            refuse(json!({"groups": ["ops"]}), Some("mfa"), Some(NOW)),
            OidcRefusal::MissingClaim("preferred_username".to_owned())
        );
        assert_eq!(
            refuse(
                json!({"preferred_username": "a b", "groups": ["ops"]}),
                Some("mfa"),
                Some(NOW)
            ),
            OidcRefusal::BadName("a b".to_owned())
        );
        assert_eq!(
            refuse(
                json!({"preferred_username": "bob", "groups": ["sales"]}),
                Some("mfa"),
                Some(NOW)
            ),
            OidcRefusal::NoAllowedGroup
        );
        let refusal = refuse(json!({"preferred_username": "bob"}), Some("mfa"), Some(NOW));
        assert_eq!(refusal.audit_reason(), "oidc user in no allowed group");
        assert!(refusal.to_string().contains("not in a group allowed"));
    }

    #[test]
    fn without_groups_only_the_account_decides() {
        // No group named: the login maps to no role, so only an account the relay already
        // has may log in (the caller's check); the provider's acr counts only when asked.
        let cfg = cfg("");
        let all = json!({"preferred_username": "dave"});
        let op = operator(&cfg, &claims(all, Some("mfa"), None), NOW).unwrap();
        assert_eq!((op.role, op.permissions, op.not_after), (None, None, None));
        assert!(!op.second_factor_done);
    }
}
