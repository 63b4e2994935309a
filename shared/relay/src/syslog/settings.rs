//! The `[syslog]` table of `relay.toml`: where the audit log goes (`udp://`, `tcp://` or
//! `tls://` collector), which CA vouches for a TLS collector, and the header fields of each
//! message. Checked before the relay starts; nothing here touches the network.

use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

/// Longest APP-NAME RFC 5424 allows.
const APP_NAME_MAX: usize = 48;
/// Longest HOSTNAME RFC 5424 allows.
const HOSTNAME_MAX: usize = 255;

/// A `[syslog]` value that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct SyslogConfigError {
    /// The offending key.
    pub key: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn bad(key: &'static str, reason: impl Into<String>) -> SyslogConfigError {
    SyslogConfigError {
        key,
        reason: reason.into(),
    }
}

/// Syslog facilities by their usual names (RFC 5424 section 6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Facility {
    Kern = 0,
    User = 1,
    Mail = 2,
    Daemon = 3,
    Auth = 4,
    Syslog = 5,
    Lpr = 6,
    News = 7,
    Uucp = 8,
    Cron = 9,
    Authpriv = 10,
    Ftp = 11,
    Local0 = 16,
    Local1 = 17,
    Local2 = 18,
    Local3 = 19,
    Local4 = 20,
    Local5 = 21,
    Local6 = 22,
    Local7 = 23,
}

impl Facility {
    /// The facility's number (the PRI is number × 8 + severity).
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// How messages travel to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One datagram per message (RFC 5426): no delivery guarantee.
    Udp,
    /// Plain TCP with octet-counting framing (RFC 6587): readable on the way.
    Tcp,
    /// TLS with octet-counting framing (RFC 5425).
    Tls,
}

impl Transport {
    fn scheme(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }

    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Udp => 514,
            Self::Tcp => 601,
            Self::Tls => 6514,
        }
    }
}

/// The collector's host: an address or a name to resolve (and, for TLS, to verify).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IP address literal.
    Ip(IpAddr),
    /// A DNS name.
    Name(String),
}

/// Where the collector listens, parsed from `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// How to reach it.
    pub transport: Transport,
    /// Its host.
    pub host: Host,
    /// Its port.
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.transport.scheme();
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "{scheme}://[{ip}]:{}", self.port),
            Host::Ip(ip) => write!(f, "{scheme}://{ip}:{}", self.port),
            Host::Name(name) => write!(f, "{scheme}://{name}:{}", self.port),
        }
    }
}

impl Target {
    /// Parses `udp://host[:port]`, `tcp://…` or `tls://…`; IPv6 literals in brackets.
    pub fn parse(text: &str) -> Result<Self, SyslogConfigError> {
        let url = url::Url::parse(text).map_err(|e| bad("url", format!("{text:?}: {e}")))?;
        let transport = match url.scheme() {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            other => {
                return Err(bad(
                    "url",
                    format!("scheme {other:?} is not one of udp://, tcp://, tls://"),
                ))
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("url", "must not carry a user name or password"));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "url",
                "must be scheme://host[:port] with nothing after",
            ));
        }
        let host = match url.host() {
            Some(url::Host::Ipv4(ip)) => Host::Ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Host::Ip(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) if !name.is_empty() => Host::Name(name.to_string()),
            _ => return Err(bad("url", "names no host")),
        };
        let port = url.port().unwrap_or(transport.default_port());
        if port == 0 {
            return Err(bad("url", "port 0 is not a collector's port"));
        }
        Ok(Self {
            transport,
            host,
            port,
        })
    }
}

fn default_facility() -> Facility {
    Facility::Authpriv
}

fn default_app_name() -> String {
    "sightline-relay".to_string()
}

/// The `[syslog]` table: export the audit log to a syslog collector.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `udp://host:514`, `tcp://host:601` or `tls://host:6514`.
    pub url: String,
    /// PEM certificates of the CAs that may vouch for a TLS collector (required for tls://,
    /// refused otherwise).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain the relay presents to a collector that asks for one (tls://).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file` (mode 0600).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Facility of every message.
    #[serde(default = "default_facility")]
    pub facility: Facility,
    /// APP-NAME of every message.
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// HOSTNAME of every message; default: this machine's hostname.
    #[serde(default)]
    pub hostname: Option<String>,
}

/// Whether `text` is 1..=`max` printable US-ASCII characters without spaces (RFC 5424's
/// PRINTUSASCII).
pub(crate) fn is_header_field(text: &str, max: usize) -> bool {
    !text.is_empty() && text.len() <= max && text.bytes().all(|b| (33..=126).contains(&b))
}

