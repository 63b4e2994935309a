//! The relay's TOML configuration: every key optional with a documented default, unknown keys
//! refused, values checked for sense before the relay starts.
//!
//! `assets/relay.example.toml` documents every key; keep the two in step.

use crate::accounts::hashing::LoginWork;
use crate::accounts::ldap::LdapConfig;
use crate::syslog::SyslogConfig;
use serde::Deserialize;
use sightline_core::join_gate::Level;
use sightline_core::limiter::{BackoffPolicy, Lockout};
use sightline_core::quota::Quota;
use sightline_core::DEFAULT_PORT;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

mod listeners;
pub use listeners::{
    ListenerProblem, ListenerSpec, ListenerTable, OneOrMany, Roles, TlsFiles, Transport,
};

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration (syntax, unknown key, wrong type).
    #[error("invalid configuration {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's explanation, with line and column.
        message: String,
    },
    /// An `[[oidc]]` table makes no sense.
    #[error("invalid configuration {path}: {message}")]
    Oidc {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The `[ldap]` table makes no sense.
    #[error("invalid configuration {path}: ldap: {message}")]
    Ldap {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The `[syslog]` table makes no sense.
    #[error("invalid configuration {path}: syslog: {message}")]
    Syslog {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A `[[listener]]` table makes no sense.
    #[error("invalid configuration {path}: listener {address}: {problem}")]
    Listener {
        /// The file.
        path: PathBuf,
        /// The table's address.
        address: SocketAddr,
        /// What is wrong, and under which key.
        problem: ListenerProblem,
    },
    /// A value parses but makes no sense.
    #[error("invalid configuration {path}: {key}: {reason}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The offending key.
        key: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Limits on joining with a session code, nested by prefix (see
/// [`sightline_core::join_gate`]). Files written before the prefix levels existed, with
/// `per_address` and `global` alone, still parse and get the default prefix levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JoinLimits {
    /// Failed codes per source address (IPv4 address, IPv6 /64).
    pub per_address: BackoffPolicy,
    /// Failed codes per IPv4 /24 or IPv6 /56.
    pub per_site: BackoffPolicy,
    /// Failed codes per IPv4 /16 or IPv6 /48.
    pub per_network: BackoffPolicy,
    /// Failed codes over the whole relay; delays only prefixes that have failed before.
    pub global: BackoffPolicy,
}

impl JoinLimits {
    /// The policy of one prefix level.
    pub fn policy(&self, level: Level) -> BackoffPolicy {
        match level {
            Level::Address => self.per_address,
            Level::Site => self.per_site,
            Level::Network => self.per_network,
        }
    }
}

impl Default for JoinLimits {
    fn default() -> Self {
        Self {
            per_address: BackoffPolicy::PER_ADDRESS,
            per_site: BackoffPolicy::PER_SITE,
            per_network: BackoffPolicy::PER_NETWORK,
            global: BackoffPolicy::GLOBAL,
        }
    }
}

/// Limits on operator logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginLimits {
    /// Failed logins per source address.
    pub per_address: BackoffPolicy,
    /// Failed logins per account name, from addresses the account has not logged in from;
    /// from an address it has, per account and address.
    pub per_account: BackoffPolicy,
    /// Hard lock after repeated failures, for the address and account counters.
    pub lockout: Lockout,
    /// How long an address the account logged in from counts as known, days.
    pub known_address_days: u64,
    /// Failed logins over the whole relay (spraying passwords across accounts from many
    /// addresses); logins from an address the account logged in from before are not
    /// counted or held back, so a flood cannot lock the help desk out.
    pub global: BackoffPolicy,
    /// Certificates issued per account (successful logins), so that the issuing key cannot
    /// be made to sign without bound.
    pub certificates: Quota,
}

/// Default per-account login backoff: 5 free failures, then 2 s doubling to 15 min, forgotten
/// after an hour.
pub const LOGIN_PER_ACCOUNT: BackoffPolicy = BackoffPolicy {
    free_failures: 5,
    base_delay_secs: 2,
    max_delay_secs: 900,
    forget_after_secs: 3600,
};

/// Default relay-wide login backoff: 100 free failures, then 1 s doubling to 60 s, forgotten
/// after 10 quiet minutes.
pub const LOGIN_GLOBAL: BackoffPolicy = BackoffPolicy {
    free_failures: 100,
    base_delay_secs: 1,
    max_delay_secs: 60,
    forget_after_secs: 600,
};

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_address: BackoffPolicy::PER_ADDRESS,
            per_account: LOGIN_PER_ACCOUNT,
            lockout: Lockout::LOGIN,
            known_address_days: 90,
            global: LOGIN_GLOBAL,
            certificates: Quota::CERTIFICATES,
        }
    }
}

