//! Who may open a connection: the relay-wide cap (`max_connections`) and caps per source
//! address and per prefix, so that one host, or one network, cannot hold every place.
//!
//! An address is an IPv4 address or an IPv6 /64 (what one host or one home line usually
//! gets); a prefix is an IPv4 /24 or an IPv6 /48 (what one site usually gets). IPv4 clients
//! seen through an IPv6 socket (`::ffff:a.b.c.d`) count as IPv4.
//!
//! The decision is made at accept, before a single byte is read, and a refused connection is
//! closed without an answer: anything more would cost the relay more than it costs the client.
//! An admitted connection holds a [`Slot`] until it ends; dropping the slot gives its places
//! back.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The three caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Connections over the whole relay.
    pub total: usize,
    /// Connections from one address (IPv4 address, IPv6 /64).
    pub per_address: usize,
    /// Connections from one prefix (IPv4 /24, IPv6 /48).
    pub per_prefix: usize,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The relay holds `max_connections` already.
    #[error("max_connections reached")]
    Full,
    /// The source address holds `max_connections_per_address` already.
    #[error("max_connections_per_address reached")]
    Address,
    /// The source prefix holds `max_connections_per_prefix` already.
    #[error("max_connections_per_prefix reached")]
    Prefix,
}

impl Refusal {
    /// Every refusal, for per-kind bookkeeping.
    pub const ALL: [Refusal; 3] = [Refusal::Full, Refusal::Address, Refusal::Prefix];

    /// Position in [`Refusal::ALL`].
    pub fn index(self) -> usize {
        match self {
            Refusal::Full => 0,
            Refusal::Address => 1,
            Refusal::Prefix => 2,
        }
    }
}

/// The address and prefix that `ip` counts under: (IPv4 address, /24) or (IPv6 /64, /48),
/// each as the network's first address.
pub fn buckets(ip: IpAddr) -> (IpAddr, IpAddr) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let prefix = Ipv4Addr::from_bits(v4.to_bits() & !0xff);
            (IpAddr::V4(v4), IpAddr::V4(prefix))
        }
        IpAddr::V6(v6) => {
            let bits = v6.to_bits();
            let net64 = Ipv6Addr::from_bits(bits & !(u128::MAX >> 64));
            let net48 = Ipv6Addr::from_bits(bits & !(u128::MAX >> 48));
            (IpAddr::V6(net64), IpAddr::V6(net48))
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
    per_prefix: HashMap<IpAddr, usize>,
}

/// Open connections, counted relay-wide, per address and per prefix.
#[derive(Debug)]
pub struct Admission {
    caps: Caps,
    counts: Mutex<Counts>,
}

impl Admission {
    /// An empty table with these caps.
    pub fn new(caps: Caps) -> Arc<Self> {
        Arc::new(Self {
            caps,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// The caps in force.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // Counts are updated in full under the lock, so a panic elsewhere cannot leave them
        // half-changed; keep serving rather than refuse everyone.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `ip`, or says which cap it would exceed.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let (address, prefix) = buckets(ip);
        let mut c = self.counts();
        if c.total >= self.caps.total {
            return Err(Refusal::Full);
        }
        if c.per_address.get(&address).copied().unwrap_or(0) >= self.caps.per_address {
            return Err(Refusal::Address);
        }
        if c.per_prefix.get(&prefix).copied().unwrap_or(0) >= self.caps.per_prefix {
            return Err(Refusal::Prefix);
        }
        c.total += 1;
        *c.per_address.entry(address).or_insert(0) += 1;
        *c.per_prefix.entry(prefix).or_insert(0) += 1;
        Ok(Slot {
            table: self.clone(),
            address,
            prefix,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.counts().total
    }

    fn release(&self, address: IpAddr, prefix: IpAddr) {
        let mut c = self.counts();
        c.total = c.total.saturating_sub(1);
        decrement(&mut c.per_address, address);
        decrement(&mut c.per_prefix, prefix);
    }
}

/// Counts down, forgetting the key at zero so the table only holds live sources.
fn decrement(map: &mut HashMap<IpAddr, usize>, key: IpAddr) {
    if let Some(n) = map.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&key);
        }
    }
}

/// One admitted connection's places; given back when dropped. Travels with the connection
/// (a joined agent's connection moves to the operator's task).
#[derive(Debug)]
pub struct Slot {
    table: Arc<Admission>,
    address: IpAddr,
    prefix: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.table.release(self.address, self.prefix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    const CAPS: Caps = Caps {
        total: 10,
        per_address: 2,
        per_prefix: 3,
    };

    #[test]
    fn buckets_are_address_and_prefix() {
        assert_eq!(buckets(ip("192.0.2.7")), (ip("192.0.2.7"), ip("192.0.2.0")));
        assert_eq!(
            buckets(ip("::ffff:192.0.2.7")),
            (ip("192.0.2.7"), ip("192.0.2.0"))
        );
        assert_eq!(
            buckets(ip("2001:db8:1:2:3:4:5:6")),
            (ip("2001:db8:1:2::"), ip("2001:db8:1::"))
        );
    }

    #[test]
    fn per_address_cap_then_per_prefix_cap() {
        let t = Admission::new(CAPS);
        let a1 = t.admit(ip("192.0.2.1")).unwrap();
        let _a2 = t.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(t.admit(ip("192.0.2.1")).unwrap_err(), Refusal::Address);
        let _b1 = t.admit(ip("192.0.2.2")).unwrap();
        // The /24 holds three now: a fresh address in it is refused, another /24 is not.
        assert_eq!(t.admit(ip("192.0.2.3")).unwrap_err(), Refusal::Prefix);
        let _c1 = t.admit(ip("192.0.3.1")).unwrap();
        // Ending a connection gives its places back.
        drop(a1);
        let _a3 = t.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(t.open(), 4);
    }

    #[test]
    fn ipv6_counts_per_64_and_48() {
        let t = Admission::new(CAPS);
        let _x = t.admit(ip("2001:db8:0:1::1")).unwrap();
        let _y = t.admit(ip("2001:db8:0:1::2")).unwrap();
        // Another address in the same /64 is the same host.
        assert_eq!(
            t.admit(ip("2001:db8:0:1::3")).unwrap_err(),
            Refusal::Address
        );
        let _z = t.admit(ip("2001:db8:0:2::1")).unwrap();
        // A fresh /64 in the same /48 is refused once the /48 is full.
        assert_eq!(t.admit(ip("2001:db8:0:3::1")).unwrap_err(), Refusal::Prefix);
        assert!(t.admit(ip("2001:db8:1::1")).is_ok());
    }

    #[test]
    fn total_cap_applies_first_and_table_empties() {
        let t = Admission::new(Caps { total: 2, ..CAPS });
        let a = t.admit(ip("10.0.0.1")).unwrap();
        let b = t.admit(ip("10.1.0.1")).unwrap();
        assert_eq!(t.admit(ip("10.2.0.1")).unwrap_err(), Refusal::Full);
        drop((a, b));
        assert_eq!(t.open(), 0);
        let c = t.counts();
        assert!(c.per_address.is_empty() && c.per_prefix.is_empty());
    }
}
