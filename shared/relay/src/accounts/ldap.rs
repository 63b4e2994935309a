//! Checking operator passwords against an LDAP directory (OpenLDAP, 389 DS, Active Directory).
//!
//! The relay keeps no copy of the password: every login opens a fresh TLS connection to the
//! directory, asks it whether the password is right with a simple bind, reads the user's name
//! and organisation, and decides the role from group membership. The connection is unbound and
//! closed before the answer is returned. A help desk logs in a few times an hour, so there is
//! no pool to keep healthy.
//!
//! ## The flow
//!
//! 1. An empty password is [`Rejection::WrongPassword`] at once, without contacting the
//!    directory: a simple bind with an empty password is an *unauthenticated* bind (RFC 4513
//!    §5.1.2), which many servers answer with success.
//! 2. Connect to `url`: `ldaps://` (TLS from the first byte) or `ldap://` with StartTLS. Plain
//!    text is refused by [`LdapConfig::validate`], since the password would cross the network
//!    in clear. The server certificate is checked against `ca_file` (or the system's bundle)
//!    and the host name in `url`.
//! 3. Find the user's DN, in one of two modes:
//!    - **template**: `user_dn_template` with `{user}` replaced by the user name, escaped for a
//!      DN (RFC 4514); or
//!    - **search**: bind as the service account `bind_dn` (password in `bind_password_file`),
//!      or stay anonymous without one, then search the subtree `search_base` with
//!      `search_filter`, `{user}` replaced by the name escaped for a filter (RFC 4515).
//!      No entry is [`Rejection::UnknownUser`]; more than one is an error (the filter is
//!      ambiguous, and picking one would let the wrong person in), and so is a base that
//!      does not exist or may not be searched.
//! 4. Bind as that DN with the password. Result code 49 (`invalidCredentials`) is
//!    [`Rejection::WrongPassword`]; with a template an unknown user also gets 49.
//! 5. Read `display_name_attribute` and `organisation_attribute` from the user's entry (in
//!    template mode with a base search on the DN, bound as the user).
//! 6. Decide the role. In search mode with a service account the connection binds as the
//!    service account again first, so that groups only it may read still work. A group is
//!    read with a base search on its DN and the user is a member when one of the
//!    `group_member_attribute` values equals the user's DN, compared case-insensitively and
//!    ignoring spaces around `,`, `=` and `+`:
//!    - member of `admin_group` (when set): [`Role::Admin`];
//!    - otherwise, when `operator_group` is set: member → [`Role::Operator`], not a member →
//!      [`Rejection::NotAuthorised`];
//!    - otherwise every user whose bind succeeded is an operator.
//!
//!    A group that cannot be read (wrong DN, access control) is an error, not a rejection:
//!    the directory is misconfigured, the user did nothing wrong.
//!
//! Every step, the connection included, must finish within `timeout_secs`; a directory that
//! does not answer, refuses the connection or cannot be resolved is [`AuthError::Unavailable`]
//! and names the URL. A TLS failure (untrusted certificate, wrong host name, a plain-text port
//! behind an `ldaps://` URL) is [`AuthError::Failed`] and says that TLS is the problem.
//!
//! ## Configuration (`[ldap]` in the relay's TOML file)
//!
//! ```toml
//! [ldap]
//! url = "ldaps://ldap.example.org:636"      # or "ldap://ldap.example.org:389" + starttls
//! starttls = false                          # StartTLS on an ldap:// URL; required for ldap://
//! ca_file = "/etc/sightline/ldap-ca.pem"    # PEM CA certificates; default: system bundle
//!
//! # Either a DN template (direct bind as the user) ...
//! user_dn_template = "uid={user},ou=people,dc=example,dc=org"
//! # ... or a search, optionally bound as a service account:
//! # search_base = "ou=people,dc=example,dc=org"
//! # search_filter = "(&(objectClass=person)(uid={user}))"
//! # bind_dn = "cn=sightline,ou=services,dc=example,dc=org"
//! # bind_password_file = "/etc/sightline/ldap-bind-password"   # mode 0600
//!
//! operator_group = "cn=helpdesk,ou=groups,dc=example,dc=org"   # default: anyone who binds
//! admin_group = "cn=admins,ou=groups,dc=example,dc=org"        # default: nobody is admin
//! group_member_attribute = "member"         # "uniqueMember" for groupOfUniqueNames
//! display_name_attribute = "displayName"
//! organisation_attribute = "o"
//! timeout_secs = 5                          # 1..=60, per step and for the connection
//! provides_second_factor = false            # see below
//! ```
//!
//! Without `ca_file` the system bundle is used: the file named by `SSL_CERT_FILE`, else the
//! first of `/etc/ssl/certs/ca-certificates.crt` (Debian, Ubuntu),
//! `/etc/pki/tls/certs/ca-bundle.crt` (Fedora, RHEL), `/etc/ssl/ca-bundle.pem` (openSUSE) and
//! `/etc/ssl/cert.pem` (Alpine, BSD, macOS) that exists. The CA file and the service password
//! are read once, by [`LdapAuthenticator::new`]: a missing, unreadable or empty file stops
//! the relay at start-up rather than failing every login. The password file must be readable
//! by its owner only (mode 0600), like every secret of the relay; one trailing newline is
//! removed, and an empty password is refused (it would make the service bind anonymous).
//!
//! `provides_second_factor` is not used here: it tells [`crate::accounts::login`] that the directory
//! already demands a second factor (a one-time code appended to the password, RADIUS behind
//! LDAP), so that the relay's own TOTP is not asked for on top.
//!
//! The password is never logged, and neither is anything read from the password file.

use crate::accounts::auth::{
    AuthError, Authenticated, Authenticator, BoxFuture, Rejection, Role, Verdict,
};
use ldap3::asn1::{StructureTag, PL};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, ResultEntry, Scope, SearchOptions};
use serde::Deserialize;
use sightline_core::relay_proto::Secret;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The placeholder replaced by the user name in `user_dn_template` and `search_filter`.
pub const USER_PLACEHOLDER: &str = "{user}";

