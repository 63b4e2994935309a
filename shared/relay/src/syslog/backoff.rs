//! Reconnect pacing: 1 s after the first failure, doubling to 30 s, back to 1 s after a
//! batch is delivered. Pure: the caller sleeps.

use std::time::Duration;

/// First wait after a failure.
pub const FIRST: Duration = Duration::from_secs(1);
/// Longest wait.
pub const MAX: Duration = Duration::from_secs(30);

/// The wait before the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST }
    }
}

impl Backoff {
    /// The wait after one more failure (and doubles the one after it, up to [`MAX`]).
    pub fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX);
        wait
    }

    /// A success: the next failure waits [`FIRST`] again.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..7).map(|_| b.failed().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        b.reset();
        assert_eq!(b.failed(), FIRST);
    }
}
