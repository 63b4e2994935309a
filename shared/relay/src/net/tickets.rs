//! Paired sessions that a side may come back to after its connection broke: their current
//! resume tokens and the way to the session's task.
//!
//! Each pairing (the first, and every resumption) issues one fresh random token per side, sent
//! to that side alone in its `Paired` message; the tokens of the pairing before die then, so a
//! token can bring its side back at most once. Until the session is paired again a side may
//! present its token more than once (a reconnection that broke while waiting for the other
//! side is tried again); the newest connection wins. Tokens are compared in constant time. An
//! entry lives as long as its session's task: it is removed before the task closes anything,
//! so that a late `Resume` finds nothing and is told the session ended.
//!
//! What travels to the session's task (a connection) is opaque here, which keeps this
//! testable without sockets.

use rand_core::RngCore;
use sightline_core::relay_proto::{ResumeToken, SessionId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;

/// Which side of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The operator's viewer.
    Operator,
    /// The customer's agent.
    Agent,
}

impl Side {
    /// Its name in logs.
    pub fn name(self) -> &'static str {
        match self {
            Side::Operator => "operator",
            Side::Agent => "agent",
        }
    }
}

/// A side that came back, on its way to the session's task.
#[derive(Debug)]
pub struct Arrival<T> {
    /// Who.
    pub side: Side,
    /// Its new connection.
    pub conn: T,
}

/// The tokens of one pairing: (operator's, agent's).
pub type Tokens = (ResumeToken, ResumeToken);

/// The token presented is not valid for any running session (unknown session, wrong or old
/// token, or the session is over). Deliberately one case, except that a side presenting its
/// last token of a session the relay ended is told why.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("session ended")]
pub struct SessionEnded {
    /// Why the relay ended the session, for one of its own sides only.
    pub reason: Option<Arc<str>>,
}

#[derive(Debug)]
struct Entry<T> {
    tokens: Tokens,
    handoff: mpsc::Sender<Arrival<T>>,
}

/// How long a session whose connection broke waits for both sides to come back.
pub const RESUME_WINDOW: Duration = Duration::from_secs(30);

/// Resumable sessions by id.
#[derive(Debug)]
pub struct Tickets<T> {
    entries: Mutex<HashMap<SessionId, Entry<T>>>,
    /// Sessions the relay ended: their last tokens and why.
    ended: Mutex<HashMap<SessionId, (Tokens, Arc<str>)>>,
    window_ms: AtomicU64,
}

impl<T> Default for Tickets<T> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ended: Mutex::new(HashMap::new()),
            window_ms: AtomicU64::new(RESUME_WINDOW.as_millis() as u64),
        }
    }
}

impl<T> Tickets<T> {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SessionId, Entry<T>>> {
        // Every operation is one insert, lookup or remove: a poisoned map is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Issues fresh tokens for a pairing of `session_id` (the earlier ones die); arrivals go to
    /// `handoff`.
    pub fn issue(
        &self,
        session_id: SessionId,
        handoff: mpsc::Sender<Arrival<T>>,
        rng: &mut impl RngCore,
    ) -> Tokens {
        let mut operator = [0u8; 32];
        let mut agent = [0u8; 32];
        rng.fill_bytes(&mut operator);
        rng.fill_bytes(&mut agent);
        let tokens = (operator, agent);
        self.lock().insert(session_id, Entry { tokens, handoff });
        tokens
    }

    /// Finds whose `token` this is in `session_id`; returns the side and the way to the
    /// session's task. Both tokens are compared, each in constant time.
    pub fn claim(
        &self,
        session_id: &SessionId,
        token: &ResumeToken,
    ) -> Result<(Side, mpsc::Sender<Arrival<T>>), SessionEnded> {
        let map = self.lock();
        let Some(entry) = map.get(session_id) else {
            drop(map);
            let ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
            let reason = ended
                .get(session_id)
                .filter(|(tokens, _)| side_of(tokens, token).is_some())
                .map(|(_, reason)| reason.clone());
            return Err(SessionEnded { reason });
        };
        let side = side_of(&entry.tokens, token).ok_or_else(SessionEnded::default)?;
        Ok((side, entry.handoff.clone()))
    }

    /// Forgets `session_id`: its tokens die.
    pub fn remove(&self, session_id: &SessionId) {
        self.lock().remove(session_id);
    }

