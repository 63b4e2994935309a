//! How many refused connections the kiosk's log records: at most [`PER_WINDOW`] entries per
//! [`WINDOW`] of seconds. The rest are counted, and the count goes into the next recorded
//! refusal (or the stop entry), so a flood on the LAN costs a bounded number of lines (at most
//! 14,400 a day) and still leaves a trace of its size. Pure: the caller passes `now`.

/// Length of a window, seconds.
pub const WINDOW: u64 = 60;
/// Refusals recorded per window.
pub const PER_WINDOW: u32 = 10;

/// The rate limit on refusal entries.
#[derive(Debug, Default)]
pub struct RefusalGate {
    window_start: u64,
    recorded: u32,
    suppressed: u64,
}

impl RefusalGate {
    /// A refusal at `now`: `Some(n)` to record it, with `n` refusals left out before it;
    /// `None` to leave it out (counted).
    pub fn admit(&mut self, now: u64) -> Option<u64> {
        if now >= self.window_start.saturating_add(WINDOW) || now < self.window_start {
            self.window_start = now;
            self.recorded = 0;
        }
        if self.recorded >= PER_WINDOW {
            self.suppressed = self.suppressed.saturating_add(1);
            return None;
        }
        self.recorded += 1;
        Some(std::mem::take(&mut self.suppressed))
    }

    /// Refusals left out since the last one recorded, taken (for the stop entry).
    pub fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_counted_not_written() {
        let mut g = RefusalGate::default();
        let t = 1_000;
        for _ in 0..PER_WINDOW {
            assert_eq!(g.admit(t), Some(0));
        }
        for _ in 0..500 {
            assert_eq!(g.admit(t + 30), None);
        }
        // The next window records again and says how many were left out.
        assert_eq!(g.admit(t + WINDOW), Some(500));
        assert_eq!(g.admit(t + WINDOW), Some(0));
        for _ in 0..PER_WINDOW {
            g.admit(t + WINDOW + 1);
        }
        assert_eq!(g.take_suppressed(), 2);
        assert_eq!(g.take_suppressed(), 0);
        // A clock that went back starts a new window rather than silencing the log.
        assert_eq!(g.admit(5), Some(0));
    }
}