/// The name of the connection step in messages.
const CONNECTING: &str = "connecting";
/// Result code of a bind with a wrong password or an unknown DN.
const INVALID_CREDENTIALS: u32 = 49;
/// Result code of a search whose base does not exist (or may not be seen).
const NO_SUCH_OBJECT: u32 = 32;
/// Result code of a search that found more entries than the size limit allows.
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// System CA bundles tried, in order, when `ca_file` is not set (after `SSL_CERT_FILE`).
pub const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn default_member_attribute() -> String {
    "member".to_string()
}

fn default_display_name_attribute() -> String {
    "displayName".to_string()
}

fn default_organisation_attribute() -> String {
    "o".to_string()
}

fn default_timeout_secs() -> u64 {
    5
}

/// The `[ldap]` table of the relay's configuration. See the [module documentation](self) for
/// the meaning of every key; [`LdapConfig::validate`] checks that they make sense together.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldaps://host[:port]` or `ldap://host[:port]` (the latter only with `starttls`).
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before sending anything else.
    #[serde(default)]
    pub starttls: bool,
    /// PEM file of the CA certificates to trust; the system bundle when absent.
    pub ca_file: Option<PathBuf>,
    /// DN of a user, with `{user}` once: bind directly as the user.
    pub user_dn_template: Option<String>,
    /// Subtree searched for the user (search mode).
    pub search_base: Option<String>,
    /// Filter finding the user, with `{user}` at least once (search mode).
    pub search_filter: Option<String>,
    /// Service account for the search (search mode); anonymous when absent.
    pub bind_dn: Option<String>,
    /// File holding the service account's password, mode 0600.
    pub bind_password_file: Option<PathBuf>,
    /// DN of the group whose members may log in; anyone who binds when absent.
    pub operator_group: Option<String>,
    /// DN of the group whose members are relay administrators.
    pub admin_group: Option<String>,
    /// Attribute of a group entry listing member DNs.
    #[serde(default = "default_member_attribute")]
    pub group_member_attribute: String,
    /// Attribute of the user's entry shown to customers as the operator's name.
    #[serde(default = "default_display_name_attribute")]
    pub display_name_attribute: String,
    /// Attribute of the user's entry shown to customers as the operator's organisation.
    #[serde(default = "default_organisation_attribute")]
    pub organisation_attribute: String,
    /// Limit in seconds for the connection and for every operation, 1 to 60.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The directory enforces a second factor itself, so the relay's TOTP is skipped (read by
    /// [`crate::accounts::login`], not by this module).
    #[serde(default)]
    pub provides_second_factor: bool,
}

/// A key of the `[ldap]` table with a value that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[ldap] {key}: {reason}")]
pub struct LdapConfigError {
    /// The offending key (for a conflict or an omission, the first key named in `reason`).
    pub key: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl LdapConfigError {
    fn new(key: &'static str, reason: impl Into<String>) -> Self {
        Self {
            key,
            reason: reason.into(),
        }
    }
}

/// Why an [`LdapAuthenticator`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LdapSetupError {
    /// The configuration is inconsistent.
    #[error(transparent)]
    Config(#[from] LdapConfigError),
    /// A file named by the configuration could not be read.
    #[error("[ldap] {key}: cannot read {path}: {source}")]
    Read {
        /// The key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The service password file may be read by others than its owner.
    #[error(
        "[ldap] bind_password_file: {path} has mode {mode:04o}; it holds a password and must \
         be readable by its owner only (chmod 600 {path})"
    )]
    LoosePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file was read but its contents cannot be used.
    #[error("[ldap] {key}: {path}: {reason}")]
    Contents {
        /// The key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No `ca_file` and no system CA bundle.
    #[error(
        "[ldap] ca_file: not set and no system CA bundle found (tried $SSL_CERT_FILE and {tried}); \
         set ca_file to the PEM certificate of the CA that signed the directory's certificate"
    )]
    NoSystemRoots {
        /// The places looked at.
        tried: String,
    },
    /// rustls refused to build a client configuration.
    #[error("[ldap] cannot set up TLS: {0}")]
    Tls(String),
}

/// How the user's DN is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode<'a> {
    Template(&'a str),
    Search { base: &'a str, filter: &'a str },
}

impl LdapConfig {
    /// Checks the keys for sense and for consistency with each other; the error names the
    /// offending key. Files are not read here (see [`LdapAuthenticator::new`]).
    pub fn validate(&self) -> Result<(), LdapConfigError> {
        let url = parse_url(&self.url).map_err(|reason| LdapConfigError::new("url", reason))?;
        match (url.tls, self.starttls) {
            (true, true) => {
                return Err(LdapConfigError::new(
                    "starttls",
                    "only applies to ldap:// URLs; an ldaps:// connection is TLS from the start",
                ))
            }
            (false, false) => {
                return Err(LdapConfigError::new(
                    "url",
                    "an ldap:// URL without `starttls = true` would send passwords in clear; \
                     use ldaps:// or set starttls = true",
                ))
            }
            _ => {}
        }
        self.mode()?;
        if let Some(dn) = &self.bind_dn {
            if dn.trim().is_empty() {
                return Err(LdapConfigError::new("bind_dn", "is empty"));
            }
        }
        for (key, value) in [
            ("operator_group", &self.operator_group),
            ("admin_group", &self.admin_group),
        ] {
            if let Some(dn) = value {
                if dn.trim().is_empty() {
                    return Err(LdapConfigError::new(
                        key,
                        "is empty; leave the key out instead",
                    ));
                }
            }
        }
        for (key, value) in [
            ("group_member_attribute", &self.group_member_attribute),
            ("display_name_attribute", &self.display_name_attribute),
            ("organisation_attribute", &self.organisation_attribute),
        ] {
            if !is_attribute_name(value) {
                return Err(LdapConfigError::new(
                    key,
                    format!("{value:?} is not an attribute name"),
                ));
            }
        }
        if !(1..=60).contains(&self.timeout_secs) {
            return Err(LdapConfigError::new(
                "timeout_secs",
                format!("{} is outside 1..=60", self.timeout_secs),
            ));
        }
        if let Some(path) = &self.ca_file {
            if path.as_os_str().is_empty() {
                return Err(LdapConfigError::new("ca_file", "is empty"));
            }
        }
        Ok(())
    }