/// The relay's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Addresses to listen on with plain TCP, both roles and no rules. Unset: the default
    /// address, unless `[[listener]]` tables are given. `--listen` flags replace this and the
    /// tables.
    pub listen: Option<Vec<SocketAddr>>,
    /// `[[listener]]` tables: addresses with their own transports, roles and rules.
    pub listener: Vec<ListenerTable>,
    /// The preconfigured agent (`relay agent-bundle --out FILE`) served to customers at
    /// `https://RELAY/agent`, with a page at `/` that says how to run it, on listeners with
    /// `wss` (or `ws` behind a trusted proxy that terminates TLS). Relative to this file's
    /// directory. Unset: no downloads.
    pub support_agent: Option<PathBuf>,
    /// How long a session code stays valid, seconds.
    pub code_ttl_secs: u64,
    /// Validity of operator certificates issued at login, seconds (never past the issuing
    /// key's own certificate).
    pub certificate_validity_secs: u64,
    /// Validity of the issuer certificate `relay serve` makes when it renews the issuing key
    /// by itself (root key in the data directory), days.
    pub issuer_validity_days: u64,
    /// `relay serve` renews the issuing key when its certificate has fewer days left than this
    /// (and warns, when the root key is offline), days.
    pub issuer_renew_days: u64,
    /// Most simultaneous client connections; further ones are closed at once. Lowered at
    /// start if the open-file limit allows fewer ([`crate::net::fd_limit`]).
    pub max_connections: usize,
    /// Most simultaneous connections from one address (IPv4 address, IPv6 /64).
    pub max_connections_per_address: usize,
    /// Most simultaneous connections from one prefix (IPv4 /24, IPv6 /48).
    pub max_connections_per_prefix: usize,
    /// Time allowed for a new connection's channel handshake, seconds.
    pub handshake_timeout_secs: u64,
    /// Time a connection has, after its handshake, to log in or join, seconds.
    pub login_timeout_secs: u64,
    /// A connection that sends no request for this long is closed (not while waiting for a
    /// customer, not while paired), seconds.
    pub idle_timeout_secs: u64,
    /// Brute-force limits on session codes.
    pub join_limit: JoinLimits,
    /// Brute-force limits on logins.
    pub login_limit: LoginLimits,
    /// Password-hashing slots and the pace of failed logins.
    pub login_work: LoginWork,
    /// Operators' passwords checked by an LDAP directory.
    pub ldap: Option<LdapConfig>,
    /// `[[oidc]]`: OpenID Connect providers operators may sign in with.
    #[serde(default)]
    pub oidc: Vec<crate::accounts::oidc::config::OidcConfig>,
    /// The audit log's signed checkpoints.
    pub audit: AuditConfig,
    /// The audit log exported to a syslog collector.
    pub syslog: Option<SyslogConfig>,
}

/// The audit log's signed checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The relay signs a checkpoint once this many entries follow the last one (and at a
    /// clean stop), 1 to 1000000.
    pub checkpoint_every: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: 1000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: None,
            listener: Vec::new(),
            support_agent: None,
            code_ttl_secs: 600,
            certificate_validity_secs: 8 * 3600,
            issuer_validity_days: 90,
            issuer_renew_days: 30,
            max_connections: 10_000,
            max_connections_per_address: 64,
            max_connections_per_prefix: 256,
            handshake_timeout_secs: 10,
            login_timeout_secs: 30,
            idle_timeout_secs: 300,
            join_limit: JoinLimits::default(),
            login_limit: LoginLimits::default(),
            login_work: LoginWork::default(),
            ldap: None,
            oidc: Vec::new(),
            audit: AuditConfig::default(),
            syslog: None,
        }
    }
}

