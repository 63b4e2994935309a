//! The ways to reach a relay, as the user types them (`--relay`, the config file, the window's
//! form): a comma-separated list of entries, tried in order by [`crate::dial`].
//!
//! An entry is `tcp://HOST:PORT`, `tls://HOST:PORT` (default port 7615 for both),
//! `ws://HOST[:PORT][/PATH]` (port 80), `wss://HOST[:PORT][/PATH]` (port 443; the path
//! defaults to `/sightline`), a bare `HOST:PORT` (plain TCP, as before there were routes), or
//! a bare `HOST` without a port: tcp://HOST:7615, then wss://HOST:443/sightline, then
//! ws://HOST:80/sightline. IPv6 addresses go in brackets in URLs; a bare IPv6 address follows
//! [`crate::address`].

use std::fmt;
use std::str::FromStr;

/// The request path of a WebSocket route when none is given.
pub const DEFAULT_WS_PATH: &str = "/sightline";

/// What carries the relay channel's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The length-prefixed frames straight over TCP.
    Tcp,
    /// The same frames inside TLS.
    Tls,
    /// The frames' bytes in WebSocket binary messages.
    Ws,
    /// The same WebSocket inside TLS.
    Wss,
}

impl Transport {
    /// Every transport, in the order of their names.
    pub const ALL: [Transport; 4] = [Self::Tcp, Self::Tls, Self::Ws, Self::Wss];

    /// Its name: the URL scheme, and the name in the relay's `[[listener]]` tables and logs.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }

    /// The transport of this name, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    fn default_port(self) -> u16 {
        match self {
            Transport::Tcp | Transport::Tls => sightline_core::DEFAULT_PORT,
            Transport::Ws => 80,
            Transport::Wss => 443,
        }
    }

    /// Whether TLS runs over the TCP connection (or the proxy's tunnel).
    pub fn uses_tls(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }

    /// Whether a WebSocket runs over it.
    pub fn is_websocket(self) -> bool {
        matches!(self, Transport::Ws | Transport::Wss)
    }
}

/// One way to reach the relay.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    transport: Transport,
    host: String,
    port: u16,
    /// The WebSocket request path (with any query); empty for tcp and tls.
    path: String,
}

impl Route {
    /// A route to `host` (an IPv6 address without brackets) at `port`; WebSocket routes get
    /// [`DEFAULT_WS_PATH`].
    pub fn new(transport: Transport, host: &str, port: u16) -> Self {
        let path = if transport.is_websocket() {
            DEFAULT_WS_PATH.to_string()
        } else {
            String::new()
        };
        Self {
            transport,
            host: host.to_string(),
            port,
            path,
        }
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Host name or IP address (an IPv6 address without brackets): what TLS names (SNI).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The WebSocket request path; empty for tcp and tls.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `host:port` with an IPv6 address in brackets: what an HTTP CONNECT names.
    pub fn authority(&self) -> String {
        authority(&self.host, self.port)
    }
}

/// `host:port`, with an IPv6 address in brackets.
pub(crate) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl fmt::Display for Route {
    /// `scheme://host:port[/path]`, always with the port.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.transport.name();
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

/// The routes to a relay, in the order they are tried, with the text they were parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteList {
    text: String,
    routes: Vec<Route>,
}

impl RouteList {
    /// The routes, in order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The routes with `first` moved to the front (added if it is not in the list): a broken
    /// connection first tries the way that worked.
    pub fn preferring(&self, first: &Route) -> Vec<Route> {
        let mut routes = vec![first.clone()];
        routes.extend(self.routes.iter().filter(|r| *r != first).cloned());
        routes
    }
}

impl fmt::Display for RouteList {
    /// The list as the user typed it (trimmed): what settings and stored files key on.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for RouteList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let text = s.trim();
        if text.is_empty() {
            return Err("empty relay address; expected HOST[:PORT] or a list of tcp://, tls://, ws:// or wss:// URLs".into());
        }
        let mut routes = Vec::new();
        for entry in text.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(format!("{text:?}: empty entry in the list"));
            }
            for route in parse_entry(entry)? {
                if !routes.contains(&route) {
                    routes.push(route);
                }
            }
        }
        Ok(Self {
            text: text.to_string(),
            routes,
        })
    }
}

/// The routes one entry stands for: one, or three for a bare host.
fn parse_entry(entry: &str) -> Result<Vec<Route>, String> {
    if entry.contains("://") {
        return parse_url(entry).map(|r| vec![r]);
    }
    let (host, port) = crate::address::parse_host_port(entry)?;
    Ok(match port {
        Some(port) => vec![Route::new(Transport::Tcp, &host, port)],
        None => vec![
            Route::new(Transport::Tcp, &host, Transport::Tcp.default_port()),
            Route::new(Transport::Wss, &host, Transport::Wss.default_port()),
            Route::new(Transport::Ws, &host, Transport::Ws.default_port()),
        ],
    })
}

