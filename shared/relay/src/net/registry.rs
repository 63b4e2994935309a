//! Pending sessions by code: an operator registers and waits; an agent that presents the code
//! takes the entry out, so a code pairs at most once.
//!
//! The registry only holds the hand-over channel to the waiting operator's task; what travels
//! through it (the agent's connection) is opaque here, which keeps this testable without
//! sockets.

use rand_core::RngCore;
use sightline_core::code::SessionCode;
use sightline_core::relay_proto::SessionId;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::oneshot;

/// Draws before giving up on finding an unused code (each clash has odds of about
/// pending / 10^10, so this only fails when something is badly wrong).
const MAX_DRAWS: usize = 32;

/// A code was not valid: unknown, already used, expired, or not ten digits. Deliberately one
/// case, so a guesser learns nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("code not valid")]
pub struct CodeNotValid;

/// No unused code could be drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no free session code could be drawn")]
pub struct NoFreeCode;

/// A waiting operator.
#[derive(Debug)]
pub struct Pending<T> {
    /// Session identifier.
    pub session_id: SessionId,
    /// Account of the operator who created it.
    pub operator: String,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
    handoff: oneshot::Sender<T>,
}

impl<T> Pending<T> {
    /// Hands `value` to the waiting operator; gives it back if the operator has gone.
    pub fn hand_over(self, value: T) -> Result<(), T> {
        self.handoff.send(value)
    }
}

/// What the operator is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// The one-time code.
    pub code: SessionCode,
    /// Session identifier.
    pub session_id: SessionId,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
}

/// Pending sessions keyed by the code's digits.
#[derive(Debug)]
pub struct Registry<T> {
    pending: Mutex<HashMap<String, Pending<T>>>,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> Registry<T> {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Pending<T>>> {
        // No code path panics while holding the lock; if one ever did, the map is still
        // consistent (every operation is a single insert or remove).
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a new session for `operator` with a fresh code that no pending session uses.
    pub fn register(
        &self,
        operator: &str,
        expires_at: u64,
        handoff: oneshot::Sender<T>,
        rng: &mut impl RngCore,
    ) -> Result<Registration, NoFreeCode> {
        let mut session_id = [0u8; 16];
        rng.fill_bytes(&mut session_id);
        let mut map = self.lock();
        for _ in 0..MAX_DRAWS {
            let code = SessionCode::generate(rng);
            let digits = code.digits();
            if map.contains_key(&digits) {
                continue;
            }
            map.insert(
                digits,
                Pending {
                    session_id,
                    operator: operator.to_string(),
                    expires_at,
                    handoff,
                },
            );
            return Ok(Registration {
                code,
                session_id,
                expires_at,
            });
        }
        Err(NoFreeCode)
    }

    /// Takes the session for `code` out of the registry: whatever happens next, the code is
    /// dead. An expired entry is removed and refused like an unknown code.
    pub fn take(&self, code: &str, now: u64) -> Result<Pending<T>, CodeNotValid> {
        let code: SessionCode = code.parse().map_err(|_| CodeNotValid)?;
        let pending = self.lock().remove(&code.digits()).ok_or(CodeNotValid)?;
        if now >= pending.expires_at {
            return Err(CodeNotValid);
        }
        Ok(pending)
    }

    /// Removes the entry for `code` if it still belongs to `session_id` (the operator left or
    /// the code expired). Returns whether something was removed.
    pub fn withdraw(&self, code: &SessionCode, session_id: &SessionId) -> bool {
        let mut map = self.lock();
        let digits = code.digits();
        if map
            .get(&digits)
            .is_some_and(|p| &p.session_id == session_id)
        {
            map.remove(&digits);
            true
        } else {
            false
        }
    }

    /// Number of pending sessions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn join_takes_the_code_and_a_second_use_fails() {
        let reg = Registry::<&'static str>::new();
        let (tx, mut rx) = oneshot::channel();
        let r = reg.register("alice", NOW + 600, tx, &mut OsRng).unwrap();
        assert_eq!(reg.len(), 1);
        // Grouped spelling works like the digits.
        let pending = reg.take(&r.code.grouped(), NOW + 1).unwrap();
        assert_eq!(pending.session_id, r.session_id);
        assert_eq!(pending.operator, "alice");
        assert!(reg.is_empty(), "the code dies at pairing");
        assert_eq!(
            reg.take(&r.code.digits(), NOW + 2).map(|_| ()),
            Err(CodeNotValid)
        );
        pending.hand_over("agent connection").unwrap();
        assert_eq!(rx.try_recv(), Ok("agent connection"));
    }

    #[test]
    fn expired_unknown_and_malformed_codes_are_not_valid() {
        let reg = Registry::<()>::new();
        let (tx, _rx) = oneshot::channel();
        let r = reg.register("alice", NOW + 600, tx, &mut OsRng).unwrap();
        assert_eq!(
            reg.take(&r.code.digits(), NOW + 600).map(|_| ()),
            Err(CodeNotValid)
        );
        assert!(reg.is_empty(), "an expired entry is removed when presented");

        let (tx, _rx) = oneshot::channel();
        let r = reg.register("alice", NOW + 600, tx, &mut OsRng).unwrap();
        let other = if r.code.digits() == "0000000000" {
            "0000000001"
        } else {
            "0000000000"
        };
        assert_eq!(reg.take(other, NOW).map(|_| ()), Err(CodeNotValid));
        for junk in [
            "",
            "123",
            "abcdefghij",
            "12345678901",
            "１２３４５６７８９０",
        ] {
            assert_eq!(
                reg.take(junk, NOW).map(|_| ()),
                Err(CodeNotValid),
                "{junk:?}"
            );
        }
        assert_eq!(reg.len(), 1, "failed guesses leave the real entry alone");
    }

    #[test]
    fn hand_over_to_a_departed_operator_gives_the_value_back() {
        let reg = Registry::<u8>::new();
        let (tx, rx) = oneshot::channel();
        let r = reg.register("alice", NOW + 600, tx, &mut OsRng).unwrap();
        drop(rx);
        let pending = reg.take(&r.code.digits(), NOW).unwrap();
        assert_eq!(pending.hand_over(7), Err(7));
    }

    #[test]
    fn withdraw_only_removes_its_own_session() {
        let reg = Registry::<()>::new();
        let (tx, _rx) = oneshot::channel();
        let r = reg.register("alice", NOW + 600, tx, &mut OsRng).unwrap();
        assert!(!reg.withdraw(&r.code, &[0xee; 16]));
        assert_eq!(reg.len(), 1);
        assert!(reg.withdraw(&r.code, &r.session_id));
        assert!(reg.is_empty());
        assert!(!reg.withdraw(&r.code, &r.session_id));
    }

    /// An RNG that keeps producing the same code.
    struct Stuck;
    impl RngCore for Stuck {
        fn next_u32(&mut self) -> u32 {
            7
        }
        fn next_u64(&mut self) -> u64 {
            7
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(7);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            dest.fill(7);
            Ok(())
        }
    }

    #[test]
    fn a_clashing_code_is_redrawn_and_never_overwrites() {
        let reg = Registry::<()>::new();
        let (tx, _rx1) = oneshot::channel();
        let first = reg.register("alice", NOW + 600, tx, &mut Stuck).unwrap();
        let (tx, _rx2) = oneshot::channel();
        assert_eq!(
            reg.register("bob", NOW + 600, tx, &mut Stuck),
            Err(NoFreeCode)
        );
        assert_eq!(
            reg.take(&first.code.digits(), NOW).map(|p| p.operator),
            Ok("alice".into())
        );
    }
}
