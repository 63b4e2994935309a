//! Entries written to the collector but not yet counted as delivered. Pure: the caller gives
//! `now`.
//!
//! A write that succeeds only means the bytes reached the local socket. A collector that
//! refuses the relay (a TLS 1.3 server rejecting the client certificate after the relay's side
//! of the handshake is done) or dies just after a write closes the connection a moment later.
//! So entries count as delivered, and the cursor moves, only once the connection has stayed
//! open for [`GRACE`] after they were written; if it closes first they are sent again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a connection must stay open after a write for the entries to count as delivered.
pub const GRACE: Duration = Duration::from_secs(2);

/// Batches written on the current connection, oldest first, with when they were written.
#[derive(Debug, Default)]
pub struct InFlight {
    written: VecDeque<(u64, Instant)>,
}

impl InFlight {
    /// A batch up to `id` was written and flushed at `now`.
    pub fn written(&mut self, id: u64, now: Instant) {
        self.written.push_back((id, now));
    }

    /// The last id written, if any is unconfirmed (reading resumes after it).
    pub fn last(&self) -> Option<u64> {
        self.written.back().map(|&(id, _)| id)
    }

    /// With the connection still open at `now`: the highest id written at least [`GRACE`]
    /// ago, now delivered (and forgotten here).
    pub fn confirm(&mut self, now: Instant) -> Option<u64> {
        let mut confirmed = None;
        while let Some(&(id, at)) = self.written.front() {
            if now.saturating_duration_since(at) < GRACE {
                break;
            }
            confirmed = Some(id);
            self.written.pop_front();
        }
        confirmed
    }

    /// When the oldest unconfirmed batch can be confirmed.
    pub fn deadline(&self) -> Option<Instant> {
        self.written.front().map(|&(_, at)| at + GRACE)
    }

    /// The connection is gone: everything unconfirmed will be sent again. Returns whether
    /// anything was unconfirmed.
    pub fn lost(&mut self) -> bool {
        let any = !self.written.is_empty();
        self.written.clear();
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirms_only_after_the_grace_and_in_order() {
        let t0 = Instant::now();
        let mut f = InFlight::default();
        assert_eq!(f.confirm(t0), None);
        f.written(10, t0);
        f.written(20, t0 + Duration::from_secs(1));
        assert_eq!(f.last(), Some(20));
        assert_eq!(f.deadline(), Some(t0 + GRACE));
        assert_eq!(f.confirm(t0 + Duration::from_millis(1999)), None);
        assert_eq!(f.confirm(t0 + GRACE), Some(10));
        assert_eq!(f.last(), Some(20));
        assert_eq!(f.confirm(t0 + Duration::from_secs(10)), Some(20));
        assert_eq!((f.last(), f.deadline()), (None, None));
    }

    #[test]
    fn a_lost_connection_forgets_the_unconfirmed() {
        let t0 = Instant::now();
        let mut f = InFlight::default();
        assert!(!f.lost());
        f.written(5, t0);
        assert!(f.lost());
        assert_eq!(f.last(), None);
        assert_eq!(f.confirm(t0 + Duration::from_secs(60)), None);
    }
}