    /// The DN-finding mode, checking that exactly one is configured.
    fn mode(&self) -> Result<Mode<'_>, LdapConfigError> {
        match (
            &self.user_dn_template,
            &self.search_base,
            &self.search_filter,
        ) {
            (Some(template), None, None) => {
                if template.matches(USER_PLACEHOLDER).count() != 1 {
                    return Err(LdapConfigError::new(
                        "user_dn_template",
                        format!("must contain {USER_PLACEHOLDER} exactly once: {template:?}"),
                    ));
                }
                if !template.contains('=') {
                    return Err(LdapConfigError::new(
                        "user_dn_template",
                        format!("{template:?} is not a DN"),
                    ));
                }
                for (key, set) in [
                    ("bind_dn", self.bind_dn.is_some()),
                    ("bind_password_file", self.bind_password_file.is_some()),
                ] {
                    if set {
                        return Err(LdapConfigError::new(
                            key,
                            "only applies to search mode (search_base + search_filter); \
                             user_dn_template binds directly as the user",
                        ));
                    }
                }
                Ok(Mode::Template(template))
            }
            (Some(_), _, _) => Err(LdapConfigError::new(
                "user_dn_template",
                "conflicts with search_base/search_filter: set either user_dn_template \
                 (direct bind) or search_base + search_filter (search), not both",
            )),
            (None, Some(base), Some(filter)) => {
                if base.trim().is_empty() {
                    return Err(LdapConfigError::new("search_base", "is empty"));
                }
                if !filter.contains(USER_PLACEHOLDER) {
                    return Err(LdapConfigError::new(
                        "search_filter",
                        format!("must contain {USER_PLACEHOLDER}: {filter:?}"),
                    ));
                }
                let sample = filter.replace(USER_PLACEHOLDER, "x");
                let sample = sample.trim();
                if !(sample.starts_with('(') && sample.ends_with(')'))
                    || ldap3::parse_filter(sample).is_err()
                {
                    return Err(LdapConfigError::new(
                        "search_filter",
                        format!(
                            "{filter:?} is not an LDAP filter (RFC 4515), e.g. \"(uid={{user}})\""
                        ),
                    ));
                }
                match (&self.bind_dn, &self.bind_password_file) {
                    (Some(_), None) => Err(LdapConfigError::new(
                        "bind_password_file",
                        "missing: bind_dn needs bind_password_file",
                    )),
                    (None, Some(_)) => Err(LdapConfigError::new(
                        "bind_dn",
                        "missing: bind_password_file needs bind_dn",
                    )),
                    _ => Ok(Mode::Search { base, filter }),
                }
            }
            (None, Some(_), None) => Err(LdapConfigError::new(
                "search_filter",
                "missing: search_base needs search_filter, e.g. \"(uid={user})\"",
            )),
            (None, None, Some(_)) => Err(LdapConfigError::new(
                "search_base",
                "missing: search_filter needs search_base",
            )),
            (None, None, None) => Err(LdapConfigError::new(
                "user_dn_template",
                "missing: set either user_dn_template (direct bind) or search_base + \
                 search_filter (search)",
            )),
        }
    }
}

/// The parts of `url` that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ParsedUrl {
    tls: bool,
}

/// Accepts `ldap[s]://host[:port][/]` and nothing else (no path, query or user info).
fn parse_url(url: &str) -> Result<ParsedUrl, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("ldaps://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("ldap://") {
        (false, rest)
    } else {
        return Err(format!(
            "{url:?} is not an ldaps:// or ldap:// URL (ldapi:// and other schemes are not supported)"
        ));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "{url:?}: only ldaps://host[:port] or ldap://host[:port] (no path, query or user)"
        ));
    }
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err(format!("{url:?}: unterminated [ in the host"));
        };
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("{url:?}: unexpected text after ]")),
            },
        }
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if host.contains(char::is_whitespace) {
        return Err(format!("{url:?}: the host contains a space"));
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(format!("{url:?}: {port:?} is not a port")),
        }
    }
    Ok(ParsedUrl { tls })
}

/// An attribute description: letters, digits, `-`, `;` (options), or a numeric OID.
fn is_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';' || c == '.')
}

