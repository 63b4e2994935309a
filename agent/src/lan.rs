//! LAN-only (kiosk) mode: who may even open a connection. The agent listens on the local
//! network and accepts peers only from private, link-local or loopback addresses, and from an
//! optional narrower allow list; everything else is closed before the handshake.
//!
//! Addresses are judged after unwrapping IPv4-mapped IPv6 (`::ffff:a.b.c.d`), so an IPv4 peer
//! on a dual-stack socket is held to the IPv4 rules, and a public IPv4 address cannot pass as
//! IPv6.

use ipnet::IpNet;
use std::net::IpAddr;

/// Why a peer address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a private, link-local or loopback address.
    #[error("{0} is not a local-network address (private, link-local or loopback)")]
    NotLocal(IpAddr),
    /// Local, but outside the configured allow list.
    #[error("{0} is not in the allowed ranges")]
    NotAllowed(IpAddr),
}

/// The address rule of a LAN-only agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow: Vec<IpNet>,
}

impl AddressPolicy {
    /// Local addresses only, further limited to `allow` when it is not empty.
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    /// Decides on a peer.
    pub fn admits(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ip = canonical(ip);
        if !is_local(ip) {
            return Err(Refusal::NotLocal(ip));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|net| net.contains(&ip)) {
            return Err(Refusal::NotAllowed(ip));
        }
        Ok(())
    }
}

/// IPv4-mapped IPv6 addresses as the IPv4 address they carry.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Private (RFC 1918), link-local or loopback IPv4; unique-local (fc00::/7), link-local
/// (fe80::/10) or loopback IPv6.
pub fn is_local(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local() || v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local(),
    }
}

/// Parses a CIDR (`10.1.0.0/16`) or a single address (taken as /32 or /128).
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        let canonical_net = net.trunc();
        if !is_local(canonical_net.network()) || !is_local(canonical_net.broadcast()) {
            return Err(format!(
                "{text}: only local-network ranges can be allowed (private, link-local, loopback)"
            ));
        }
        return Ok(canonical_net);
    }
    match text.parse::<IpAddr>() {
        Ok(ip) if is_local(ip) => Ok(IpNet::from(canonical(ip))),
        Ok(_) => Err(format!(
            "{text}: only local-network addresses can be allowed (private, link-local, loopback)"
        )),
        Err(_) => Err(format!(
            "{text}: not an address or CIDR range (e.g. 192.168.10.0/24)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn local_ranges() {
        for yes in [
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.20",
            "169.254.3.4",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "fd12:3456::1",
            "fc00::1",
            "fe80::1",
            "::ffff:192.168.1.20",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_local(ip(yes)), "{yes}");
        }
        for no in [
            "8.8.8.8",
            "172.32.0.1",
            "192.169.0.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "2001:db8::1",
            "2a00:1450::1",
            "::",
            // A public IPv4 address mapped into IPv6 is still public.
            "::ffff:8.8.8.8",
            // NAT64 and 6to4 wrappers of private addresses are not local on this network.
            "64:ff9b::c0a8:101",
            "2002:c0a8:101::1",
        ] {
            assert!(!is_local(ip(no)), "{no}");
        }
    }

    #[test]
    fn allow_list_narrows() {
        let p = AddressPolicy::new(vec![parse_cidr("192.168.10.0/24").unwrap()]);
        assert_eq!(p.admits(ip("192.168.10.7")), Ok(()));
        assert_eq!(p.admits(ip("::ffff:192.168.10.7")), Ok(()));
        assert_eq!(
            p.admits(ip("192.168.11.7")),
            Err(Refusal::NotAllowed(ip("192.168.11.7")))
        );
        assert_eq!(
            p.admits(ip("127.0.0.1")),
            Err(Refusal::NotAllowed(ip("127.0.0.1")))
        );
        assert_eq!(
            p.admits(ip("8.8.8.8")),
            Err(Refusal::NotLocal(ip("8.8.8.8")))
        );
        let open = AddressPolicy::default();
        assert_eq!(open.admits(ip("127.0.0.1")), Ok(()));
        assert!(open.admits(ip("203.0.113.5")).is_err());
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            parse_cidr("10.1.2.3/16").unwrap().to_string(),
            "10.1.0.0/16"
        );
        assert_eq!(parse_cidr("127.0.0.1").unwrap().to_string(), "127.0.0.1/32");
        assert_eq!(parse_cidr("fe80::1").unwrap().to_string(), "fe80::1/128");
        assert!(parse_cidr("0.0.0.0/0").is_err(), "the whole internet");
        assert!(parse_cidr("8.8.8.0/24").is_err());
        assert!(parse_cidr("10.0.0.0/7").is_err(), "reaches past 10/8");
        assert!(parse_cidr("nonsense").is_err());
        assert!(parse_cidr("10.0.0.0/33").is_err());
    }
}
