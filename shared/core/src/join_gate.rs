//! Who may try a session code: nested per-prefix counters and a relay-wide counter that slows
//! suspect prefixes without ever refusing a clean one. Pure functions over the records the
//! relay loads under its database lock; the relay stores the keys named here.
//!
//! A join from an address is judged at three levels, each with its own backoff:
//!
//! | level | IPv4 | IPv6 |
//! | --- | --- | --- |
//! | [`Level::Address`] | the address | its /64 |
//! | [`Level::Site`] | its /24 | its /56 |
//! | [`Level::Network`] | its /16 | its /48 |
//!
//! Any level in delay refuses the attempt. The global counter refuses only *suspect* attempts:
//! those from a prefix with a failure still remembered at any level. An attempt from a clean
//! prefix always has its code checked, so an attacker cannot keep customers out by failing
//! from prefixes of their own; a wrong guess from it counts at every level, which makes that
//! prefix suspect in turn, so each fresh prefix buys at most one guess while the global
//! counter is in delay.

use crate::limiter::{address_key, BackoffPolicy, FailureRecord};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One level of nesting of the per-prefix limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// An IPv4 address, or an IPv6 /64 (one host typically holds a whole /64).
    Address,
    /// An IPv4 /24 or an IPv6 /56 (a typical end-site allocation).
    Site,
    /// An IPv4 /16 or an IPv6 /48 (a typical organisation's allocation).
    Network,
}

impl Level {
    /// Every level, narrowest first.
    pub const ALL: [Level; 3] = [Level::Address, Level::Site, Level::Network];
}

/// The key under which `ip` is counted at `level`. IPv4-mapped IPv6 counts as IPv4; the
/// address level is [`address_key`], so counters stored before prefixes existed still apply.
pub fn prefix_key(ip: IpAddr, level: Level) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, level) {
        (_, Level::Address) => address_key(ip),
        (IpAddr::V4(v4), Level::Site) => v4_prefix(v4, 24),
        (IpAddr::V4(v4), Level::Network) => v4_prefix(v4, 16),
        (IpAddr::V6(v6), Level::Site) => v6_prefix(v6, 56),
        (IpAddr::V6(v6), Level::Network) => v6_prefix(v6, 48),
    }
}

fn v4_prefix(ip: Ipv4Addr, len: u32) -> String {
    let mask = u32::MAX << (32 - len);
    format!("ip4:{}/{len}", Ipv4Addr::from(u32::from(ip) & mask))
}

fn v6_prefix(ip: Ipv6Addr, len: u32) -> String {
    let mask = u128::MAX << (128 - len);
    let s = Ipv6Addr::from(u128::from(ip) & mask).segments();
    // Same spelling as the /64 address key: the first four groups, then `::`.
    format!("ip6:{:x}:{:x}:{:x}:{:x}::/{len}", s[0], s[1], s[2], s[3])
}

/// A counter's rule and its stored record, as loaded for one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// Backoff rule of this counter.
    pub policy: BackoffPolicy,
    /// Its stored record, if any.
    pub record: Option<FailureRecord>,
}

impl Counter {
    fn retry_after(&self, now: u64) -> Option<u64> {
        self.policy.retry_after(self.record.as_ref(), now)
    }

    fn remembers_a_failure(&self, now: u64) -> bool {
        self.policy.remembers(self.record.as_ref(), now)
    }
}

/// What to do with one join attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Check the code; a wrong one is recorded at every level and globally.
    Check,
    /// Refuse without checking the code; retry after this many seconds.
    Wait(u64),
}

