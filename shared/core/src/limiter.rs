//! Brute-force backoff: a few free failures, then delays that double up to a cap, forgotten
//! after a quiet period. Pure functions over a small record that the relay persists, so the
//! counters survive restarts and the arithmetic is tested without a clock.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Parameters of one limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffPolicy {
    /// Failures allowed before any delay.
    pub free_failures: u32,
    /// First delay, seconds; doubles with each further failure.
    pub base_delay_secs: u64,
    /// Longest delay, seconds.
    pub max_delay_secs: u64,
    /// A record with no failure for this long is forgotten.
    pub forget_after_secs: u64,
}

impl BackoffPolicy {
    /// Per source address (IPv4 address or IPv6 /64): 5 free, then 2 s doubling to 15 min,
    /// forgotten after an hour without failures.
    pub const PER_ADDRESS: BackoffPolicy = BackoffPolicy {
        free_failures: 5,
        base_delay_secs: 2,
        max_delay_secs: 15 * 60,
        forget_after_secs: 60 * 60,
    };
    /// Session codes per site (IPv4 /24, IPv6 /56): 20 free, then 2 s doubling to 30 min,
    /// forgotten after 6 hours without failures.
    pub const PER_SITE: BackoffPolicy = BackoffPolicy {
        free_failures: 20,
        base_delay_secs: 2,
        max_delay_secs: 30 * 60,
        forget_after_secs: 6 * 60 * 60,
    };
    /// Session codes per network (IPv4 /16, IPv6 /48): 100 free, then 2 s doubling to an
    /// hour, forgotten after a day without failures. The long memory is what makes a fresh
    /// /48 scarce for a guesser while the global counter is in delay (see
    /// [`crate::join_gate`]).
    pub const PER_NETWORK: BackoffPolicy = BackoffPolicy {
        free_failures: 100,
        base_delay_secs: 2,
        max_delay_secs: 60 * 60,
        forget_after_secs: 24 * 60 * 60,
    };
    /// Whole relay: 100 free, then 1 s doubling to 60 s, forgotten after 10 quiet minutes.
    /// For session codes it delays only prefixes that have failed before (see
    /// [`crate::join_gate`]), at most one of their tries a minute.
    pub const GLOBAL: BackoffPolicy = BackoffPolicy {
        free_failures: 100,
        base_delay_secs: 1,
        max_delay_secs: 60,
        forget_after_secs: 10 * 60,
    };

    /// Delay imposed after `failures` failures.
    pub fn delay_after(&self, failures: u32) -> u64 {
        if failures < self.free_failures.max(1) {
            return 0;
        }
        let exp = (failures - self.free_failures.max(1)).min(40);
        self.base_delay_secs
            .saturating_mul(1u64 << exp)
            .min(self.max_delay_secs)
    }

    fn is_stale(&self, rec: &FailureRecord, now: u64) -> bool {
        now.saturating_sub(rec.last_failure) >= self.forget_after_secs
    }

    /// Whether `rec` holds a failure this policy has not yet forgotten at `now`.
    pub fn remembers(&self, rec: Option<&FailureRecord>, now: u64) -> bool {
        rec.is_some_and(|r| r.failures > 0 && !self.is_stale(r, now))
    }

    /// Seconds to wait before another attempt is allowed, or `None` if allowed now.
    pub fn retry_after(&self, rec: Option<&FailureRecord>, now: u64) -> Option<u64> {
        let rec = rec?;
        if self.is_stale(rec, now) {
            return None;
        }
        let until = rec
            .last_failure
            .saturating_add(self.delay_after(rec.failures));
        (now < until).then(|| until - now)
    }

    /// The record after one more failure at `now`.
    pub fn record_failure(&self, rec: Option<&FailureRecord>, now: u64) -> FailureRecord {
        let failures = match rec {
            Some(r) if !self.is_stale(r, now) => r.failures.saturating_add(1),
            _ => 1,
        };
        FailureRecord {
            failures,
            last_failure: now,
        }
    }
}

/// A hard stop on top of a backoff: after `after_failures` failures the key is locked for
/// `duration_secs` from the last failure, whatever the backoff says. Attempts refused while
/// locked are not failures, so a lock ends on time; the next failure locks again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockout {
    /// Failures that lock the key.
    pub after_failures: u32,
    /// How long a lock lasts, seconds.
    pub duration_secs: u64,
}

