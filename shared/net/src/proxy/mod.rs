//! HTTP proxies between a client and the relay: which one a route goes through (the `--proxy`
//! flag, else `HTTPS_PROXY` / `HTTP_PROXY` and `NO_PROXY` from the environment), and the
//! CONNECT tunnel through it ([`connect`]). Every route type, WebSocket included, goes through
//! a CONNECT tunnel: the proxy sees only the relay's host and port, never the traffic, which
//! the Noise channel (and TLS, for tls:// and wss://) encrypts.

pub mod connect;
pub mod no_proxy;

use crate::route::{Route, Transport};
use no_proxy::NoProxy;
use percent_encoding::percent_decode_str;
use std::fmt;
use std::str::FromStr;

/// A user name and password for the proxy (`Proxy-Authorization: Basic`). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name, percent-decoded.
    pub user: String,
    /// Password, percent-decoded.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(..)")
    }
}

/// An HTTP proxy, `http://[USER:PASS@]HOST[:PORT]` (port 80 if none is given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    host: String,
    port: u16,
    credentials: Option<Credentials>,
}

impl ProxyUrl {
    /// Host name or IP address (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name and password, if the URL has them.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }
}

impl fmt::Display for ProxyUrl {
    /// `http://host:port`: without the credentials, so it can be printed and logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "http://{}",
            crate::route::authority(&self.host, self.port)
        )
    }
}

impl FromStr for ProxyUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        // Errors name the proxy without what follows the scheme's `//` up to an `@`: it may
        // hold a password.
        let shown = redact(s);
        let url = url::Url::parse(s).map_err(|e| format!("proxy {shown}: {e}"))?;
        match url.scheme() {
            "http" => {}
            "https" => {
                return Err(format!(
                    "proxy {shown}: https:// proxies are not supported; give the proxy's http:// address (the relay connection inside the tunnel is encrypted end to end)"
                ))
            }
            other => {
                return Err(format!(
                    "proxy {shown}: unknown scheme {other}://; expected http://HOST:PORT"
                ))
            }
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "proxy {shown}: expected http://HOST:PORT, without a path"
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(format!("proxy {shown}: missing host")),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let credentials = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let decode = |t: &str| {
                percent_decode_str(t)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| format!("proxy {shown}: the user name or password is not UTF-8"))
            };
            Some(Credentials {
                user: decode(url.username())?,
                password: decode(url.password().unwrap_or_default())?,
            })
        };
        Ok(Self {
            host,
            port,
            credentials,
        })
    }
}

/// `s` with any `user:password@` replaced by `***@`.
fn redact(s: &str) -> String {
    let (scheme, rest) = match s.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), s),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => s.to_string(),
    }
}

/// The proxy settings from the environment, read once.
#[derive(Debug, Clone, Default)]
pub struct ProxyEnv {
    /// `HTTPS_PROXY`, else `https_proxy`.
    pub https: Option<String>,
    /// `HTTP_PROXY`, else `http_proxy`.
    pub http: Option<String>,
    /// `NO_PROXY`, else `no_proxy`.
    pub no_proxy: Option<String>,
}

impl ProxyEnv {
    /// Reads the variables (an empty one counts as unset).
    pub fn from_env() -> Self {
        let var = |upper: &str, lower: &str| {
            [upper, lower]
                .iter()
                .filter_map(|name| std::env::var(name).ok())
                .map(|v| v.trim().to_string())
                .find(|v| !v.is_empty())
        };
        Self {
            https: var("HTTPS_PROXY", "https_proxy"),
            http: var("HTTP_PROXY", "http_proxy"),
            no_proxy: var("NO_PROXY", "no_proxy"),
        }
    }

    /// The proxy for `route`: `HTTPS_PROXY` for tcp, tls and wss, `HTTP_PROXY` for ws (each
    /// falling back to the other), none when `NO_PROXY` matches the route's host.
    pub fn proxy_for(&self, route: &Route) -> Result<Option<ProxyUrl>, String> {
        let (first, second) = match route.transport() {
            Transport::Ws => ((&self.http, "HTTP_PROXY"), (&self.https, "HTTPS_PROXY")),
            _ => ((&self.https, "HTTPS_PROXY"), (&self.http, "HTTP_PROXY")),
        };
        let Some((url, name)) = [first, second]
            .into_iter()
            .find_map(|(v, name)| v.as_ref().map(|v| (v, name)))
        else {
            return Ok(None);
        };
        if let Some(list) = &self.no_proxy {
            if NoProxy::parse(list).matches(route.host()) {
                return Ok(None);
            }
        }
        url.parse().map(Some).map_err(|e| format!("{name}: {e}"))
    }
}

