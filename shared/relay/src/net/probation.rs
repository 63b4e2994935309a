//! How long, and how often refused, a connection that has not logged in is tolerated.
//!
//! After the channel handshake a connection must log in (operator) or join (agent) within the
//! login deadline, counted from the end of the handshake, not per request; and it is closed
//! at its [`MAX_REFUSALS`]th refused request (failed login, rate limit, a request its state
//! does not allow). Together with the handshake deadline this bounds what an anonymous client
//! can hold: one slot for a few tens of seconds. A logged-in operator is judged by the idle
//! timeout instead, and one waiting for a customer by the code's lifetime.
//!
//! Decided without I/O over an explicit `now`.

use std::time::{Duration, Instant};

/// Refused requests after which a connection that has not logged in is closed (the last
/// refusal's answer is still sent).
pub const MAX_REFUSALS: u32 = 3;

/// What to do after a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRefusal {
    /// Answer and keep reading.
    Continue,
    /// Answer, then close.
    Close,
}

/// The rules for one connection.
#[derive(Debug, Clone)]
pub struct Probation {
    login_by: Instant,
    idle: Duration,
    refusals: u32,
}

impl Probation {
    /// A connection whose handshake ended at `now`: it must log in or join within
    /// `login_timeout`; once logged in, each request must come within `idle`.
    pub fn new(now: Instant, login_timeout: Duration, idle: Duration) -> Self {
        Self {
            login_by: now + login_timeout,
            idle,
            refusals: 0,
        }
    }

    /// How long to wait for the next request at `now`; `None` when the connection is out of
    /// time and must be closed.
    pub fn wait(&self, now: Instant, logged_in: bool) -> Option<Duration> {
        if logged_in {
            return Some(self.idle);
        }
        let left = self.login_by.saturating_duration_since(now).min(self.idle);
        (!left.is_zero()).then_some(left)
    }

    /// Counts one refused request.
    pub fn refused(&mut self) -> AfterRefusal {
        self.refusals = self.refusals.saturating_add(1);
        if self.refusals >= MAX_REFUSALS {
            AfterRefusal::Close
        } else {
            AfterRefusal::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGIN: Duration = Duration::from_secs(30);
    const IDLE: Duration = Duration::from_secs(300);

    #[test]
    fn deadline_counts_from_the_handshake_not_per_request() {
        let start = Instant::now();
        let p = Probation::new(start, LOGIN, IDLE);
        assert_eq!(p.wait(start, false), Some(LOGIN));
        let later = start + Duration::from_secs(20);
        assert_eq!(p.wait(later, false), Some(Duration::from_secs(10)));
        assert_eq!(p.wait(start + LOGIN, false), None);
        assert_eq!(p.wait(start + Duration::from_secs(99), false), None);
    }

    #[test]
    fn logged_in_connections_get_the_idle_timeout() {
        let start = Instant::now();
        let p = Probation::new(start, LOGIN, IDLE);
        assert_eq!(p.wait(start + Duration::from_secs(99), true), Some(IDLE));
    }

    #[test]
    fn shorter_idle_timeout_also_bounds_an_anonymous_wait() {
        let start = Instant::now();
        let idle = Duration::from_secs(5);
        let p = Probation::new(start, LOGIN, idle);
        assert_eq!(p.wait(start, false), Some(idle));
    }

    #[test]
    fn closed_at_the_third_refusal() {
        let mut p = Probation::new(Instant::now(), LOGIN, IDLE);
        assert_eq!(p.refused(), AfterRefusal::Continue);
        assert_eq!(p.refused(), AfterRefusal::Continue);
        assert_eq!(p.refused(), AfterRefusal::Close);
        assert_eq!(p.refused(), AfterRefusal::Close);
    }
}
