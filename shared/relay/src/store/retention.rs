//! How long the relay keeps what it stores: the policy's `[retention]` section ([`Retention`])
//! and the cut it gives each kind of record at a given `now` ([`Cuts`]), as pure functions.
//! [`Pass`] applies the cuts to the database in small batches; the running relay runs one pass
//! at start and then every hour ([`crate::net::server`]).
//!
//! Days are whole days of 86,400 seconds. 0 keeps a kind forever, except brute-force counters,
//! whose records never outlive what the login limits still need (see [`Cuts::at`]).

mod pass;
mod tables;

pub use pass::{run, Pass, Report};

use serde::Deserialize;

/// Seconds in a retention day.
pub const DAY_SECS: u64 = 86_400;
/// The longest retention a policy may set, days (100 years).
pub const MAX_DAYS: u64 = 36_500;

/// `[retention]` in the policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Audit log entries, days (0: forever).
    pub audit_days: u64,
    /// Records of ended sessions, days after their end (0: forever).
    pub sessions_days: u64,
    /// Brute-force counters, days after their last failure (1 or more).
    pub failures_days: u64,
    /// Addresses an account logged in from, days after the last login from each (0: forever).
    pub known_addresses_days: u64,
    /// Issued certificates, days after they left the revocation list (0: forever).
    pub certificates_days: u64,
    /// Session recordings (ciphertext and index), days after their completion or last upload
    /// (0: forever).
    pub recordings_days: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            audit_days: 365,
            sessions_days: 365,
            failures_days: 1,
            known_addresses_days: 90,
            certificates_days: 30,
            recordings_days: 90,
        }
    }
}

impl Retention {
    /// The first setting that makes no sense and why, if any.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let settings = [
            ("retention.audit_days", self.audit_days, 0),
            ("retention.sessions_days", self.sessions_days, 0),
            ("retention.failures_days", self.failures_days, 1),
            (
                "retention.known_addresses_days",
                self.known_addresses_days,
                0,
            ),
            ("retention.certificates_days", self.certificates_days, 0),
            ("retention.recordings_days", self.recordings_days, 0),
        ];
        settings.into_iter().find_map(|(key, days, min)| {
            (days < min || days > MAX_DAYS).then(|| {
                let range = if min == 0 {
                    format!("must be 0 (keep forever) or 1 to {MAX_DAYS} days")
                } else {
                    format!("must be {min} to {MAX_DAYS} days")
                };
                (key, range)
            })
        })
    }
}

/// What one pass deletes, each as "older than this Unix time"; `None` keeps that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cuts {
    /// Audit entries written before this (pruned up to the newest signed checkpoint before
    /// it).
    pub audit: Option<u64>,
    /// Sessions that ended before this.
    pub sessions: Option<u64>,
    /// Brute-force records whose last failure (or quota window start) is before this.
    pub failures: u64,
    /// Known addresses last logged in from before this.
    pub known_addresses: Option<u64>,
    /// Certificates whose validity ended before this.
    pub certificates: Option<u64>,
    /// Recordings completed (or, unfinished, last uploaded to) before this.
    pub recordings: Option<u64>,
}

fn before(now: u64, days: u64) -> Option<u64> {
    (days > 0).then(|| now.saturating_sub(days.saturating_mul(DAY_SECS)))
}

impl Cuts {
    /// The cuts of `r` at `now`. `longest_forget_secs` is the longest time a brute-force
    /// record still counts ([`crate::config::Config::longest_forget_secs`]): counters are
    /// never deleted sooner, however short `failures_days` is, so a retention setting cannot
    /// weaken the login limits. Certificates are kept `certificates_days` after they left the
    /// revocation list (their end plus [`crate::authority::certs::LIST_GRACE_SECS`]), so a revoked
    /// certificate is never forgotten while a client could still be shown it.
    pub fn at(r: &Retention, now: u64, longest_forget_secs: u64) -> Self {
        let failures_secs = r
            .failures_days
            .max(1)
            .saturating_mul(DAY_SECS)
            .max(longest_forget_secs);
        Self {
            audit: before(now, r.audit_days),
            sessions: before(now, r.sessions_days),
            failures: now.saturating_sub(failures_secs),
            known_addresses: before(now, r.known_addresses_days),
            certificates: before(now, r.certificates_days)
                .map(|t| t.saturating_sub(crate::authority::certs::LIST_GRACE_SECS)),
            recordings: before(now, r.recordings_days),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn defaults_cut_each_kind_at_its_age() {
        let c = Cuts::at(&Retention::default(), NOW, 3600);
        assert_eq!(c.audit, Some(NOW - 365 * DAY_SECS));
        assert_eq!(c.sessions, Some(NOW - 365 * DAY_SECS));
        assert_eq!(c.failures, NOW - DAY_SECS);
        assert_eq!(c.known_addresses, Some(NOW - 90 * DAY_SECS));
        assert_eq!(
            c.certificates,
            Some(NOW - 30 * DAY_SECS - crate::authority::certs::LIST_GRACE_SECS)
        );
        assert_eq!(c.recordings, Some(NOW - 90 * DAY_SECS));
    }

    #[test]
    fn zero_keeps_forever_except_counters() {
        let r = Retention {
            audit_days: 0,
            sessions_days: 0,
            failures_days: 0,
            known_addresses_days: 0,
            certificates_days: 0,
            recordings_days: 0,
        };
        let c = Cuts::at(&r, NOW, 0);
        assert_eq!(
            (
                c.audit,
                c.sessions,
                c.known_addresses,
                c.certificates,
                c.recordings
            ),
            (None, None, None, None, None)
        );
        // Refused by the policy anyway; the cut still keeps a day.
        assert_eq!(c.failures, NOW - DAY_SECS);
        assert_eq!(r.problem().map(|p| p.0), Some("retention.failures_days"));
    }

    #[test]
    fn counters_outlive_the_longest_forget_window() {
        let r = Retention::default();
        assert_eq!(Cuts::at(&r, NOW, 7 * DAY_SECS).failures, NOW - 7 * DAY_SECS);
        let long = Retention {
            failures_days: 30,
            ..r
        };
        assert_eq!(
            Cuts::at(&long, NOW, 7 * DAY_SECS).failures,
            NOW - 30 * DAY_SECS
        );
    }

    #[test]
    fn early_clocks_and_huge_values_do_not_wrap() {
        let r = Retention {
            audit_days: MAX_DAYS,
            ..Retention::default()
        };
        let c = Cuts::at(&r, 5, u64::MAX);
        assert_eq!((c.audit, c.failures, c.certificates), (Some(0), 0, Some(0)));
        let c = Cuts::at(&Retention::default(), NOW, 0);
        assert!(c.audit.unwrap() < NOW && c.failures < NOW);
    }

    #[test]
    fn settings_out_of_range_name_their_key() {
        assert_eq!(Retention::default().problem(), None);
        let too_long = Retention {
            sessions_days: MAX_DAYS + 1,
            ..Retention::default()
        };
        assert_eq!(
            too_long.problem().map(|p| p.0),
            Some("retention.sessions_days")
        );
    }
}