/// A DN in a form that compares equal for equal DNs as directories usually write them:
/// lower case, no spaces around the `,`, `=` and `+` that separate RDNs and attribute values
/// (escaped ones excepted), none at either end. Not a full RFC 4517 `distinguishedNameMatch`
/// (hex escapes and attribute OIDs are left alone), but enough for member lists written by
/// directory tools.
pub fn normalise_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut spaces = String::new();
    // At the start and after a separator, spaces are dropped.
    let mut after_separator = true;
    let mut escaped = false;
    for c in dn.chars() {
        if escaped {
            out.push_str(&spaces);
            spaces.clear();
            out.extend(c.to_lowercase());
            escaped = false;
            after_separator = false;
            continue;
        }
        if c.is_whitespace() {
            if !after_separator {
                spaces.push(c);
            }
            continue;
        }
        if matches!(c, ',' | '=' | '+') {
            spaces.clear();
            out.push(c);
            after_separator = true;
            continue;
        }
        out.push_str(&spaces);
        spaces.clear();
        after_separator = false;
        if c == '\\' {
            escaped = true;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Whether two DNs are the same after [`normalise_dn`].
pub fn same_dn(a: &str, b: &str) -> bool {
    normalise_dn(a) == normalise_dn(b)
}

/// `user_dn_template` with `{user}` replaced by `user` escaped for a DN value (RFC 4514).
pub fn user_dn(template: &str, user: &str) -> String {
    template.replace(USER_PLACEHOLDER, &ldap3::dn_escape(user))
}

/// `search_filter` with `{user}` replaced by `user` escaped for a filter value (RFC 4515).
pub fn user_filter(filter: &str, user: &str) -> String {
    filter.replace(USER_PLACEHOLDER, &ldap3::ldap_escape(user))
}

/// One entry of a search result.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    dn: String,
    attrs: Vec<(String, Vec<String>)>,
}

impl Entry {
    /// The values of `name` (attribute names are case-insensitive); binary values are skipped.
    fn values(&self, name: &str) -> &[String] {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }

    /// The first non-blank value of `name`.
    fn first(&self, name: &str) -> Option<String> {
        self.values(name)
            .iter()
            .map(|v| v.trim())
            .find(|v| !v.is_empty())
            .map(str::to_string)
    }
}

/// Decodes a SearchResultEntry without panicking on malformed input (unlike
/// `ldap3::SearchEntry::construct`, which this replaces).
fn parse_entry(entry: ResultEntry) -> Option<Entry> {
    let tag: StructureTag = entry.0;
    if tag.id != 4 {
        return None;
    }
    let PL::C(parts) = tag.payload else {
        return None;
    };
    let mut parts = parts.into_iter();
    let PL::P(dn) = parts.next()?.payload else {
        return None;
    };
    let dn = String::from_utf8(dn).ok()?;
    let PL::C(list) = parts.next()?.payload else {
        return None;
    };
    let mut attrs = Vec::with_capacity(list.len());
    for attribute in list {
        let PL::C(pair) = attribute.payload else {
            return None;
        };
        let mut pair = pair.into_iter();
        let PL::P(name) = pair.next()?.payload else {
            return None;
        };
        let name = String::from_utf8(name).ok()?;
        let PL::C(raw) = pair.next()?.payload else {
            return None;
        };
        let values = raw
            .into_iter()
            .filter_map(|v| match v.payload {
                PL::P(bytes) => String::from_utf8(bytes).ok(),
                PL::C(_) => None,
            })
            .collect();
        attrs.push((name, values));
    }
    Some(Entry { dn, attrs })
}

/// Checks passwords with LDAP simple binds; see the [module documentation](self).
pub struct LdapAuthenticator {
    config: LdapConfig,
    tls: Arc<rustls::ClientConfig>,
    service_password: Option<Secret>,
    timeout: Duration,
}

impl fmt::Debug for LdapAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapAuthenticator")
            .field("url", &self.config.url)
            .field("starttls", &self.config.starttls)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl LdapAuthenticator {
    /// Validates `config`, reads the CA certificates and the service password, and prepares
    /// TLS. Contacts nothing: a directory that is down at start-up only fails logins.
    pub fn new(config: LdapConfig) -> Result<Self, LdapSetupError> {
        config.validate()?;
        let roots = match &config.ca_file {
            Some(path) => load_ca_file(path)?,
            None => load_system_roots()?,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| LdapSetupError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let service_password = match &config.bind_password_file {
            Some(path) => Some(read_password_file(path)?),
            None => None,
        };
        let timeout = Duration::from_secs(config.timeout_secs);
        Ok(Self {
            config,
            tls: Arc::new(tls),
            service_password,
            timeout,
        })
    }

    /// The configuration this authenticator was built from.
    pub fn config(&self) -> &LdapConfig {
        &self.config
    }

    async fn check(&self, user: &str, password: &Secret) -> Result<Verdict, AuthError> {
        if password.expose().is_empty() {
            tracing::debug!(
                user,
                "ldap: empty password refused without contacting the directory"
            );
            return Ok(Verdict::Rejected(Rejection::WrongPassword));
        }
        if user.is_empty() {
            return Ok(Verdict::Rejected(Rejection::UnknownUser));
        }
        // Validated by `new`; checked again rather than trusted.
        let mode = self
            .config
            .mode()
            .map_err(|e| AuthError::Failed(e.to_string()))?;
        let mut conn = self.connect().await?;
        let verdict = self.converse(&mut conn.ldap, mode, user, password).await;
        conn.close(self.timeout).await;
        if let Ok(Verdict::Rejected(why)) = &verdict {
            tracing::debug!(user, url = %self.config.url, "ldap: {}", why.as_str());
        }
        verdict
    }

    async fn connect(&self) -> Result<Connection, AuthError> {
        let settings = LdapConnSettings::new()
            .set_config(self.tls.clone())
            .set_starttls(self.config.starttls);
        let (conn, ldap) = self
            .step(
                CONNECTING,
                LdapConnAsync::with_settings(settings, &self.config.url),
            )
            .await?;
        let driver = tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!("ldap: connection ended: {e}");
            }
        });
        Ok(Connection {
            ldap,
            driver: AbortOnDrop(driver),
        })
    }

    async fn converse(
        &self,
        ldap: &mut Ldap,
        mode: Mode<'_>,
        user: &str,
        password: &Secret,
    ) -> Result<Verdict, AuthError> {
        let (dn, found) = match mode {
            Mode::Template(template) => (user_dn(template, user), None),
            Mode::Search { base, filter } => {
                self.service_bind(ldap).await?;
                let filter = user_filter(filter, user);
                let Some(mut entries) = self.search(ldap, base, Scope::Subtree, &filter, 2).await?
                else {
                    return Err(AuthError::Failed(format!(
                        "{}: search_base {base:?} does not exist or may not be searched{}",
                        self.config.url,
                        if self.config.bind_dn.is_none() {
                            " anonymously (set bind_dn and bind_password_file?)"
                        } else {
                            " by the service account"
                        }
                    )));
                };
                if entries.len() > 1 {
                    return Err(AuthError::Failed(format!(
                        "{}: search_filter {filter:?} under {base:?} matches more than one \
                         entry; it must identify one user",
                        self.config.url
                    )));
                }
                let Some(entry) = entries.pop() else {
                    return Ok(Verdict::Rejected(Rejection::UnknownUser));
                };
                (entry.dn.clone(), Some(entry))
            }
        };

        let bound = self
            .step(
                "binding as the user",
                ldap.simple_bind(&dn, password.expose()),
            )
            .await?;
        match bound.rc {
            0 => {}
            INVALID_CREDENTIALS => return Ok(Verdict::Rejected(Rejection::WrongPassword)),
            _ => {
                return Err(AuthError::Failed(format!(
                    "{}: bind as {dn:?} refused: {bound}",
                    self.config.url
                )))
            }
        }

        let entry = match found {
            Some(entry) => Some(entry),
            None => {
                let mut entries = self
                    .search(ldap, &dn, Scope::Base, "(objectClass=*)", 1)
                    .await?
                    .unwrap_or_default();
                if entries.is_empty() {
                    tracing::warn!(
                        dn,
                        "ldap: the user bound but cannot read their own entry; \
                         no display name or organisation"
                    );
                }
                entries.pop()
            }
        };
        let user_dn = entry.as_ref().map_or(dn.as_str(), |e| e.dn.as_str());

        if self.needs_groups() {
            self.service_bind(ldap).await?;
        }
        let role = if self
            .is_member(ldap, self.config.admin_group.as_deref(), user_dn)
            .await?
        {
            Role::Admin
        } else if self.config.operator_group.is_none()
            || self
                .is_member(ldap, self.config.operator_group.as_deref(), user_dn)
                .await?
        {
            Role::Operator
        } else {
            return Ok(Verdict::Rejected(Rejection::NotAuthorised));
        };

        Ok(Verdict::Accepted(Authenticated {
            name: user.to_string(),
            display_name: entry
                .as_ref()
                .and_then(|e| e.first(&self.config.display_name_attribute)),
            organisation: entry
                .as_ref()
                .and_then(|e| e.first(&self.config.organisation_attribute)),
            role,
        }))
    }

    fn needs_groups(&self) -> bool {
        self.config.admin_group.is_some() || self.config.operator_group.is_some()
    }

    /// Binds as the service account, when one is configured.
    async fn service_bind(&self, ldap: &mut Ldap) -> Result<(), AuthError> {
        let (Some(dn), Some(password)) = (&self.config.bind_dn, &self.service_password) else {
            return Ok(());
        };
        let bound = self
            .step(
                "binding as the service account",
                ldap.simple_bind(dn, password.expose()),
            )
            .await?;
        match bound.rc {
            0 => Ok(()),
            INVALID_CREDENTIALS => Err(AuthError::Failed(format!(
                "{}: the directory refused the service account {dn:?} (bind_dn and \
                 bind_password_file do not match)",
                self.config.url
            ))),
            _ => Err(AuthError::Failed(format!(
                "{}: bind as the service account {dn:?} refused: {bound}",
                self.config.url
            ))),
        }
    }

    /// Whether `user_dn` is listed in the group `group` (false when no group is configured).
    async fn is_member(
        &self,
        ldap: &mut Ldap,
        group: Option<&str>,
        user_dn: &str,
    ) -> Result<bool, AuthError> {
        let Some(group) = group else {
            return Ok(false);
        };
        let attribute = &self.config.group_member_attribute;
        let entries = self
            .search(ldap, group, Scope::Base, "(objectClass=*)", 1)
            .await?
            .unwrap_or_default();
        let Some(entry) = entries.first() else {
            return Err(AuthError::Failed(format!(
                "{}: the group {group:?} does not exist or may not be read",
                self.config.url
            )));
        };
        let wanted = normalise_dn(user_dn);
        Ok(entry
            .values(attribute)
            .iter()
            .any(|member| normalise_dn(member) == wanted))
    }

    /// A search returning at most `limit` entries (more: `limit` of them), or `None` when
    /// the base does not exist or may not be seen (`noSuchObject`).
    async fn search(
        &self,
        ldap: &mut Ldap,
        base: &str,
        scope: Scope,
        filter: &str,
        limit: i32,
    ) -> Result<Option<Vec<Entry>>, AuthError> {
        let attrs = [
            self.config.display_name_attribute.as_str(),
            self.config.organisation_attribute.as_str(),
            self.config.group_member_attribute.as_str(),
        ];
        let options = SearchOptions::new()
            .sizelimit(limit)
            .timelimit(i32::try_from(self.config.timeout_secs).unwrap_or(60));
        let result = self
            .step(
                "searching",
                ldap.with_search_options(options)
                    .search(base, scope, filter, attrs),
            )
            .await?;
        let (raw, done) = (result.0, result.1);
        match done.rc {
            0 | SIZE_LIMIT_EXCEEDED => {}
            NO_SUCH_OBJECT => return Ok(None),
            _ => {
                return Err(AuthError::Failed(format!(
                    "{}: search under {base:?} for {filter:?} failed: {done}",
                    self.config.url
                )))
            }
        }
        raw.into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(|e| {
                parse_entry(e).ok_or_else(|| {
                    AuthError::Failed(format!(
                        "{}: malformed search result entry",
                        self.config.url
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Runs one network step under the timeout, mapping errors to [`AuthError`].
    async fn step<T>(
        &self,
        what: &str,
        work: impl Future<Output = Result<T, LdapError>>,
    ) -> Result<T, AuthError> {
        match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(classify(&self.config.url, what, e)),
            Err(_) => Err(AuthError::Unavailable(format!(
                "{}: no answer within {} s while {what}",
                self.config.url, self.config.timeout_secs
            ))),
        }
    }
}

impl Authenticator for LdapAuthenticator {
    fn kind(&self) -> &'static str {
        "ldap"
    }

    fn authenticate<'a>(
        &'a self,
        user: &'a str,
        password: &'a Secret,
    ) -> BoxFuture<'a, Result<Verdict, AuthError>> {
        Box::pin(self.check(user, password))
    }
}

/// Sorts an ldap3 error into "cannot reach" and "reached but broken", naming TLS problems.
fn classify(url: &str, what: &str, error: LdapError) -> AuthError {
    const CERTIFICATE: &str = "is the server's certificate signed by a CA in ca_file (or the \
                               system bundle), and does it name the host in the URL?";
    const NOT_TLS: &str = "does this port speak TLS? ldaps:// needs an LDAPS port; a plain \
                           LDAP port needs ldap:// with starttls = true";
    let tls = |detail: &dyn fmt::Display, hint: &str| {
        AuthError::Failed(format!(
            "{url}: TLS problem while {what}: {detail} ({hint})"
        ))
    };
    let rustls_hint = |e: &rustls::Error| match e {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            CERTIFICATE
        }
        _ => NOT_TLS,
    };
    match error {
        LdapError::Io { source } => {
            if let Some(inner) = source
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>())
            {
                return tls(inner, rustls_hint(inner));
            }
            // TCP connects without EOF: an EOF while connecting is the TLS handshake's (the
            // server hung up on the ClientHello, as a plain-text LDAP port does).
            if what == CONNECTING && source.kind() == std::io::ErrorKind::UnexpectedEof {
                return tls(
                    &"the server closed the connection during the handshake",
                    NOT_TLS,
                );
            }
            AuthError::Unavailable(format!("{url}: {what}: {source}"))
        }
        LdapError::Rustls { source } => tls(&source, rustls_hint(&source)),
        LdapError::DNSName { source } => tls(&source, CERTIFICATE),
        LdapError::Timeout { .. } => {
            AuthError::Unavailable(format!("{url}: no answer in time while {what}"))
        }
        LdapError::OpSend { .. }
        | LdapError::ResultRecv { .. }
        | LdapError::IdScrubSend { .. }
        | LdapError::MiscSend { .. }
        | LdapError::EndOfStream => {
            AuthError::Unavailable(format!("{url}: the connection was lost while {what}"))
        }
        LdapError::LdapResult { result } => {
            // The only operation reporting a result as an error here is StartTLS.
            AuthError::Failed(format!("{url}: {what}: StartTLS refused: {result}"))
        }
        other => AuthError::Failed(format!("{url}: {what}: {other}")),
    }
}

