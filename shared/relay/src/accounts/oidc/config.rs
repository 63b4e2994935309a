//! The `[[oidc]]` tables of the relay's configuration: one per OpenID Connect provider the
//! help desk's operators may sign in with. [`OidcConfig::validate`] checks each table alone;
//! [`validate_all`] checks them together (unique names).
//!
//! ```toml
//! [[oidc]]
//! name = "corp"                                  # "Sign in with corp"
//! issuer = "https://login.example.com/realms/helpdesk"
//! client_id = "sightline-relay"
//! client_secret_file = "/etc/sightline/oidc-corp.secret"   # absent: a public client
//! operator_group = "helpdesk-operators"
//! admin_group = "helpdesk-admins"
//! require_acr = ["urn:example:mfa"]
//! max_age = 28800
//! mfa_replaces_totp = true
//! auto_provision = true                          # first sign-in creates the relay account
//! [oidc.group_permissions]
//! "helpdesk-operators" = ["view", "control"]
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use sightline_core::cert::Permissions;

/// Signature algorithms an ID token may use when the table names none: the asymmetric ones
/// providers publish keys for. `none` and the HMAC family are never accepted: the relay
/// verifies only with the provider's published keys.
pub const DEFAULT_ALGORITHMS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

/// Every algorithm an allow list may name.
const KNOWN_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// One `[[oidc]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Short name: what `viewer --oidc NAME` picks and the viewer's button says.
    pub name: String,
    /// The provider's issuer URL (its discovery document is at
    /// `ISSUER/.well-known/openid-configuration`): https, or http on loopback only.
    pub issuer: String,
    /// The relay's client id at the provider.
    pub client_id: String,
    /// File holding the client secret (mode 0600): the relay is a confidential client. Absent:
    /// a public client (PKCE alone).
    pub client_secret_file: Option<PathBuf>,
    /// Scopes asked for; `openid` must be among them.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim whose value is the operator's account name at the relay.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The claim shown to customers as the operator's name.
    #[serde(default = "default_display_name_claim")]
    pub display_name_claim: String,
    /// The claim shown to customers as the operator's organisation (none when absent).
    pub organisation_claim: Option<String>,
    /// The claim listing the user's groups (an array of strings, or one string).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Only members of this group or of `admin_group` may sign in; with `auto_provision`,
    /// members without a relay account get one as operators. With neither group, anyone the
    /// provider signs in may, who has a relay account linked to this provider (matched by
    /// `username_claim`).
    pub operator_group: Option<String>,
    /// Members of this group may sign in; with `auto_provision`, members without a relay
    /// account get one as relay administrators.
    pub admin_group: Option<String>,
    /// Permissions per group; a user gets the union of their groups' masks. A user in none of
    /// the listed groups gets the permissions of the role.
    #[serde(default)]
    pub group_permissions: BTreeMap<String, Vec<String>>,
    /// Authentication context classes accepted (any of them); empty: any.
    #[serde(default)]
    pub require_acr: Vec<String>,
    /// Seconds since the user last authenticated at the provider beyond which a login is
    /// refused; also the longest a certificate from such a login lives.
    pub max_age: Option<u64>,
    /// The provider's second factor (an accepted `acr`) replaces the relay's TOTP.
    #[serde(default)]
    pub mfa_replaces_totp: bool,
    /// A member of `operator_group` or `admin_group` who has no relay account gets one at the
    /// first sign-in (linked to this provider and the user's subject, with the group's role).
    /// Off: only accounts the administrator added (`relay user add NAME --oidc NAME`) sign in.
    #[serde(default)]
    pub auto_provision: bool,
    /// ID-token signature algorithms accepted.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(String::from).to_vec()
}

fn default_username_claim() -> String {
    "preferred_username".to_owned()
}

fn default_display_name_claim() -> String {
    "name".to_owned()
}

fn default_groups_claim() -> String {
    "groups".to_owned()
}