/// Decides an attempt from the counters of its prefixes (`levels`, any order) and the
/// relay-wide counter. The relay-wide delay applies only when some level remembers a failure.
pub fn decide(levels: &[Counter], global: &Counter, now: u64) -> Gate {
    if let Some(wait) = levels.iter().filter_map(|c| c.retry_after(now)).max() {
        return Gate::Wait(wait);
    }
    let suspect = levels.iter().any(|c| c.remembers_a_failure(now));
    match global.retry_after(now) {
        Some(wait) if suspect => Gate::Wait(wait),
        _ => Gate::Check,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    fn keys(s: &str) -> Vec<String> {
        Level::ALL.iter().map(|l| prefix_key(ip(s), *l)).collect()
    }

    #[test]
    fn ipv4_nests_address_24_16() {
        assert_eq!(
            keys("192.0.2.77"),
            ["ip:192.0.2.77", "ip4:192.0.2.0/24", "ip4:192.0.0.0/16"]
        );
        assert_eq!(keys("::ffff:192.0.2.77"), keys("192.0.2.77"));
    }

    #[test]
    fn ipv6_nests_64_56_48() {
        assert_eq!(
            keys("2001:db8:aa:bbcc:1::9"),
            [
                "ip6:2001:db8:aa:bbcc::/64",
                "ip6:2001:db8:aa:bb00::/56",
                "ip6:2001:db8:aa:0::/48"
            ]
        );
        // Two /64s of one /56 share the site and network keys only.
        let (a, b) = (keys("2001:db8:aa:bb01::1"), keys("2001:db8:aa:bbff::1"));
        assert_ne!(a[0], b[0]);
        assert_eq!(a[1..], b[1..]);
        // Another /56 of the same /48 shares only the network key.
        let c = keys("2001:db8:aa:cc00::1");
        assert_ne!(a[1], c[1]);
        assert_eq!(a[2], c[2]);
        // Another /48 shares nothing.
        let d = keys("2001:db8:ab::1");
        assert!(a.iter().zip(&d).all(|(x, y)| x != y));
    }

    const LEVEL: BackoffPolicy = BackoffPolicy {
        free_failures: 3,
        base_delay_secs: 10,
        max_delay_secs: 100,
        forget_after_secs: 1000,
    };
    const GLOBAL: BackoffPolicy = BackoffPolicy {
        free_failures: 2,
        base_delay_secs: 60,
        max_delay_secs: 60,
        forget_after_secs: 600,
    };

    fn counter(policy: BackoffPolicy, failures: u32, last_failure: u64) -> Counter {
        Counter {
            policy,
            record: (failures > 0).then_some(FailureRecord {
                failures,
                last_failure,
            }),
        }
    }

    #[test]
    fn a_level_in_delay_refuses() {
        let g = counter(GLOBAL, 0, 0);
        let clean = counter(LEVEL, 0, 0);
        let tripped = counter(LEVEL, 3, 100);
        assert_eq!(decide(&[clean, clean, tripped], &g, 105), Gate::Wait(5));
        assert_eq!(decide(&[clean, clean, tripped], &g, 110), Gate::Check);
        assert_eq!(decide(&[clean; 3], &g, 105), Gate::Check);
    }

    #[test]
    fn the_global_delay_refuses_suspect_prefixes_only() {
        let g = counter(GLOBAL, 500, 1000);
        let clean = counter(LEVEL, 0, 0);
        // One remembered failure at any level makes the attempt suspect.
        let failed_once = counter(LEVEL, 1, 900);
        for level in 0..3 {
            let mut levels = [clean; 3];
            levels[level] = failed_once;
            assert_eq!(decide(&levels, &g, 1010), Gate::Wait(50), "level {level}");
        }
        // A clean prefix is checked however tripped the global counter is.
        assert_eq!(decide(&[clean; 3], &g, 1010), Gate::Check);
        // A failure the level has forgotten does not count.
        let forgotten = counter(LEVEL, 1, 0);
        assert_eq!(decide(&[forgotten, clean, clean], &g, 1010), Gate::Check);
        // Once the global delay has passed, a suspect prefix may try again.
        assert_eq!(decide(&[failed_once, clean, clean], &g, 1060), Gate::Check);
    }

    #[test]
    fn each_fresh_prefix_buys_one_guess_while_the_global_delay_runs() {
        let mut g = counter(GLOBAL, 0, 0);
        let mut guesses = 0;
        // A thousand attempts from one /48 within a minute: nested failures accumulate.
        let mut levels = [counter(LEVEL, 0, 0); 3];
        for i in 0..1000 {
            let now = 10_000 + i / 20;
            // Prime the global counter, as other prefixes would.
            g.record = Some(GLOBAL.record_failure(g.record.as_ref(), now));
            if decide(&levels, &g, now) == Gate::Check {
                guesses += 1;
                for c in &mut levels {
                    c.record = Some(c.policy.record_failure(c.record.as_ref(), now));
                }
            }
        }
        assert_eq!(guesses, 1);
    }
}