/// A connection whose driver task is stopped when it is dropped, on every path.
struct Connection {
    ldap: Ldap,
    driver: AbortOnDrop,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    /// Unbinds (best effort, bounded) and closes the socket.
    async fn close(mut self, timeout: Duration) {
        if let Ok(Err(e)) = tokio::time::timeout(timeout, self.ldap.unbind()).await {
            tracing::debug!("ldap: unbind failed: {e}");
        }
        drop(self.driver);
    }
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn load_ca_file(path: &Path) -> Result<rustls::RootCertStore, LdapSetupError> {
    let read = |source| LdapSetupError::Read {
        key: "ca_file",
        path: path.to_path_buf(),
        source,
    };
    let pem = std::fs::read(path).map_err(read)?;
    let contents = |reason: String| LdapSetupError::Contents {
        key: "ca_file",
        path: path.to_path_buf(),
        reason,
    };
    let mut store = rustls::RootCertStore::empty();
    for (n, cert) in rustls_pemfile::certs(&mut pem.as_slice()).enumerate() {
        let cert = cert.map_err(|e| contents(format!("not PEM: {e}")))?;
        store
            .add(cert)
            .map_err(|e| contents(format!("certificate {} is not usable: {e}", n + 1)))?;
    }
    if store.is_empty() {
        return Err(contents(
            "contains no PEM certificate (-----BEGIN CERTIFICATE-----)".to_string(),
        ));
    }
    Ok(store)
}

fn load_system_roots() -> Result<rustls::RootCertStore, LdapSetupError> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let candidates = from_env
        .into_iter()
        .chain(SYSTEM_CA_BUNDLES.iter().map(PathBuf::from));
    for path in candidates {
        let Ok(pem) = std::fs::read(&path) else {
            continue;
        };
        let mut store = rustls::RootCertStore::empty();
        let (added, ignored) =
            store.add_parsable_certificates(rustls_pemfile::certs(&mut pem.as_slice()).flatten());
        if added > 0 {
            tracing::debug!(
                path = %path.display(),
                added,
                ignored,
                "ldap: trusting the system CA bundle"
            );
            return Ok(store);
        }
    }
    Err(LdapSetupError::NoSystemRoots {
        tried: SYSTEM_CA_BUNDLES.join(", "),
    })
}