impl SyslogConfig {
    /// Checks every value and returns the parsed target.
    pub fn validate(&self) -> Result<Target, SyslogConfigError> {
        let target = Target::parse(&self.url)?;
        let tls = target.transport == Transport::Tls;
        if tls && self.ca_file.is_none() {
            return Err(bad(
                "ca_file",
                "required for tls:// (the PEM certificates of the CA that signed the collector's certificate)",
            ));
        }
        if !tls {
            for (key, set) in [
                ("ca_file", self.ca_file.is_some()),
                ("cert_file", self.cert_file.is_some()),
                ("key_file", self.key_file.is_some()),
            ] {
                if set {
                    return Err(bad(
                        key,
                        "only for tls:// (udp:// and tcp:// are not encrypted)",
                    ));
                }
            }
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(bad("key_file", "cert_file and key_file go together"));
        }
        for (key, path) in [
            ("ca_file", &self.ca_file),
            ("cert_file", &self.cert_file),
            ("key_file", &self.key_file),
        ] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(bad(key, "is empty"));
            }
        }
        if !is_header_field(&self.app_name, APP_NAME_MAX) {
            return Err(bad(
                "app_name",
                "must be 1 to 48 printable ASCII characters without spaces",
            ));
        }
        if let Some(h) = &self.hostname {
            if !is_header_field(h, HOSTNAME_MAX) {
                return Err(bad(
                    "hostname",
                    "must be 1 to 255 printable ASCII characters without spaces",
                ));
            }
        }
        Ok(target)
    }

    /// The HOSTNAME to send: `hostname`, else this machine's name (characters RFC 5424 does
    /// not allow replaced by `_`), else `-`.
    pub fn hostname_or_machine(&self) -> String {
        if let Some(h) = &self.hostname {
            return h.clone();
        }
        let machine = gethostname::gethostname().to_string_lossy().into_owned();
        let cleaned: String = machine
            .chars()
            .take(HOSTNAME_MAX)
            .map(|c| if c.is_ascii_graphic() { c } else { '_' })
            .collect();
        if cleaned.is_empty() {
            "-".to_string()
        } else {
            cleaned
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<SyslogConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn urls_parse_with_default_ports_and_ipv6_literals() {
        let t = Target::parse("tls://logs.example.org").unwrap();
        assert_eq!(t.transport, Transport::Tls);
        assert_eq!(t.host, Host::Name("logs.example.org".into()));
        assert_eq!(t.port, 6514);
        assert_eq!(t.to_string(), "tls://logs.example.org:6514");
        let t = Target::parse("udp://[::1]:5514").unwrap();
        assert_eq!(t.host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(t.to_string(), "udp://[::1]:5514");
        assert_eq!(Target::parse("tcp://10.0.0.1/").unwrap().port, 601);
        assert_eq!(Target::parse("udp://10.0.0.1").unwrap().port, 514);
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        for (url, why) in [
            ("http://x:1", "scheme"),
            ("tls://user:pw@x:1", "password"),
            ("tls://x:1/path", "nothing after"),
            ("tls://x:1?q", "nothing after"),
            ("tls://x:0", "port 0"),
            ("tls://x:99999", "port"),
            ("tls://[::1", "url"),
            ("logs.example.org:514", "scheme"),
            ("udp://", "host"),
        ] {
            let e = Target::parse(url).unwrap_err();
            assert_eq!(e.key, "url");
            assert!(e.to_string().contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn defaults_and_facility_names() {
        let c = config("url = \"udp://127.0.0.1\"").unwrap();
        assert_eq!(c.facility, Facility::Authpriv);
        assert_eq!(c.facility.code(), 10);
        assert_eq!(c.app_name, "sightline-relay");
        assert!(c.validate().is_ok());
        assert!(!c.hostname_or_machine().is_empty());
        let c = config("url = \"udp://h\"\nfacility = \"local7\"").unwrap();
        assert_eq!(c.facility.code(), 23);
        let e = config("url = \"udp://h\"\nfacility = \"local8\"").unwrap_err();
        assert!(e.to_string().contains("local8"), "{e}");
        let e = config("url = \"udp://h\"\nverify = false").unwrap_err();
        assert!(e.to_string().contains("unknown field `verify`"), "{e}");
        assert!(config("facility = \"user\"").is_err(), "url is required");
    }

    #[test]
    fn tls_needs_a_ca_and_plain_transports_refuse_tls_files() {
        let e = config("url = \"tls://h\"").unwrap().validate().unwrap_err();
        assert_eq!(e.key, "ca_file");
        let ok = config("url = \"tls://h\"\nca_file = \"/ca.pem\"").unwrap();
        assert_eq!(ok.validate().unwrap().transport, Transport::Tls);
        let e = config("url = \"tcp://h\"\nca_file = \"/ca.pem\"")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.key, "ca_file");
        let e = config("url = \"udp://h\"\nkey_file = \"/k.pem\"")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.key, "key_file");
        let e = config("url = \"tls://h\"\nca_file = \"/ca.pem\"\ncert_file = \"/c.pem\"")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.key, "key_file");
    }

    #[test]
    fn header_fields_are_checked() {
        let e = config("url = \"udp://h\"\napp_name = \"two words\"")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.key, "app_name");
        let long = "a".repeat(49);
        let e = config(&format!("url = \"udp://h\"\napp_name = \"{long}\""))
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.key, "app_name");
        let c = config("url = \"udp://h\"\nhostname = \"relay-1.example.org\"").unwrap();
        assert!(c.validate().is_ok());
        assert_eq!(c.hostname_or_machine(), "relay-1.example.org");
        let e = config("url = \"udp://h\"\nhostname = \"\"")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.key, "hostname");
    }
}
