//! The `[[listener]]` tables: what each listening address serves (transports, roles) and to
//! whom (allow and deny lists, PROXY protocol senders, trusted WebSocket proxies), and the
//! TLS files. Tables are parsed as written, then resolved into [`ListenerSpec`]s whose lists
//! are checked (a CIDR block that does not parse, tls without a certificate) with an error
//! naming the key.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A byte stream a listener accepts clients over: the clients' own transports.
pub use sightline_net::route::Transport;

/// Who may use a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// Operators: login challenge, login, session creation, attach, their resume.
    pub operator: bool,
    /// Customers: join with a code, their resume.
    pub customer: bool,
}

impl Roles {
    /// Both roles (the default).
    pub const BOTH: Roles = Roles {
        operator: true,
        customer: true,
    };

    /// The names, for logs.
    pub fn names(self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.operator {
            names.push("operator");
        }
        if self.customer {
            names.push("customer");
        }
        names
    }
}

/// A value given either as one string or as a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// `key = "x"`
    One(String),
    /// `key = ["x", "y"]`
    Many(Vec<String>),
}

impl OneOrMany {
    fn items(&self) -> &[String] {
        match self {
            Self::One(s) => std::slice::from_ref(s),
            Self::Many(v) => v,
        }
    }
}

fn default_transport() -> OneOrMany {
    OneOrMany::One("tcp".into())
}

fn default_roles() -> Vec<String> {
    vec!["operator".into(), "customer".into()]
}

/// One `[[listener]]` table as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTable {
    /// Address and port to listen on.
    pub address: SocketAddr,
    /// `tcp`, `tls`, `ws`, `wss`, or a list of them (one port may serve several).
    #[serde(default = "default_transport")]
    pub transport: OneOrMany,
    /// `operator`, `customer` or both (the default).
    #[serde(default = "default_roles")]
    pub roles: Vec<String>,
    /// CIDR blocks clients may come from; empty: everyone.
    #[serde(default)]
    pub allow: Vec<String>,
    /// CIDR blocks refused even when allowed.
    #[serde(default)]
    pub deny: Vec<String>,
    /// CIDR blocks whose connections start with a PROXY v1/v2 header (and must).
    #[serde(default)]
    pub proxy_protocol: Vec<String>,
    /// CIDR blocks whose `X-Forwarded-For` / `Forwarded` headers on a WebSocket upgrade name
    /// the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// PEM certificate chain for tls and wss.
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key for tls and wss.
    pub tls_key: Option<PathBuf>,
}

/// The TLS files of a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub certificate: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A listener, checked and ready to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Address and port.
    pub address: SocketAddr,
    /// Transports served, without repeats.
    pub transports: Vec<Transport>,
    /// Roles served.
    pub roles: Roles,
    /// Allowed client blocks; empty: everyone.
    pub allow: Vec<IpNet>,
    /// Refused client blocks; deny wins over allow.
    pub deny: Vec<IpNet>,
    /// PROXY protocol senders.
    pub proxy_protocol: Vec<IpNet>,
    /// Trusted WebSocket proxies.
    pub trusted_proxies: Vec<IpNet>,
    /// Certificate and key, when a transport needs TLS.
    pub tls: Option<TlsFiles>,
}

impl ListenerSpec {
    /// A `listen` address: plain TCP, both roles, no rules.
    pub fn plain(address: SocketAddr) -> Self {
        Self {
            address,
            transports: vec![Transport::Tcp],
            roles: Roles::BOTH,
            allow: Vec::new(),
            deny: Vec::new(),
            proxy_protocol: Vec::new(),
            trusted_proxies: Vec::new(),
            tls: None,
        }
    }

    /// How many allow, deny, PROXY and proxy rules it has.
    pub fn rule_count(&self) -> usize {
        self.allow.len() + self.deny.len() + self.proxy_protocol.len() + self.trusted_proxies.len()
    }
}

/// What is wrong with a `[[listener]]` table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ListenerProblem {
    /// The key.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

fn problem(key: &'static str, message: impl Into<String>) -> ListenerProblem {
    ListenerProblem {
        key,
        message: message.into(),
    }
}

fn cidrs(key: &'static str, items: &[String]) -> Result<Vec<IpNet>, ListenerProblem> {
    items
        .iter()
        .map(|s| {
            let s = s.trim();
            // A bare address is a block of one.
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| {
                    problem(
                        key,
                        format!("`{s}` is not a CIDR block (like 10.0.0.0/8 or 2001:db8::/32)"),
                    )
                })
        })
        .collect()
}

impl ListenerTable {
    /// Checks the table.
    pub fn resolve(&self) -> Result<ListenerSpec, ListenerProblem> {
        let mut transports = Vec::new();
        for name in self.transport.items() {
            let t = Transport::from_name(name.trim()).ok_or_else(|| {
                problem(
                    "transport",
                    format!("unknown transport `{name}` (tcp, tls, ws or wss)"),
                )
            })?;
            if !transports.contains(&t) {
                transports.push(t);
            }
        }
        if transports.is_empty() {
            return Err(problem("transport", "give at least one transport"));
        }
        let mut roles = Roles {
            operator: false,
            customer: false,
        };
        for name in &self.roles {
            match name.trim() {
                "operator" => roles.operator = true,
                "customer" => roles.customer = true,
                other => {
                    return Err(problem(
                        "roles",
                        format!("unknown role `{other}` (operator or customer)"),
                    ))
                }
            }
        }
        if roles.names().is_empty() {
            return Err(problem("roles", "give at least one role"));
        }
        let tls = match (&self.tls_certificate, &self.tls_key) {
            (Some(certificate), Some(key)) => Some(TlsFiles {
                certificate: certificate.clone(),
                key: key.clone(),
            }),
            (None, None) => None,
            (None, Some(_)) => return Err(problem("tls_certificate", "tls_key needs it too")),
            (Some(_), None) => return Err(problem("tls_key", "tls_certificate needs it too")),
        };
        if tls.is_none() {
            if let Some(t) = transports.iter().find(|t| t.uses_tls()) {
                return Err(problem(
                    "tls_certificate",
                    format!("transport {} needs tls_certificate and tls_key", t.name()),
                ));
            }
        }
        Ok(ListenerSpec {
            address: self.address,
            transports,
            roles,
            allow: cidrs("allow", &self.allow)?,
            deny: cidrs("deny", &self.deny)?,
            proxy_protocol: cidrs("proxy_protocol", &self.proxy_protocol)?,
            trusted_proxies: cidrs("trusted_proxies", &self.trusted_proxies)?,
            tls,
        })
    }

    /// Resolves relative TLS paths against `dir` (the configuration file's directory).
    pub fn anchor(&mut self, dir: &Path) {
        for p in [&mut self.tls_certificate, &mut self.tls_key]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }
}