fn default_algorithms() -> Vec<String> {
    DEFAULT_ALGORITHMS.map(String::from).to_vec()
}

/// A key of an `[[oidc]]` table with a value that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[[oidc]] {provider}: {key}: {reason}")]
pub struct OidcConfigError {
    /// The table's `name` (or its position when the name is the problem).
    pub provider: String,
    /// The offending key.
    pub key: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl OidcConfig {
    fn error(&self, key: &'static str, reason: impl Into<String>) -> OidcConfigError {
        OidcConfigError {
            provider: self.name.clone(),
            key,
            reason: reason.into(),
        }
    }

    /// Checks that the table's keys make sense together.
    pub fn validate(&self) -> Result<(), OidcConfigError> {
        if !valid_name(&self.name) {
            return Err(self.error(
                "name",
                "1 to 32 characters of a-z, 0-9 and '-' (it is typed as viewer --oidc NAME)",
            ));
        }
        check_issuer(&self.issuer).map_err(|why| self.error("issuer", why))?;
        if self.client_id.trim().is_empty() {
            return Err(self.error("client_id", "must not be empty"));
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err(self.error("scopes", "must include \"openid\""));
        }
        for (key, claim) in [
            ("username_claim", &self.username_claim),
            ("display_name_claim", &self.display_name_claim),
            ("groups_claim", &self.groups_claim),
        ] {
            if claim.trim().is_empty() {
                return Err(self.error(key, "must not be empty"));
            }
        }
        self.check_groups()?;
        if self.mfa_replaces_totp && self.require_acr.is_empty() {
            return Err(self.error(
                "mfa_replaces_totp",
                "needs require_acr: only an authentication the provider says used a second \
                 factor may replace the relay's",
            ));
        }
        if let Some(age) = self.max_age {
            if !(60..=30 * 86_400).contains(&age) {
                return Err(self.error("max_age", "60 to 2592000 seconds (30 days)"));
            }
        }
        self.check_algorithms()
    }

    fn check_groups(&self) -> Result<(), OidcConfigError> {
        if self.auto_provision && self.operator_group.is_none() && self.admin_group.is_none() {
            return Err(self.error(
                "auto_provision",
                "needs operator_group or admin_group: otherwise everyone the provider signs in \
                 would get a relay account",
            ));
        }
        for (group, names) in &self.group_permissions {
            for name in names {
                if Permissions::from_name(name).is_none() {
                    return Err(self.error(
                        "group_permissions",
                        format!("{group}: unknown permission {name:?}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_algorithms(&self) -> Result<(), OidcConfigError> {
        if self.algorithms.is_empty() {
            return Err(self.error("algorithms", "must name at least one algorithm"));
        }
        for alg in &self.algorithms {
            if !KNOWN_ALGORITHMS.contains(&alg.as_str()) {
                return Err(self.error(
                    "algorithms",
                    format!(
                        "{alg:?} is not accepted (one of {}; `none` and HMAC never are)",
                        KNOWN_ALGORITHMS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Whether `name` can be a table's `name`: 1 to 32 characters of a-z, 0-9 and '-'.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks every table, and that their names are unique.
pub fn validate_all(providers: &[OidcConfig]) -> Result<(), OidcConfigError> {
    for (i, p) in providers.iter().enumerate() {
        p.validate()?;
        if providers[..i].iter().any(|q| q.name == p.name) {
            return Err(p.error("name", "another [[oidc]] table has the same name"));
        }
    }
    Ok(())
}

/// An issuer must be https (or http to this machine, for a provider on loopback), with no
/// query, fragment or credentials: its discovery document is fetched from it.
fn check_issuer(issuer: &str) -> Result<(), String> {
    let (scheme, rest) = issuer
        .split_once("://")
        .ok_or("must be a URL such as https://login.example.com/realms/helpdesk")?;
    let host_port = rest.split('/').next().unwrap_or_default();
    if host_port.is_empty() || rest.contains(['?', '#']) || host_port.contains('@') {
        return Err("must be a plain URL: a host, a path, no query, fragment or user".to_owned());
    }
    match scheme {
        "https" => Ok(()),
        "http" if is_loopback(host_port) => Ok(()),
        "http" => Err("must use https (plain http only to a provider on this machine)".to_owned()),
        _ => Err(format!("unknown scheme {scheme:?}: https")),
    }
}

/// Whether `host[:port]` names this machine.
fn is_loopback(host_port: &str) -> bool {
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(extra: &str) -> Result<OidcConfig, String> {
        let text = format!(
            "name = \"corp\"\nissuer = \"https://login.example.com/realms/x\"\nclient_id = \"relay\"\n{extra}"
        );
        let cfg: OidcConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        cfg.validate().map_err(|e| e.to_string())?;
        Ok(cfg)
    }

    #[test]
    fn a_minimal_table_gets_safe_defaults() {
        let cfg = table("").unwrap();
        assert_eq!(cfg.scopes, ["openid", "profile", "email"]);
        assert_eq!(cfg.username_claim, "preferred_username");
        assert_eq!(cfg.algorithms, DEFAULT_ALGORITHMS);
        assert!(!cfg.mfa_replaces_totp);
        assert!(
            !cfg.auto_provision,
            "accounts are the administrator's unless asked"
        );
        assert!(cfg.client_secret_file.is_none());
    }

    #[test]
    fn what_makes_no_sense_is_refused_with_the_key() {
        for (extra, key) in [
            ("scopes = [\"profile\"]", "scopes"),
            ("mfa_replaces_totp = true", "mfa_replaces_totp"),
            ("auto_provision = true", "auto_provision"),
            ("max_age = 5", "max_age"),
            ("algorithms = [\"HS256\"]", "algorithms"),
            ("algorithms = [\"none\"]", "algorithms"),
            ("algorithms = []", "algorithms"),
            ("username_claim = \" \"", "username_claim"),
            (
                "[group_permissions]\nops = [\"view\", \"fly\"]",
                "group_permissions",
            ),
        ] {
            let err = table(extra).unwrap_err();
            assert!(err.contains(&format!(": {key}: ")), "{extra}: {err}");
        }
        assert!(table("unknown_key = 1")
            .unwrap_err()
            .contains("unknown field"));
    }

    #[test]
    fn auto_provision_needs_a_group_that_gives_the_role() {
        for group in ["operator_group = \"ops\"", "admin_group = \"admins\""] {
            let cfg = table(&format!("auto_provision = true\n{group}")).unwrap();
            assert!(cfg.auto_provision, "{group}");
        }
        let err = table("auto_provision = true").unwrap_err();
        assert!(err.contains("operator_group or admin_group"), "{err}");
        assert!(table("auto_provision = \"yes\"\noperator_group = \"ops\"").is_err());
    }

    #[test]
    fn issuers_must_be_https_or_loopback() {
        for good in [
            "https://login.example.com",
            "https://login.microsoftonline.com/TENANT/v2.0",
            "http://127.0.0.1:4010",
            "http://localhost:8080/realms/x",
            "http://[::1]:9000",
        ] {
            assert_eq!(check_issuer(good), Ok(()), "{good}");
        }
        for bad in [
            "login.example.com",
            "http://login.example.com",
            "http://10.0.0.1:80",
            "ftp://x",
            "https://",
            "https://user@login.example.com",
            "https://login.example.com/?a=b",
            "https://login.example.com/#x",
        ] {
            assert!(check_issuer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_short_plain_and_unique() {
        let mut a = table("").unwrap();
        validate_all(&[a.clone()]).unwrap();
        assert!(validate_all(&[a.clone(), a.clone()]).is_err());
        a.name = "Corp SSO".to_owned();
        assert!(a.validate().is_err());
        for good in ["corp", "entra-2", &"x".repeat(32)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "Corp",
            "corp sso",
            "corp_sso",
            &"x".repeat(33),
            "corp\n",
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
