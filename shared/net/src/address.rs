//! Addresses the user types: a relay (`--relay`, the config file, the window's form) or a
//! LAN-only agent (`--direct`). `HOST`, `HOST:PORT`, `IPv4`, `IPv4:PORT`, `IPv6`, `[IPv6]` or
//! `[IPv6]:PORT`; the port defaults to 7615. A bare IPv6 address such as `::1` is an address
//! without a port, never "`:` then a port".

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// A host and a port, parsed from what the user typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    host: String,
    port: u16,
}

impl HostPort {
    /// Host name or IP address (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for HostPort {
    /// `host:port`, with an IPv6 address in brackets: what `TcpStream::connect` takes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for HostPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (host, port) = parse_host_port(s)?;
        Ok(Self {
            host,
            port: port.unwrap_or(sightline_core::DEFAULT_PORT),
        })
    }
}

/// The host (an IPv6 address without brackets) and the port, if one was typed, of an address
/// in any of the forms of [`HostPort`].
pub fn parse_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty address; expected HOST[:PORT]".into());
    }
    let (host, port) = split(s)?;
    if host.is_empty() {
        return Err(format!("{s:?}: missing host"));
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == '@')
    {
        return Err(format!("{s:?}: not a host name or IP address"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port != 0 => Some(port),
            _ => return Err(format!("{s:?}: {p:?} is not a port number (1 to 65535)")),
        },
    };
    Ok((host.to_string(), port))
}

/// Host and optional port text of a trimmed, non-empty address.
fn split(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{s:?}: missing `]` after the IPv6 address"))?;
        inside
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("{s:?}: {inside:?} is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("{s:?}: expected `:PORT` after the IPv6 address"))?,
            ),
        };
        Ok((inside, port))
    } else if s.matches(':').count() > 1 {
        // Several colons and no brackets: an IPv6 address alone.
        s.parse::<Ipv6Addr>().map_err(|_| {
            format!("{s:?}: not an IPv6 address (with a port, write [ADDRESS]:PORT)")
        })?;
        Ok((s, None))
    } else {
        Ok(match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn addr(s: &str) -> HostPort {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn addresses_default_to_port_7615() {
        let a = addr("192.168.1.20");
        assert_eq!((a.host(), a.port()), ("192.168.1.20", 7615));
        assert_eq!(a.to_string(), "192.168.1.20:7615");
        assert_eq!(addr("kiosk.lan:8000").to_string(), "kiosk.lan:8000");
        assert_eq!(addr("  kiosk.lan ").to_string(), "kiosk.lan:7615");
        assert_eq!(
            addr("relay.example.com").to_string(),
            "relay.example.com:7615"
        );
    }

    #[test]
    fn ipv6_addresses_in_brackets_or_alone() {
        let a = addr("[::1]:9000");
        assert_eq!((a.host(), a.port()), ("::1", 9000));
        assert_eq!(a.to_string(), "[::1]:9000");
        assert_eq!(addr("[fe80::1]").to_string(), "[fe80::1]:7615");
        let a = addr("fd00::20");
        assert_eq!((a.host(), a.port()), ("fd00::20", 7615));
        assert_eq!(a.to_string(), "[fd00::20]:7615");
        // `::1` is the loopback address with no port, not "`:`, then port 1".
        assert_eq!(addr("::1").to_string(), "[::1]:7615");
        assert_eq!(addr("::").to_string(), "[::]:7615");
        // What `TcpStream::connect` parses.
        for s in ["[::1]:9000", "[::1]:7615", "[fd00::20]:7615"] {
            assert!(s.parse::<std::net::SocketAddr>().is_ok(), "{s}");
        }
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in [
            "",
            "   ",
            "host:",
            "host:0",
            "host:65536",
            "host:http",
            ":7615",
            "[::1",
            "[::1]9000",
            "[::1]:",
            "[kiosk]:7615",
            "[]:7615",
            "::1:99999",
            "::g",
            "1.2.3.4:80:90",
            "a b:7615",
            "user@host",
            "http://relay.example.com",
        ] {
            assert!(bad.parse::<HostPort>().is_err(), "{bad:?} was accepted");
        }
    }
}