/// Which proxy the client's routes go through.
#[derive(Debug, Clone)]
pub enum ProxySettings {
    /// As the environment says ([`ProxyEnv`]).
    Env(ProxyEnv),
    /// Never through a proxy (`--proxy none`).
    Never,
    /// Always through this one (`--proxy URL`), whatever the environment says.
    Fixed(ProxyUrl),
}

impl ProxySettings {
    /// From the `--proxy` flag (or the config file's `proxy`): none given reads the
    /// environment; `none` means no proxy; anything else is a proxy URL.
    pub fn from_flag(flag: Option<&str>) -> Result<Self, String> {
        match flag.map(str::trim) {
            None => Ok(Self::Env(ProxyEnv::from_env())),
            Some(f) if f.eq_ignore_ascii_case("none") => Ok(Self::Never),
            Some(url) => url.parse().map(Self::Fixed),
        }
    }

    /// The proxy for `route`, if any; a malformed proxy variable is an error.
    pub fn proxy_for(&self, route: &Route) -> Result<Option<ProxyUrl>, String> {
        match self {
            Self::Env(env) => env.proxy_for(route),
            Self::Never => Ok(None),
            Self::Fixed(p) => Ok(Some(p.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn route(s: &str) -> Route {
        let list: crate::route::RouteList = s.parse().unwrap();
        list.routes()[0].clone()
    }

    #[test]
    fn proxy_urls_never_show_credentials() {
        let p: ProxyUrl = "http://al%40ice:p%3Ass@proxy.corp:3128".parse().unwrap();
        assert_eq!(p.to_string(), "http://proxy.corp:3128");
        assert!(!format!("{p:?}").contains("p:ss"));
        let c = p.credentials().unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("al@ice", "p:ss"));
        let p: ProxyUrl = "http://proxy.corp".parse().unwrap();
        assert_eq!((p.port(), p.credentials()), (80, None));
        let p: ProxyUrl = "http://[fd00::3]:8080/".parse().unwrap();
        assert_eq!(
            (p.host(), p.to_string().as_str()),
            ("fd00::3", "http://[fd00::3]:8080")
        );
    }

    #[test]
    fn bad_proxy_urls_say_why_without_the_password() {
        let err = |s: &str| s.parse::<ProxyUrl>().unwrap_err();
        let e = err("https://u:secret@proxy.corp:3128");
        assert!(e.contains("https:// proxies are not supported"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        assert!(err("socks5://proxy:1080").contains("unknown scheme"));
        assert!(err("proxy.corp:3128").contains("proxy"));
        assert!(err("http://proxy.corp:3128/path").contains("without a path"));
        assert!(!err("http://u:secret@:3128").contains("secret"));
    }

    #[test]
    fn the_environment_picks_by_transport() {
        let env = ProxyEnv {
            https: Some("http://s.corp:1".into()),
            http: Some("http://p.corp:2".into()),
            no_proxy: Some("internal.corp".into()),
        };
        let via = |r: &str| env.proxy_for(&route(r)).unwrap().map(|p| p.to_string());
        assert_eq!(
            via("tcp://relay.example:7615").as_deref(),
            Some("http://s.corp:1")
        );
        assert_eq!(
            via("tls://relay.example").as_deref(),
            Some("http://s.corp:1")
        );
        assert_eq!(
            via("wss://relay.example").as_deref(),
            Some("http://s.corp:1")
        );
        assert_eq!(
            via("ws://relay.example").as_deref(),
            Some("http://p.corp:2")
        );
        assert_eq!(via("wss://relay.internal.corp"), None);
        let only_https = ProxyEnv {
            https: Some("http://s.corp:1".into()),
            ..Default::default()
        };
        let p = only_https.proxy_for(&route("ws://relay.example")).unwrap();
        assert_eq!(p.unwrap().to_string(), "http://s.corp:1");
        assert_eq!(ProxyEnv::default().proxy_for(&route("r:1")).unwrap(), None);
        let bad = ProxyEnv {
            https: Some("https://s.corp".into()),
            ..Default::default()
        };
        let e = bad.proxy_for(&route("r:1")).unwrap_err();
        assert!(e.starts_with("HTTPS_PROXY: "), "{e}");
    }

    #[test]
    fn the_flag_overrides_the_environment() {
        assert!(matches!(
            ProxySettings::from_flag(Some("none")),
            Ok(ProxySettings::Never)
        ));
        let fixed = ProxySettings::from_flag(Some("http://p.corp:3128")).unwrap();
        let p = fixed.proxy_for(&route("ws://r.example")).unwrap().unwrap();
        assert_eq!(p.to_string(), "http://p.corp:3128");
        assert!(ProxySettings::from_flag(Some("ftp://p")).is_err());
        let never = ProxySettings::Never;
        assert_eq!(never.proxy_for(&route("r:1")).unwrap(), None);
    }
}
