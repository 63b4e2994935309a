//! A listener's address rules: the allow and deny lists (deny wins; an empty allow list lets
//! everyone in) and the lists of proxies whose word on the client's address counts. IPv4
//! addresses mapped into IPv6 (`::ffff:10.0.0.1`, from a dual-stack socket) compare as IPv4.

use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;

/// `ip`, with an IPv4-mapped IPv6 address turned into its IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Whether `ip` falls in any of `blocks`.
pub fn contains(blocks: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    blocks.iter().any(|b| b.contains(&ip))
}

/// Why the rules refuse an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// A deny block holds it.
    Deny(IpNet),
    /// The allow list does not hold it.
    NotAllowed,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Deny(net) => write!(f, "deny {net}"),
            Self::NotAllowed => f.write_str("not in allow list"),
        }
    }
}

/// Allow and deny lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Allowed blocks; empty: everyone.
    pub allow: Vec<IpNet>,
    /// Refused blocks.
    pub deny: Vec<IpNet>,
}

impl Rules {
    /// Checks a client's address.
    pub fn check(&self, ip: IpAddr) -> Result<(), Denied> {
        let ip = canonical(ip);
        if let Some(net) = self.deny.iter().find(|n| n.contains(&ip)) {
            return Err(Denied::Deny(*net));
        }
        if self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip)) {
            Ok(())
        } else {
            Err(Denied::NotAllowed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn deny_wins_over_allow_and_empty_allow_admits_everyone() {
        let r = Rules {
            allow: nets(&["10.0.0.0/8", "2001:db8::/32"]),
            deny: nets(&["10.9.0.0/16"]),
        };
        assert_eq!(r.check("10.1.2.3".parse().unwrap()), Ok(()));
        assert_eq!(r.check("2001:db8::1".parse().unwrap()), Ok(()));
        let denied = r.check("10.9.1.1".parse().unwrap()).unwrap_err();
        assert_eq!(denied.to_string(), "deny 10.9.0.0/16");
        let outside = r.check("192.0.2.1".parse().unwrap()).unwrap_err();
        assert_eq!(outside.to_string(), "not in allow list");
        let open = Rules {
            allow: vec![],
            deny: nets(&["192.0.2.0/24"]),
        };
        assert_eq!(open.check("198.51.100.1".parse().unwrap()), Ok(()));
    }

    #[test]
    fn mapped_ipv6_compares_as_ipv4() {
        let r = Rules {
            allow: vec![],
            deny: nets(&["10.9.0.0/16"]),
        };
        assert!(r.check("::ffff:10.9.0.1".parse().unwrap()).is_err());
        assert!(contains(
            &nets(&["127.0.0.1/32"]),
            "::ffff:127.0.0.1".parse().unwrap()
        ));
    }
}
