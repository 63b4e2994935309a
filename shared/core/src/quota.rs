//! Fixed-window quotas: at most `per_window` uses in `window_secs`, counted from the first use
//! of the window. Unlike [`crate::limiter`], which counts failures, a quota counts things that
//! succeeded but cost the relay something it must not spend without bound (an RSA signature
//! by the issuing key for each certificate). Pure functions over a small record that the
//! relay persists, tested without a clock.

use serde::{Deserialize, Serialize};

/// How many uses a window allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Uses allowed per window.
    pub per_window: u32,
    /// Length of a window, seconds.
    pub window_secs: u64,
}

/// Uses counted in the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRecord {
    /// Uses since the window began.
    pub used: u32,
    /// When the window began, Unix seconds.
    pub window_start: u64,
}

impl Quota {
    /// Operator certificates per account: 20 a minute.
    pub const CERTIFICATES: Quota = Quota {
        per_window: 20,
        window_secs: 60,
    };

    /// Whether `rec`'s window is over at `now` (a window that starts in the future, after the
    /// clock went back, is over too, so a clock change cannot lock a key for long).
    fn is_over(&self, rec: &QuotaRecord, now: u64) -> bool {
        now < rec.window_start || now.saturating_sub(rec.window_start) >= self.window_secs
    }

    /// Seconds until one more use is allowed, or `None` if allowed now. A quota of zero
    /// per window allows nothing, for a window at a time.
    pub fn retry_after(&self, rec: Option<&QuotaRecord>, now: u64) -> Option<u64> {
        let used = match rec {
            Some(r) if !self.is_over(r, now) => r.used,
            _ => 0,
        };
        if used < self.per_window {
            return None;
        }
        let start = rec.map_or(now, |r| r.window_start);
        let until = start.saturating_add(self.window_secs);
        Some(until.saturating_sub(now).max(1))
    }

    /// The record after one more use at `now` (a new window when the old one is over).
    pub fn record_use(&self, rec: Option<&QuotaRecord>, now: u64) -> QuotaRecord {
        match rec {
            Some(r) if !self.is_over(r, now) => QuotaRecord {
                used: r.used.saturating_add(1),
                window_start: r.window_start,
            },
            _ => QuotaRecord {
                used: 1,
                window_start: now,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quota = Quota {
        per_window: 3,
        window_secs: 60,
    };

    #[test]
    fn allows_the_quota_then_waits_for_the_window_to_end() {
        let mut rec = None;
        for t in [100, 110, 120] {
            assert_eq!(Q.retry_after(rec.as_ref(), t), None, "use at {t}");
            rec = Some(Q.record_use(rec.as_ref(), t));
        }
        // The window began at 100: the fourth use waits until 160.
        assert_eq!(Q.retry_after(rec.as_ref(), 120), Some(40));
        assert_eq!(Q.retry_after(rec.as_ref(), 159), Some(1));
        assert_eq!(Q.retry_after(rec.as_ref(), 160), None);
        let next = Q.record_use(rec.as_ref(), 160);
        assert_eq!(
            next,
            QuotaRecord {
                used: 1,
                window_start: 160
            }
        );
    }

    #[test]
    fn zero_allows_nothing_and_clock_going_back_starts_a_new_window() {
        let none = Quota {
            per_window: 0,
            window_secs: 60,
        };
        assert_eq!(none.retry_after(None, 5), Some(60));
        let full = QuotaRecord {
            used: 3,
            window_start: 1000,
        };
        assert_eq!(Q.retry_after(Some(&full), 1010), Some(50));
        assert_eq!(Q.retry_after(Some(&full), 900), None);
        assert_eq!(Q.record_use(Some(&full), 900).window_start, 900);
        // Counts saturate rather than wrap.
        let max = QuotaRecord {
            used: u32::MAX,
            window_start: 0,
        };
        assert_eq!(Q.record_use(Some(&max), 1).used, u32::MAX);
    }
}