fn parse_url(entry: &str) -> Result<Route, String> {
    let scheme = entry.split("://").next().unwrap_or_default();
    let transport = match scheme.to_ascii_lowercase().as_str() {
        "tcp" => Transport::Tcp,
        "tls" => Transport::Tls,
        "ws" => Transport::Ws,
        "wss" => Transport::Wss,
        _ => {
            return Err(format!(
                "{entry}: unknown scheme; use tcp://, tls://, ws:// or wss://"
            ))
        }
    };
    let url = url::Url::parse(entry).map_err(|e| format!("{entry}: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{entry}: a relay address takes no user name"));
    }
    if url.fragment().is_some() {
        return Err(format!("{entry}: a relay address takes no #fragment"));
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => a.to_string(),
        _ => return Err(format!("{entry}: missing host")),
    };
    let port = match url.port() {
        Some(0) => return Err(format!("{entry}: port 0 is not a port number")),
        Some(p) => p,
        None => transport.default_port(),
    };
    let mut route = Route::new(transport, &host, port);
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    if transport.is_websocket() {
        if !path.is_empty() && path != "/" {
            route.path = path;
        }
    } else if !path.is_empty() && path != "/" {
        return Err(format!("{entry}: a {scheme}:// address takes no path"));
    }
    Ok(route)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn routes(s: &str) -> Vec<String> {
        let list: RouteList = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
        list.routes().iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn every_form_of_an_entry() {
        assert_eq!(routes("tcp://r.example:9000"), ["tcp://r.example:9000"]);
        assert_eq!(routes("tcp://r.example"), ["tcp://r.example:7615"]);
        assert_eq!(routes("tls://r.example"), ["tls://r.example:7615"]);
        assert_eq!(routes("TLS://r.example:443"), ["tls://r.example:443"]);
        assert_eq!(routes("ws://r.example"), ["ws://r.example:80/sightline"]);
        assert_eq!(routes("ws://r.example/"), ["ws://r.example:80/sightline"]);
        assert_eq!(routes("wss://r.example"), ["wss://r.example:443/sightline"]);
        assert_eq!(
            routes("wss://R.Example:8443/relay/x?k=1"),
            ["wss://r.example:8443/relay/x?k=1"]
        );
        assert_eq!(routes("r.example:9000"), ["tcp://r.example:9000"]);
        assert_eq!(routes("10.0.0.1:7615"), ["tcp://10.0.0.1:7615"]);
        assert_eq!(
            routes(" r.example "),
            [
                "tcp://r.example:7615",
                "wss://r.example:443/sightline",
                "ws://r.example:80/sightline"
            ]
        );
    }

    #[test]
    fn lists_keep_their_order_and_text() {
        let list: RouteList = " wss://a.example , tcp://b.example:1,c.example:2 "
            .parse()
            .unwrap();
        let shown: Vec<String> = list.routes().iter().map(|r| r.to_string()).collect();
        assert_eq!(
            shown,
            [
                "wss://a.example:443/sightline",
                "tcp://b.example:1",
                "tcp://c.example:2"
            ]
        );
        assert_eq!(
            list.to_string(),
            "wss://a.example , tcp://b.example:1,c.example:2"
        );
        let again = list.preferring(&list.routes()[1]);
        assert_eq!(again[0].to_string(), "tcp://b.example:1");
        assert_eq!(again.len(), 3);
        // Duplicates are tried once.
        assert_eq!(routes("r.example:7615,tcp://r.example").len(), 1);
    }

    #[test]
    fn ipv6_in_brackets() {
        assert_eq!(routes("tcp://[::1]:9"), ["tcp://[::1]:9"]);
        assert_eq!(routes("wss://[fd00::1]"), ["wss://[fd00::1]:443/sightline"]);
        assert_eq!(routes("[::1]:9"), ["tcp://[::1]:9"]);
        let list: RouteList = "ws://[::1]:8080/p".parse().unwrap();
        assert_eq!(list.routes()[0].host(), "::1");
        assert_eq!(list.routes()[0].authority(), "[::1]:8080");
        assert_eq!(routes("::1")[0], "tcp://[::1]:7615");
        assert_eq!(routes("::1")[1], "wss://[::1]:443/sightline");
    }

    #[test]
    fn bad_entries_say_why() {
        let err = |s: &str| s.parse::<RouteList>().unwrap_err();
        assert_eq!(
            err("ftp://x"),
            "ftp://x: unknown scheme; use tcp://, tls://, ws:// or wss://"
        );
        assert!(err("").contains("empty relay address"));
        assert!(err("a.example,,b.example").contains("empty entry"));
        assert!(err("tcp://").contains("tcp://"));
        assert!(err("tcp://u:p@r.example").contains("no user name"));
        assert!(err("tcp://r.example/x").contains("no path"));
        assert!(err("ws://r.example:99999").contains("ws://r.example:99999"));
        assert!(err("wss://r.example:0").contains("port 0"));
        assert!(err("r.example:http").contains("not a port number"));
        assert!(err("tcp://[::1").contains("tcp://[::1"));
        assert!(err("wss://r.example/#x").contains("fragment"));
    }
}
