//! `NO_PROXY`: the hosts reached without the proxy. A comma-separated list of `*` (every
//! host), IP addresses, CIDR blocks (`10.0.0.0/8`, `fd00::/8`) and domain names: `corp.example`
//! and `.corp.example` both match `corp.example` and every name under it. Names compare
//! without case; a port after an entry is ignored (the relay's port does not change whether the
//! proxy is needed).

use ipnet::IpNet;
use std::net::IpAddr;

/// One entry of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    All,
    Ip(IpAddr),
    Net(IpNet),
    Domain(String),
}

/// A parsed `NO_PROXY` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<Entry>,
}

impl NoProxy {
    /// Parses the list; entries that are none of the forms above are skipped (as curl and Go
    /// do), so one typo does not send everything else through the proxy.
    pub fn parse(list: &str) -> Self {
        let entries = list
            .split([',', ' '])
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .filter_map(entry)
            .collect();
        Self { entries }
    }

    /// Whether `host` (a name, or an IP address without brackets) is reached directly.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|e| match (e, ip) {
            (Entry::All, _) => true,
            (Entry::Ip(a), Some(ip)) => *a == ip,
            (Entry::Net(n), Some(ip)) => n.contains(&ip),
            (Entry::Domain(d), None) => {
                host == *d
                    || host
                        .strip_suffix(d.as_str())
                        .is_some_and(|head| head.ends_with('.'))
            }
            _ => false,
        })
    }
}

fn entry(text: &str) -> Option<Entry> {
    if text == "*" {
        return Some(Entry::All);
    }
    if let Ok(net) = text.parse::<IpNet>() {
        return Some(Entry::Net(net));
    }
    let bare = text.trim_start_matches('[');
    let bare = bare.split(']').next().unwrap_or(bare);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(Entry::Ip(ip));
    }
    // `1.2.3.4:80` or `name:80`: the host part.
    let host = match text.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => text,
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(Entry::Ip(ip));
    }
    let domain = host
        .trim_start_matches('*')
        .trim_start_matches('.')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let valid = !domain.is_empty()
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    valid.then_some(Entry::Domain(domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_themselves_and_below() {
        let n = NoProxy::parse("corp.example, .lan,Internal.Example:8080");
        for yes in [
            "corp.example",
            "relay.corp.example",
            "a.b.corp.example",
            "RELAY.Corp.Example",
            "relay.corp.example.",
            "kiosk.lan",
            "lan",
            "internal.example",
            "x.internal.example",
        ] {
            assert!(n.matches(yes), "{yes}");
        }
        for no in [
            "notcorp.example",
            "corp.example.com",
            "example",
            "lan.example",
            "10.0.0.1",
        ] {
            assert!(!n.matches(no), "{no}");
        }
    }

    #[test]
    fn addresses_and_blocks() {
        let n = NoProxy::parse("10.0.0.0/8,192.168.1.20,::1,[fd00::20],fe80::/10,127.0.0.1:7615");
        for yes in [
            "10.1.2.3",
            "192.168.1.20",
            "::1",
            "fd00::20",
            "fe80::1",
            "127.0.0.1",
        ] {
            assert!(n.matches(yes), "{yes}");
        }
        for no in [
            "11.0.0.1",
            "192.168.1.21",
            "::2",
            "fd00::21",
            "relay.example",
        ] {
            assert!(!n.matches(no), "{no}");
        }
    }

    #[test]
    fn a_star_matches_everything_and_junk_is_skipped() {
        assert!(NoProxy::parse("*").matches("relay.example"));
        assert!(NoProxy::parse("a.example,*").matches("10.0.0.1"));
        let n = NoProxy::parse(" , ,bad/host, ok.example");
        assert!(n.matches("ok.example"));
        assert!(!n.matches("bad"));
        assert!(!NoProxy::parse("").matches("relay.example"));
        // A leading `*.` is the same as a leading dot.
        assert!(NoProxy::parse("*.corp.example").matches("r.corp.example"));
    }
}