/// Longest accepted code lifetime: a code is a secret that weakens with time.
const MAX_CODE_TTL_SECS: u64 = 24 * 3600;
/// Most connections one relay process may be configured for.
const MAX_CONNECTIONS_LIMIT: usize = 1_000_000;
/// Longest accepted certificate validity.
const MAX_CERTIFICATE_VALIDITY_SECS: u64 = 30 * 24 * 3600;

impl Config {
    /// Parses TOML text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        for table in &mut config.listener {
            table.anchor(dir);
        }
        if let Some(p) = config.support_agent.as_mut().filter(|p| p.is_relative()) {
            *p = dir.join(&*p);
        }
        config.validate(path)?;
        Ok(config)
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Loads `explicit` if given (it must exist), else `default_path` if it exists, else the
    /// defaults. Returns the file used, if any.
    pub fn load_or_default(
        explicit: Option<&Path>,
        default_path: &Path,
    ) -> Result<(Self, Option<PathBuf>), ConfigError> {
        match explicit {
            Some(p) => Ok((Self::load(p)?, Some(p.to_path_buf()))),
            None if default_path.exists() => {
                Ok((Self::load(default_path)?, Some(default_path.to_path_buf())))
            }
            None => Ok((Self::default(), None)),
        }
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key, reason| {
            Err(ConfigError::Value {
                path: path.to_path_buf(),
                key,
                reason,
            })
        };
        if self.listen.as_ref().is_some_and(Vec::is_empty) {
            return bad("listen", "give at least one address");
        }
        for table in &self.listener {
            table.resolve().map_err(|problem| ConfigError::Listener {
                path: path.to_path_buf(),
                address: table.address,
                problem,
            })?;
        }
        if self.code_ttl_secs == 0 || self.code_ttl_secs > MAX_CODE_TTL_SECS {
            return bad("code_ttl_secs", "must be between 1 and 86400 seconds");
        }
        if self.certificate_validity_secs == 0
            || self.certificate_validity_secs > MAX_CERTIFICATE_VALIDITY_SECS
        {
            return bad(
                "certificate_validity_secs",
                "must be between 1 and 2592000 seconds",
            );
        }
        if !(1..=400).contains(&self.issuer_validity_days) {
            return bad("issuer_validity_days", "must be between 1 and 400 days");
        }
        if self.issuer_renew_days == 0 || self.issuer_renew_days >= self.issuer_validity_days {
            return bad(
                "issuer_renew_days",
                "must be at least 1 and less than issuer_validity_days",
            );
        }
        if self.max_connections == 0 || self.max_connections > MAX_CONNECTIONS_LIMIT {
            return bad("max_connections", "must be between 1 and 1000000");
        }
        if self.max_connections_per_prefix == 0 {
            return bad("max_connections_per_prefix", "must be at least 1");
        }
        if self.max_connections_per_address == 0
            || self.max_connections_per_address > self.max_connections_per_prefix
        {
            return bad(
                "max_connections_per_address",
                "must be at least 1 and at most max_connections_per_prefix",
            );
        }
        if self.handshake_timeout_secs == 0 || self.handshake_timeout_secs > 300 {
            return bad(
                "handshake_timeout_secs",
                "must be between 1 and 300 seconds",
            );
        }
        if self.login_timeout_secs == 0 || self.login_timeout_secs > 300 {
            return bad("login_timeout_secs", "must be between 1 and 300 seconds");
        }
        if self.idle_timeout_secs == 0 {
            return bad("idle_timeout_secs", "must be at least 1 second");
        }
        let policies = [
            ("join_limit.per_address", self.join_limit.per_address),
            ("join_limit.per_site", self.join_limit.per_site),
            ("join_limit.per_network", self.join_limit.per_network),
            ("join_limit.global", self.join_limit.global),
            ("login_limit.per_address", self.login_limit.per_address),
            ("login_limit.per_account", self.login_limit.per_account),
            ("login_limit.global", self.login_limit.global),
        ];
        let lock = self.login_limit.lockout;
        if lock.after_failures == 0 || lock.duration_secs == 0 {
            return bad(
                "login_limit.lockout",
                "needs after_failures >= 1 and duration_secs >= 1",
            );
        }
        let shortest_memory = self
            .login_limit
            .per_address
            .forget_after_secs
            .min(self.login_limit.per_account.forget_after_secs);
        if lock.duration_secs > shortest_memory {
            return bad(
                "login_limit.lockout",
                "duration_secs must not exceed the login limits' forget_after_secs",
            );
        }
        if self.login_limit.known_address_days == 0 || self.login_limit.known_address_days > 3650 {
            return bad(
                "login_limit.known_address_days",
                "must be between 1 and 3650 days",
            );
        }
        let certificates = self.login_limit.certificates;
        if certificates.per_window == 0 || !(1..=86_400).contains(&certificates.window_secs) {
            return bad(
                "login_limit.certificates",
                "needs per_window >= 1 and window_secs between 1 and 86400",
            );
        }
        if !(1..=1_000_000).contains(&self.audit.checkpoint_every) {
            return bad(
                "audit.checkpoint_every",
                "must be between 1 and 1000000 entries",
            );
        }
        if let Some((key, reason)) = self.login_work.problem() {
            return bad(key, reason);
        }
        if let Some(ldap) = &self.ldap {
            ldap.validate().map_err(|e| ConfigError::Ldap {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        }
        crate::accounts::oidc::config::validate_all(&self.oidc).map_err(|e| ConfigError::Oidc {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        for p in &self.oidc {
            if let Some(file) = &p.client_secret_file {
                crate::accounts::oidc::provider::read_secret(file).map_err(|why| {
                    ConfigError::Oidc {
                        path: path.to_path_buf(),
                        message: format!("[[oidc]] {}: client_secret_file: {why}", p.name),
                    }
                })?;
            }
        }
        if let Some(syslog) = &self.syslog {
            syslog.validate().map_err(|e| ConfigError::Syslog {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        }
        for (key, p) in policies {
            if p.base_delay_secs == 0 || p.max_delay_secs < p.base_delay_secs {
                return bad(
                    key,
                    "needs base_delay_secs >= 1 and max_delay_secs >= base_delay_secs",
                );
            }
            if p.forget_after_secs == 0 {
                return bad(
                    key,
                    "forget_after_secs must be at least 1 (0 would disable the limit)",
                );
            }
        }
        Ok(())
    }

    /// The listeners to open, in order: the `listen` addresses (plain TCP), then the
    /// `[[listener]]` tables; with neither, the default address.
    pub fn listeners(&self) -> Result<Vec<ListenerSpec>, ListenerProblem> {
        let default = [SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            DEFAULT_PORT,
        )];
        let plain: &[SocketAddr] = match &self.listen {
            Some(list) => list,
            None if self.listener.is_empty() => &default,
            None => &[],
        };
        let mut specs: Vec<ListenerSpec> = plain.iter().copied().map(ListenerSpec::plain).collect();
        for table in &self.listener {
            specs.push(table.resolve()?);
        }
        Ok(specs)
    }

    /// `--listen` flags: these addresses alone, plain TCP.
    pub fn listen_only(&mut self, addrs: Vec<SocketAddr>) {
        self.listen = Some(addrs);
        self.listener.clear();
    }

    /// The longest quiet period after which any failure or quota record is forgotten (for
    /// pruning).
    pub fn longest_forget_secs(&self) -> u64 {
        [
            self.join_limit.per_address,
            self.join_limit.per_site,
            self.join_limit.per_network,
            self.join_limit.global,
            self.login_limit.per_address,
            self.login_limit.per_account,
            self.login_limit.global,
        ]
        .iter()
        .map(|p| p.forget_after_secs)
        // A certificate quota's record is kept for its window.
        .chain([self.login_limit.certificates.window_secs])
        .max()
        .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("relay.toml"))
    }

    #[test]
    fn empty_file_gives_documented_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.listen, None);
        let specs = c.listeners().unwrap();
        assert_eq!(
            specs,
            vec![ListenerSpec::plain("0.0.0.0:7615".parse().unwrap())]
        );
        assert_eq!(c.code_ttl_secs, 600);
        assert_eq!(c.certificate_validity_secs, 8 * 3600);
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.max_connections_per_address, 64);
        assert_eq!(c.max_connections_per_prefix, 256);
        assert_eq!(c.handshake_timeout_secs, 10);
        assert_eq!(c.login_timeout_secs, 30);
        assert_eq!(c.join_limit.per_address, BackoffPolicy::PER_ADDRESS);
        assert_eq!(c.join_limit.per_site, BackoffPolicy::PER_SITE);
        assert_eq!(c.join_limit.per_network, BackoffPolicy::PER_NETWORK);
        assert_eq!(c.join_limit.global, BackoffPolicy::GLOBAL);
        assert_eq!(c.longest_forget_secs(), 24 * 3600);
        assert_eq!(c.audit.checkpoint_every, 1000);
        assert_eq!(c.login_limit.per_address, BackoffPolicy::PER_ADDRESS);
        assert_eq!(
            c.login_limit.per_account,
            BackoffPolicy {
                free_failures: 5,
                base_delay_secs: 2,
                max_delay_secs: 900,
                forget_after_secs: 3600
            }
        );
    }

    #[test]
    fn checkpoint_interval_is_bounded() {
        assert_eq!(
            parse("[audit]\ncheckpoint_every = 5")
                .unwrap()
                .audit
                .checkpoint_every,
            5
        );
        for bad in ["0", "1000001"] {
            let e = parse(&format!("[audit]\ncheckpoint_every = {bad}")).unwrap_err();
            assert!(e.to_string().contains("audit.checkpoint_every"), "{e}");
        }
    }

    #[test]
    fn example_file_documents_exactly_the_defaults() {
        let example = include_str!("../../../assets/relay.example.toml");
        assert_eq!(parse(example).unwrap(), Config::default());
    }

    #[test]
    fn values_and_tables_override_defaults() {
        let c = parse(
            r#"
            listen = ["127.0.0.1:9000", "[::1]:9001"]
            code_ttl_secs = 60
            [join_limit.per_address]
            free_failures = 2
            base_delay_secs = 5
            max_delay_secs = 50
            forget_after_secs = 500
            "#,
        )
        .unwrap();
        assert_eq!(c.listen.as_ref().map(Vec::len), Some(2));
        assert_eq!(c.code_ttl_secs, 60);
        assert_eq!(c.join_limit.per_address.free_failures, 2);
        assert_eq!(c.join_limit.global, BackoffPolicy::GLOBAL);
        assert_eq!(c.certificate_validity_secs, 8 * 3600);
    }

    #[test]
    fn files_from_before_the_prefix_levels_still_parse() {
        let c = parse(
            "[join_limit.per_address]\nfree_failures = 2\nbase_delay_secs = 300\n\
             max_delay_secs = 900\nforget_after_secs = 3600\n\
             [join_limit.global]\nfree_failures = 50\nbase_delay_secs = 1\n\
             max_delay_secs = 60\nforget_after_secs = 600\n",
        )
        .unwrap();
        assert_eq!(c.join_limit.per_address.free_failures, 2);
        assert_eq!(c.join_limit.global.free_failures, 50);
        assert_eq!(c.join_limit.per_site, BackoffPolicy::PER_SITE);
        assert_eq!(c.join_limit.per_network, BackoffPolicy::PER_NETWORK);
        let c = parse("[join_limit.per_network]\nfree_failures = 7\nbase_delay_secs = 1\nmax_delay_secs = 9\nforget_after_secs = 99").unwrap();
        assert_eq!(c.join_limit.policy(Level::Network).free_failures, 7);
        assert!(matches!(
            parse("[join_limit.per_site]\nfree_failures = 7\nbase_delay_secs = 1\nmax_delay_secs = 9\nforget_after_secs = 0"),
            Err(ConfigError::Value {
                key: "join_limit.per_site",
                ..
            })
        ));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let e = parse("code_ttl = 5").unwrap_err().to_string();
        assert!(e.contains("unknown field `code_ttl`"), "{e}");
        let e = parse("[join_limit.per_adress]\nfree_failures = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("per_adress"), "{e}");
        let e = parse("[login_limit.per_account]\nfree_failures = 1\nbase_delay_secs = 1\nmax_delay_secs = 1\nforget_after_secs = 1\nextra = 2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("extra"), "{e}");
    }

    #[test]
    fn incomplete_policy_and_bad_values_are_refused() {
        let e = parse("[join_limit.global]\nfree_failures = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field"), "{e}");
        assert!(matches!(
            parse("code_ttl_secs = 0"),
            Err(ConfigError::Value {
                key: "code_ttl_secs",
                ..
            })
        ));
        assert!(matches!(
            parse("max_connections = 0"),
            Err(ConfigError::Value {
                key: "max_connections",
                ..
            })
        ));
        assert!(matches!(
            parse("max_connections_per_address = 300"),
            Err(ConfigError::Value {
                key: "max_connections_per_address",
                ..
            })
        ));
        assert!(matches!(
            parse("login_timeout_secs = 0"),
            Err(ConfigError::Value {
                key: "login_timeout_secs",
                ..
            })
        ));
        assert!(matches!(
            parse("code_ttl_secs = -1"),
            Err(ConfigError::Parse { .. })
        ));
        assert!(matches!(
            parse("listen = [\"nowhere\"]"),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn syslog_table_is_checked_before_start() {
        let c = parse("[syslog]\nurl = \"tls://[::1]:6514\"\nca_file = \"/etc/ca.pem\"").unwrap();
        assert_eq!(c.syslog.unwrap().url, "tls://[::1]:6514");
        let e = parse("[syslog]\nurl = \"tls://logs:6514\"").unwrap_err();
        assert!(matches!(e, ConfigError::Syslog { .. }), "{e}");
        assert!(e.to_string().contains("syslog: ca_file"), "{e}");
        let e = parse("[syslog]\nurl = \"udp://h\"\ninsecure = true").unwrap_err();
        assert!(e.to_string().contains("insecure"), "{e}");
    }

    #[test]
    fn explicit_file_must_exist_default_file_may_not() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("relay.toml");
        let (c, used) = Config::load_or_default(None, &missing).unwrap();
        assert_eq!((c, used), (Config::default(), None));
        assert!(matches!(
            Config::load_or_default(Some(&missing), &missing),
            Err(ConfigError::Read { .. })
        ));
        std::fs::write(&missing, "code_ttl_secs = 30\n").unwrap();
        let (c, used) = Config::load_or_default(None, &missing).unwrap();
        assert_eq!(c.code_ttl_secs, 30);
        assert_eq!(used, Some(missing));
    }

    #[test]
    fn example_oidc_table_parses_with_every_key() {
        let example = include_str!("../../../assets/relay.example.toml");
        let text: String = example
            .lines()
            .skip_while(|l| *l != "# [[oidc]]")
            .take_while(|l| l.starts_with('#'))
            .map(|l| l.trim_start_matches('#').trim_start())
            .map(|l| l.split(" # ").next().unwrap_or(l))
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        // One table on its own: its sub-table without the `oidc.` prefix.
        let table = text
            .trim_start_matches("[[oidc]]")
            .replace("[oidc.group_permissions]", "[group_permissions]");
        let cfg: crate::accounts::oidc::config::OidcConfig = toml::from_str(&table).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.name, "corp");
        assert_eq!(
            cfg.group_permissions["helpdesk-operators"],
            ["view", "control"]
        );
        assert!(cfg.client_secret_file.is_some() && cfg.organisation_claim.is_some());
    }

    #[test]
    fn an_oidc_secret_others_can_read_is_refused_at_start() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = format!(
            "[[oidc]]\nname = \"corp\"\nissuer = \"https://idp.example\"\nclient_id = \"r\"\n\
             client_secret_file = \"{}\"\n",
            secret.display()
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.contains("client_secret_file") && e.contains("chmod 600"),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(parse(&text).unwrap().oidc.len(), 1);
        let twice = format!("{text}{text}");
        assert!(parse(&twice).unwrap_err().to_string().contains("same name"));
    }

    /// The example file's commented `[[listener]]` table, uncommented.
    fn example_listener() -> String {
        let example = include_str!("../../../assets/relay.example.toml");
        example
            .lines()
            .skip_while(|l| *l != "# [[listener]]")
            .take_while(|l| l.starts_with('#'))
            .map(|l| l.trim_start_matches('#').trim_start())
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn example_listener_table_parses_with_every_key() {
        let text = example_listener();
        let c = parse(&text).unwrap();
        let specs = c.listeners().unwrap();
        assert_eq!(specs.len(), 1, "only the table counts when listen is unset");
        let s = &specs[0];
        assert_eq!(s.address, "0.0.0.0:443".parse().unwrap());
        assert_eq!(s.transports, Transport::ALL.to_vec());
        assert_eq!(s.roles, Roles::BOTH);
        assert_eq!(s.allow.len(), 2);
        assert_eq!(s.deny, vec!["10.9.0.0/16".parse().unwrap()]);
        assert_eq!(s.proxy_protocol.len(), 1);
        assert_eq!(s.trusted_proxies.len(), 1);
        let tls = s.tls.as_ref().unwrap();
        assert_eq!(tls.key, PathBuf::from("/etc/sightline/tls/privkey.pem"));
        // With listen set explicitly, both count, listen first; --listen replaces everything.
        let mut c = parse(&format!("listen = [\"127.0.0.1:1\"]\n{text}")).unwrap();
        assert_eq!(c.listeners().unwrap().len(), 2);
        c.listen_only(vec!["127.0.0.1:2".parse().unwrap()]);
        assert_eq!(
            c.listeners().unwrap(),
            vec![ListenerSpec::plain("127.0.0.1:2".parse().unwrap())]
        );
    }

    #[test]
    fn listener_tables_default_and_resolve_relative_tls_paths() {
        let text = "[[listener]]\naddress = \"127.0.0.1:443\"\ntransport = \"wss\"\n\
                    roles = [\"customer\"]\ntls_certificate = \"tls/cert.pem\"\n\
                    tls_key = \"/abs/key.pem\"\n[[listener]]\naddress = \"127.0.0.1:7615\"";
        let c = Config::parse(text, Path::new("/etc/sightline/relay.toml")).unwrap();
        let specs = c.listeners().unwrap();
        assert_eq!(specs[0].transports, vec![Transport::Wss]);
        assert!(!specs[0].roles.operator && specs[0].roles.customer);
        let tls = specs[0].tls.as_ref().unwrap();
        assert_eq!(
            tls.certificate,
            PathBuf::from("/etc/sightline/tls/cert.pem")
        );
        assert_eq!(tls.key, PathBuf::from("/abs/key.pem"));
        assert_eq!(
            specs[1],
            ListenerSpec::plain("127.0.0.1:7615".parse().unwrap())
        );
    }

    #[test]
    fn bad_listener_tables_are_refused_naming_the_key() {
        let table = |body: &str| format!("[[listener]]\naddress = \"0.0.0.0:443\"\n{body}");
        let cases = [
            (
                "allow = [\"10.0.0.0/33\"]",
                "allow: `10.0.0.0/33` is not a CIDR block",
            ),
            ("deny = [\"ten\"]", "deny: `ten` is not a CIDR block"),
            ("proxy_protocol = [\"1.2.3.4/x\"]", "proxy_protocol:"),
            (
                "transport = \"tls\"",
                "tls_certificate: transport tls needs",
            ),
            (
                "transport = [\"wss\"]\ntls_key = \"k.pem\"",
                "tls_certificate: tls_key needs",
            ),
            (
                "transport = \"quic\"",
                "transport: unknown transport `quic`",
            ),
            ("transport = []", "transport: give at least one"),
            ("roles = []", "roles: give at least one"),
            ("roles = [\"admin\"]", "roles: unknown role `admin`"),
        ];
        for (body, expected) in cases {
            let e = parse(&table(body)).unwrap_err();
            assert!(matches!(e, ConfigError::Listener { .. }), "{body}: {e}");
            let text = e.to_string();
            assert!(text.contains("listener 0.0.0.0:443"), "{text}");
            assert!(text.contains(expected), "{body}: {text}");
        }
        let e = parse(&table("colour = 1")).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
        let e = parse("listen = []").unwrap_err().to_string();
        assert!(e.contains("listen"), "{e}");
    }
}
