//! Rate-limited logging for events a client can repeat at will (a refused connection): the
//! first one is logged, then at most one line per period, each saying how many went unlogged
//! since the last, so a flood of 5,000 refusals costs a handful of lines, not 5,000.
//!
//! The clock is passed in, so the rule is tested without waiting.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct State {
    last: Option<Instant>,
    unlogged: u64,
}

/// One event kind's log budget.
#[derive(Debug)]
pub struct LogThrottle {
    every: Duration,
    state: Mutex<State>,
}

impl LogThrottle {
    /// At most one line per `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            state: Mutex::new(State::default()),
        }
    }

    /// Counts one event at `now`. `Some(n)` means: log this one, and say that `n` more
    /// happened, unlogged, since the previous line; `None` means: stay quiet.
    pub fn hit(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let due = s
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.every);
        if due {
            s.last = Some(now);
            Some(std::mem::take(&mut s.unlogged))
        } else {
            s.unlogged = s.unlogged.saturating_add(1);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_is_logged_then_one_line_per_period_with_the_count() {
        let t = LogThrottle::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(t.hit(start), Some(0));
        let logged = (1..5000u64)
            .filter(|i| t.hit(start + Duration::from_millis(*i)).is_some())
            .count();
        assert_eq!(logged, 0);
        assert_eq!(t.hit(start + Duration::from_secs(10)), Some(4999));
        assert_eq!(t.hit(start + Duration::from_secs(11)), None);
        assert_eq!(t.hit(start + Duration::from_secs(21)), Some(1));
    }
}