fn read_password_file(path: &Path) -> Result<Secret, LdapSetupError> {
    let read = |source| LdapSetupError::Read {
        key: "bind_password_file",
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(LdapSetupError::LoosePermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(read)?);
    let contents = |reason: &str| LdapSetupError::Contents {
        key: "bind_password_file",
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| contents("is not UTF-8 text"))?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    if text.is_empty() {
        return Err(contents(
            "is empty; an empty password would make the service bind anonymous",
        ));
    }
    Ok(Secret::new(text))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LdapConfig, toml::de::Error> {
        toml::from_str(text)
    }

    fn template_config() -> LdapConfig {
        parse(
            r#"
            url = "ldaps://ldap.example.org"
            user_dn_template = "uid={user},ou=people,dc=example,dc=org"
            "#,
        )
        .unwrap()
    }

    fn key_of(config: &LdapConfig) -> &'static str {
        config.validate().unwrap_err().key
    }

    #[test]
    fn defaults() {
        let c = template_config();
        c.validate().unwrap();
        assert!(!c.starttls);
        assert_eq!(c.ca_file, None);
        assert_eq!(c.group_member_attribute, "member");
        assert_eq!(c.display_name_attribute, "displayName");
        assert_eq!(c.organisation_attribute, "o");
        assert_eq!(c.timeout_secs, 5);
        assert!(!c.provides_second_factor);
        assert_eq!(c.operator_group, None);
        assert_eq!(c.admin_group, None);
    }

    #[test]
    fn every_key_parses() {
        let c = parse(
            r#"
            url = "ldap://ldap.example.org:389"
            starttls = true
            ca_file = "/etc/ca.pem"
            search_base = "ou=people,dc=example,dc=org"
            search_filter = "(&(objectClass=person)(|(uid={user})(mail={user})))"
            bind_dn = "cn=relay,dc=example,dc=org"
            bind_password_file = "/etc/pw"
            operator_group = "cn=helpdesk,dc=example,dc=org"
            admin_group = "cn=admins,dc=example,dc=org"
            group_member_attribute = "uniqueMember"
            display_name_attribute = "cn"
            organisation_attribute = "ou"
            timeout_secs = 60
            provides_second_factor = true
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.mode().unwrap(),
            Mode::Search {
                base: "ou=people,dc=example,dc=org",
                filter: "(&(objectClass=person)(|(uid={user})(mail={user})))"
            }
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = parse(
            r#"
            url = "ldaps://ldap.example.org"
            user_dn_template = "uid={user},dc=example,dc=org"
            bind_password = "secret"
            "#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("bind_password"), "{e}");
    }

    #[test]
    fn urls() {
        for good in [
            "ldaps://ldap.example.org",
            "ldaps://ldap.example.org/",
            "ldaps://ldap.example.org:636",
            "ldaps://127.0.0.1:10636/",
            "ldaps://[::1]:636",
        ] {
            let mut c = template_config();
            c.url = good.to_string();
            c.validate().unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "ldapi:///var/run/slapd.sock",
            "http://ldap.example.org",
            "ldaps://",
            "ldaps://:636",
            "ldaps://host:0",
            "ldaps://host:99999",
            "ldaps://host:port",
            "ldaps://host/dc=example,dc=org",
            "ldaps://user@host",
            "ldaps://host?x",
            "LDAPS://host",
            "ldaps://[::1",
            "ldaps://ho st",
        ] {
            let mut c = template_config();
            c.url = bad.to_string();
            assert_eq!(key_of(&c), "url", "{bad}");
        }
    }

    #[test]
    fn plain_ldap_needs_starttls() {
        let mut c = template_config();
        c.url = "ldap://ldap.example.org".to_string();
        let e = c.validate().unwrap_err();
        assert_eq!(e.key, "url");
        assert!(e.reason.contains("in clear"), "{e}");
        c.starttls = true;
        c.validate().unwrap();
        c.url = "ldaps://ldap.example.org".to_string();
        assert_eq!(key_of(&c), "starttls");
    }

    #[test]
    fn template_needs_one_placeholder() {
        let mut c = template_config();
        for bad in [
            "uid=alice,dc=example,dc=org",
            "uid={user},cn={user},dc=example,dc=org",
            "{user}",
        ] {
            c.user_dn_template = Some(bad.to_string());
            let e = c.validate().unwrap_err();
            assert_eq!(e.key, "user_dn_template", "{bad}");
        }
        c.user_dn_template = Some("uid=alice,dc=example,dc=org".to_string());
        assert!(c.validate().unwrap_err().reason.contains("exactly once"));
    }

    #[test]
    fn exactly_one_mode() {
        let mut c = template_config();
        c.search_base = Some("dc=example,dc=org".to_string());
        let e = c.validate().unwrap_err();
        assert_eq!(e.key, "user_dn_template");
        assert!(e.reason.contains("not both"), "{e}");

        c.user_dn_template = None;
        assert_eq!(key_of(&c), "search_filter");
        c.search_filter = Some("(uid={user})".to_string());
        c.validate().unwrap();
        c.search_base = None;
        assert_eq!(key_of(&c), "search_base");

        c.search_filter = None;
        let e = c.validate().unwrap_err();
        assert_eq!(e.key, "user_dn_template");
        assert!(e.reason.contains("missing"), "{e}");
    }

    #[test]
    fn search_filter_checks() {
        let mut c = template_config();
        c.user_dn_template = None;
        c.search_base = Some("dc=example,dc=org".to_string());
        for bad in ["(uid=alice)", "uid={user}", "(uid={user}", "(&(uid={user})"] {
            c.search_filter = Some(bad.to_string());
            assert_eq!(key_of(&c), "search_filter", "{bad}");
        }
        c.search_filter = Some("(uid={user})".to_string());
        c.bind_dn = Some("cn=relay,dc=example,dc=org".to_string());
        assert_eq!(key_of(&c), "bind_password_file");
        c.bind_password_file = Some(PathBuf::from("/etc/pw"));
        c.validate().unwrap();
        c.bind_dn = None;
        assert_eq!(key_of(&c), "bind_dn");
    }

    #[test]
    fn service_account_only_in_search_mode() {
        let mut c = template_config();
        c.bind_dn = Some("cn=relay,dc=example,dc=org".to_string());
        c.bind_password_file = Some(PathBuf::from("/etc/pw"));
        let e = c.validate().unwrap_err();
        assert_eq!(e.key, "bind_dn");
        assert!(e.reason.contains("search mode"), "{e}");
    }

    #[test]
    fn other_values() {
        let mut c = template_config();
        c.timeout_secs = 0;
        assert_eq!(key_of(&c), "timeout_secs");
        c.timeout_secs = 61;
        assert_eq!(key_of(&c), "timeout_secs");
        c.timeout_secs = 1;
        c.validate().unwrap();
        c.operator_group = Some(" ".to_string());
        assert_eq!(key_of(&c), "operator_group");
        c.operator_group = None;
        c.admin_group = Some(String::new());
        assert_eq!(key_of(&c), "admin_group");
        c.admin_group = None;
        c.group_member_attribute = "member)(x".to_string();
        assert_eq!(key_of(&c), "group_member_attribute");
        c.group_member_attribute = "member".to_string();
        c.display_name_attribute = String::new();
        assert_eq!(key_of(&c), "display_name_attribute");
    }

    #[test]
    fn error_names_the_table_and_key() {
        let mut c = template_config();
        c.timeout_secs = 0;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "[ldap] timeout_secs: 0 is outside 1..=60"
        );
    }

    #[test]
    fn dn_normalisation() {
        assert_eq!(
            normalise_dn(" UID = Alice , OU=People,dc=Example, dc=org "),
            "uid=alice,ou=people,dc=example,dc=org"
        );
        assert!(same_dn(
            "uid=alice,ou=people,dc=example,dc=org",
            "UID=alice, OU=people , DC=example,DC=ORG"
        ));
        assert!(same_dn("cn=a+sn=b,dc=x", "cn=a + sn=b, dc=x"));
        // Spaces inside a value are part of it.
        assert_eq!(normalise_dn("cn=Alice  Smith,dc=x"), "cn=alice  smith,dc=x");
        assert!(!same_dn("cn=Alice Smith,dc=x", "cn=AliceSmith,dc=x"));
        // Escaped separators and escaped spaces stay.
        assert_eq!(
            normalise_dn(r"cn=Smith\, John ,dc=x"),
            r"cn=smith\, john,dc=x"
        );
        assert_eq!(normalise_dn(r"cn=x\ ,dc=y"), r"cn=x\ ,dc=y");
        assert!(!same_dn(r"cn=a\,b,dc=x", "cn=a,b,dc=x"));
        assert!(!same_dn("uid=alice,dc=x", "uid=alice2,dc=x"));
        assert_eq!(normalise_dn(""), "");
    }

    #[test]
    fn user_names_are_escaped() {
        assert_eq!(
            user_dn("uid={user},dc=example,dc=org", "alice"),
            "uid=alice,dc=example,dc=org"
        );
        assert_eq!(
            user_dn("uid={user},dc=example,dc=org", "a,b=c+d\\"),
            r"uid=a\2cb\3dc\2bd\5c,dc=example,dc=org"
        );
        assert_eq!(user_filter("(uid={user})", "alice"), "(uid=alice)");
        assert_eq!(
            user_filter("(uid={user})", "*)(uid=*"),
            r"(uid=\2a\29\28uid=\2a)"
        );
        assert!(ldap3::parse_filter(user_filter("(uid={user})", "*)(|(a=*")).is_ok());
    }

    #[test]
    fn password_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret pass\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_password_file(&path).unwrap_err();
        assert!(
            matches!(e, LdapSetupError::LoosePermissions { mode: 0o644, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_password_file(&path).unwrap().expose(), "s3cret pass");
        std::fs::write(&path, "crlf\r\n").unwrap();
        assert_eq!(read_password_file(&path).unwrap().expose(), "crlf");
        std::fs::write(&path, " spaces kept ").unwrap();
        assert_eq!(read_password_file(&path).unwrap().expose(), " spaces kept ");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            read_password_file(&path).unwrap_err(),
            LdapSetupError::Contents { .. }
        ));
        let e = read_password_file(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(e, LdapSetupError::Read { .. }), "{e}");
    }

    #[test]
    fn ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "").unwrap();
        let mut c = template_config();
        c.ca_file = Some(path.clone());
        let e = LdapAuthenticator::new(c.clone()).unwrap_err();
        assert!(
            matches!(e, LdapSetupError::Contents { key: "ca_file", .. }),
            "{e}"
        );
        c.ca_file = Some(dir.path().join("missing.pem"));
        let e = LdapAuthenticator::new(c).unwrap_err();
        assert!(
            matches!(e, LdapSetupError::Read { key: "ca_file", .. }),
            "{e}"
        );
    }

    #[test]
    fn entries_parse_without_panicking() {
        use ldap3::asn1::TagClass;
        let prim = |id: u64, bytes: &[u8]| StructureTag {
            class: TagClass::Universal,
            id,
            payload: PL::P(bytes.to_vec()),
        };
        let cons = |id: u64, inner: Vec<StructureTag>| StructureTag {
            class: TagClass::Universal,
            id,
            payload: PL::C(inner),
        };
        let good = cons(
            4,
            vec![
                prim(4, b"uid=alice,dc=x"),
                cons(
                    16,
                    vec![cons(
                        16,
                        vec![prim(4, b"displayName"), cons(17, vec![prim(4, b"Alice")])],
                    )],
                ),
            ],
        );
        let entry = parse_entry(ResultEntry::new(good)).unwrap();
        assert_eq!(entry.dn, "uid=alice,dc=x");
        assert_eq!(entry.first("DISPLAYNAME").as_deref(), Some("Alice"));
        assert_eq!(entry.first("o"), None);
        for bad in [
            prim(4, b"x"),
            cons(4, vec![]),
            cons(4, vec![prim(4, &[0xff, 0xfe])]),
            cons(4, vec![prim(4, b"dn"), prim(4, b"not a sequence")]),
            cons(4, vec![prim(4, b"dn"), cons(16, vec![prim(4, b"x")])]),
            cons(5, vec![]),
        ] {
            assert_eq!(parse_entry(ResultEntry::new(bad)), None);
        }
    }

    #[tokio::test]
    async fn empty_password_is_rejected_without_a_connection() {
        // Nothing listens on port 1: any contact would be Unavailable, not a verdict.
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, TEST_CA).unwrap();
        let mut c = template_config();
        c.url = "ldaps://127.0.0.1:1".to_string();
        c.ca_file = Some(ca);
        let auth = LdapAuthenticator::new(c).unwrap();
        assert_eq!(auth.kind(), "ldap");
        assert_eq!(
            auth.authenticate("alice", &Secret::new("")).await,
            Ok(Verdict::Rejected(Rejection::WrongPassword))
        );
        let e = auth
            .authenticate("alice", &Secret::new("x"))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, AuthError::Unavailable(m) if m.contains("ldaps://127.0.0.1:1")),
            "{e:?}"
        );
    }

    /// A self-signed certificate (never contacted; only parsed).
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBmTCCAT+gAwIBAgIUHj78PO5De0PH5SRDqSTzU6FSzjUwCgYIKoZIzj0EAwIw
ITEfMB0GA1UEAwwWc2lnaHRsaW5lIHVuaXQtdGVzdCBDQTAgFw0yNjExMjkwOTI2
MTBaGA8yMTI2MTEwNTA5MjYxMFowITEfMB0GA1UEAwwWc2lnaHRsaW5lIHVuaXQt
dGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOt6D5TybBR0XegNGnBN
Tz47rQ6txmxyE+3tH2uUxlTZVlkEVw+yAYDyJwqW0bphkIyiwd8CdXomQaj0dofC
cIajUzBRMB0GA1UdDgQWBBSY5u1AVC6H08FRMGhOI1c2AbjeJDAfBgNVHSMEGDAW
gBSY5u1AVC6H08FRMGhOI1c2AbjeJDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49
BAMCA0gAMEUCIQDFPnZdrfwGYE8Ihod+CveVd8g7wl4d3G/M+llZwAWXHAIgP6OQ
UktIXwWaZ8FBJ+Uw03rqLgc4mMtSx5bs5lwniL4=
-----END CERTIFICATE-----
";
}