    /// The relay ended `session_id` for `reason`: its tokens die, but a side that presents
    /// its last one is told the reason, until [`Tickets::forget`].
    pub fn end(&self, session_id: &SessionId, reason: &str) {
        if let Some(entry) = self.lock().remove(session_id) {
            self.ended
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(*session_id, (entry.tokens, Arc::from(reason)));
        }
    }

    /// Forgets why the relay ended `session_id`.
    pub fn forget(&self, session_id: &SessionId) {
        self.ended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session_id);
    }

    /// How long a session parked from now on waits ([`RESUME_WINDOW`] unless changed).
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms.load(Ordering::Relaxed))
    }

    /// Changes the window for sessions parked from now on. The clients wait
    /// [`RESUME_WINDOW`] whatever the relay does; tests shorten it to see expiry quickly.
    pub fn set_window(&self, window: Duration) {
        let ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        self.window_ms.store(ms, Ordering::Relaxed);
    }

    /// Number of sessions that may be resumed (running or parked).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whose of `tokens` `token` is; both compared, each in constant time.
fn side_of(tokens: &Tokens, token: &ResumeToken) -> Option<Side> {
    let operator = tokens.0.ct_eq(token);
    let agent = tokens.1.ct_eq(token);
    if bool::from(operator) {
        Some(Side::Operator)
    } else if bool::from(agent) {
        Some(Side::Agent)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    const SID: SessionId = [3; 16];

    #[test]
    fn each_side_is_recognised_by_its_own_token_and_nothing_else() {
        let t = Tickets::<u8>::new();
        let (tx, _rx) = mpsc::channel(1);
        let (op, ag) = t.issue(SID, tx, &mut OsRng);
        assert_ne!(op, ag);
        assert_eq!(t.claim(&SID, &op).map(|c| c.0), Ok(Side::Operator));
        assert_eq!(t.claim(&SID, &ag).map(|c| c.0), Ok(Side::Agent));
        assert_eq!(
            t.claim(&SID, &[0; 32]).map(|c| c.0),
            Err(SessionEnded::default())
        );
        assert_eq!(
            t.claim(&[4; 16], &op).map(|c| c.0),
            Err(SessionEnded::default())
        );
    }

    #[test]
    fn a_new_pairing_kills_the_old_tokens_and_removal_kills_all() {
        let t = Tickets::<u8>::new();
        let (tx, _rx) = mpsc::channel(1);
        let old = t.issue(SID, tx.clone(), &mut OsRng);
        let new = t.issue(SID, tx, &mut OsRng);
        assert_eq!(t.len(), 1);
        assert_eq!(
            t.claim(&SID, &old.0).map(|c| c.0),
            Err(SessionEnded::default())
        );
        assert_eq!(
            t.claim(&SID, &old.1).map(|c| c.0),
            Err(SessionEnded::default())
        );
        assert_eq!(t.claim(&SID, &new.1).map(|c| c.0), Ok(Side::Agent));
        t.remove(&SID);
        assert!(t.is_empty());
        assert_eq!(
            t.claim(&SID, &new.0).map(|c| c.0),
            Err(SessionEnded::default())
        );
    }

    #[test]
    fn a_session_the_relay_ended_tells_its_own_sides_why() {
        let t = Tickets::<u8>::new();
        let (tx, _rx) = mpsc::channel(1);
        let old = t.issue(SID, tx.clone(), &mut OsRng);
        let (op, ag) = t.issue(SID, tx, &mut OsRng);
        t.end(&SID, "the recording stopped");
        assert!(t.is_empty(), "nothing to resume");
        let why = |token: &ResumeToken| t.claim(&SID, token).map(|c| c.0).unwrap_err().reason;
        assert_eq!(why(&op).as_deref(), Some("the recording stopped"));
        assert_eq!(why(&ag).as_deref(), Some("the recording stopped"));
        assert_eq!(why(&old.0), None, "an old token learns nothing");
        assert_eq!(why(&[0; 32]), None);
        t.forget(&SID);
        assert_eq!(why(&op), None);
    }

    #[tokio::test]
    async fn a_claim_reaches_the_sessions_task() {
        let t = Tickets::<&'static str>::new();
        let (tx, mut rx) = mpsc::channel(1);
        let (op, _) = t.issue(SID, tx, &mut OsRng);
        let (side, to_task) = t.claim(&SID, &op).unwrap();
        to_task
            .try_send(Arrival {
                side,
                conn: "new connection",
            })
            .unwrap();
        let got = rx.recv().await.unwrap();
        assert_eq!((got.side, got.conn), (Side::Operator, "new connection"));
    }
}