impl Lockout {
    /// Logins: locked for 15 minutes after 10 failures.
    pub const LOGIN: Lockout = Lockout {
        after_failures: 10,
        duration_secs: 15 * 60,
    };

    /// Seconds the key stays locked, or `None`. `policy` decides when the record is forgotten.
    pub fn remaining(
        &self,
        policy: &BackoffPolicy,
        rec: Option<&FailureRecord>,
        now: u64,
    ) -> Option<u64> {
        let rec = rec?;
        if policy.is_stale(rec, now) || rec.failures < self.after_failures.max(1) {
            return None;
        }
        let until = rec.last_failure.saturating_add(self.duration_secs);
        (now < until).then(|| until - now)
    }
}

/// Failures counted for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// Failures since the record was last forgotten.
    pub failures: u32,
    /// Time of the last failure, Unix seconds.
    pub last_failure: u64,
}

/// The key under which a source address is counted: IPv4 addresses alone (IPv4-mapped IPv6
/// counts as IPv4), IPv6 by /64, since one host typically holds a whole /64.
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip6:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: BackoffPolicy = BackoffPolicy {
        free_failures: 3,
        base_delay_secs: 2,
        max_delay_secs: 30,
        forget_after_secs: 600,
    };

    #[test]
    fn delays_grow_then_cap() {
        let d: Vec<u64> = (0..9).map(|f| P.delay_after(f)).collect();
        assert_eq!(d, vec![0, 0, 0, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn failures_block_then_forget() {
        let mut rec = None;
        for t in 0..3 {
            assert_eq!(P.retry_after(rec.as_ref(), 100 + t), None);
            rec = Some(P.record_failure(rec.as_ref(), 100 + t));
        }
        // Third failure at t=102 imposes 2 s.
        assert_eq!(P.retry_after(rec.as_ref(), 102), Some(2));
        assert_eq!(P.retry_after(rec.as_ref(), 103), Some(1));
        assert_eq!(P.retry_after(rec.as_ref(), 104), None);
        rec = Some(P.record_failure(rec.as_ref(), 104));
        assert_eq!(P.retry_after(rec.as_ref(), 104), Some(4));
        // After the quiet period the record is forgotten.
        assert_eq!(P.retry_after(rec.as_ref(), 104 + 600), None);
        let fresh = P.record_failure(rec.as_ref(), 104 + 600);
        assert_eq!(fresh.failures, 1);
    }

    #[test]
    fn lockout_holds_for_its_duration_after_the_last_failure() {
        let lock = Lockout {
            after_failures: 4,
            duration_secs: 100,
        };
        let mut rec = None;
        for t in 0..3 {
            rec = Some(P.record_failure(rec.as_ref(), t));
        }
        assert_eq!(lock.remaining(&P, rec.as_ref(), 3), None, "three failures");
        rec = Some(P.record_failure(rec.as_ref(), 10));
        assert_eq!(lock.remaining(&P, rec.as_ref(), 10), Some(100));
        assert_eq!(lock.remaining(&P, rec.as_ref(), 60), Some(50));
        assert_eq!(lock.remaining(&P, rec.as_ref(), 110), None);
        // The next failure locks again at once.
        rec = Some(P.record_failure(rec.as_ref(), 120));
        assert_eq!(lock.remaining(&P, rec.as_ref(), 120), Some(100));
        // A forgotten record locks nothing.
        assert_eq!(lock.remaining(&P, rec.as_ref(), 120 + 600), None);
        assert_eq!(lock.remaining(&P, None, 0), None);
    }

    #[test]
    fn ipv6_groups_by_64_and_mapped_v4_is_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::from([0u8; 16]));
        let b: IpAddr = "2001:db8:1:2:ffff::9"
            .parse()
            .unwrap_or(IpAddr::from([0u8; 16]));
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0u8; 16]));
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7"
            .parse()
            .unwrap_or(IpAddr::from([0u8; 16]));
        assert_eq!(address_key(mapped), "ip:192.0.2.7");
    }
}
