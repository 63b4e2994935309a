//! Password hashing as a bounded, shared resource. Each argon2id verification costs about
//! 19 MiB and tens of milliseconds of a core, so a flood of logins from many addresses must
//! not be able to queue without bound, starve the real operators, or grow the process.
//!
//! - A fixed number of **slots** run at once; waiters are served first come, first served
//!   (tokio's semaphore is fair). One slot is reserved for logins from an address that the
//!   account logged in from before, so a flood from new addresses cannot keep the help desk's
//!   own operators waiting behind it.
//! - At most `hash_queue` other logins **wait** for a slot; further ones are refused at once
//!   ("busy"), which is not a failed login. Each source address (IPv6 /64) has at most one
//!   login in progress anyway: [`crate::accounts::login`] holds its counter's lock for the attempt.
//! - Each slot hashes in **working memory taken from a pool** of `argon2::Block` buffers that
//!   is never freed, so resident memory stays at most slots × 19 MiB, however many logins
//!   come. A buffer is wiped after each use.
//! - An attempt takes a [`Slot`] before its first factor is checked and spends it on exactly
//!   one verification, against the account's hash or a dummy one: unknown names, directory
//!   accounts and local ones cost the same hashing work. [`Hashing::checks`] counts
//!   verifications, so tests can compare the paths by structure rather than by the clock.

use crate::accounts::password::{self, Verification};
use argon2::Block;
use serde::Deserialize;
use sightline_core::relay_proto::Secret;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The `[login_work]` table: how much login work runs at once, and how fast failures answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginWork {
    /// Password verifications at once; `None`: the number of CPU cores, at most 8.
    pub hash_slots: Option<usize>,
    /// Logins (from addresses new to the account) that may wait for a slot; more are refused
    /// with "retry in 1 s".
    pub hash_queue: usize,
    /// A failed login is answered no sooner than this after it arrived, milliseconds, so that
    /// the time of the answer does not tell which check failed or whether the account exists.
    pub failure_floor_ms: u64,
}

impl Default for LoginWork {
    fn default() -> Self {
        Self {
            hash_slots: None,
            hash_queue: 64,
            failure_floor_ms: 1000,
        }
    }
}

impl LoginWork {
    /// Most slots that may be configured.
    pub const MAX_SLOTS: usize = 64;

    /// The slots in force: as configured, else one per CPU core up to 8.
    pub fn slots(&self) -> usize {
        self.hash_slots.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(1, 8)
        })
    }

    /// What is wrong with the values, if anything: the key and the reason.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self
            .hash_slots
            .is_some_and(|s| s == 0 || s > Self::MAX_SLOTS)
        {
            return Some(("login_work.hash_slots", "must be between 1 and 64"));
        }
        if self.hash_queue > 100_000 {
            return Some(("login_work.hash_queue", "must be at most 100000"));
        }
        if self.failure_floor_ms > 30_000 {
            return Some((
                "login_work.failure_floor_ms",
                "must be at most 30000 milliseconds",
            ));
        }
        None
    }
}

/// Who is asking for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A login from an address the account logged in from before: may use the reserved slot
    /// and is never refused as busy.
    KnownAddress,
    /// Anyone else.
    Other,
}

/// No slot now: too many logins are waiting already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many logins waiting for password hashing")]
pub struct Busy;

/// A verification could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing worker failed")]
pub struct WorkerFailed;

type Pool = Arc<Mutex<Vec<Box<[Block]>>>>;

/// The relay's password-hashing slots, their working memory and the dummy hash.
#[derive(Debug)]
pub struct Hashing {
    general: Arc<Semaphore>,
    reserved: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    memory: Pool,
    checks: Arc<AtomicU64>,
    dummy: String,
}

/// The right to one password verification, taken before the first factor is checked.
#[derive(Debug)]
pub struct Slot {
    permit: OwnedSemaphorePermit,
    memory: Pool,
    checks: Arc<AtomicU64>,
    dummy: String,
}

/// Counts a waiter for as long as it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hashing {
    /// Slots as `work` says; `dummy` is the hash of a password nobody knows.
    pub fn new(work: &LoginWork, dummy: String) -> Self {
        let slots = work.slots().max(1);
        // With one slot there is nothing to reserve; the known addresses share it.
        let (general, reserved) = if slots > 1 { (slots - 1, 1) } else { (1, 0) };
        Self {
            general: Arc::new(Semaphore::new(general)),
            reserved: Arc::new(Semaphore::new(reserved)),
            waiting: AtomicUsize::new(0),
            max_waiting: work.hash_queue,
            memory: Arc::new(Mutex::new(Vec::new())),
            checks: Arc::new(AtomicU64::new(0)),
            dummy,
        }
    }

    /// Waits for a slot. A login from a known address takes whichever frees first, the
    /// reserved one or a general one; others queue for a general one, or get [`Busy`] when
    /// the queue is full.
    pub async fn slot(&self, priority: Priority) -> Result<Slot, Busy> {
        let permit = match priority {
            Priority::KnownAddress => {
                tokio::select! {
                    p = self.reserved.clone().acquire_owned() => p,
                    p = self.general.clone().acquire_owned() => p,
                }
            }
            Priority::Other => {
                if let Ok(p) = self.general.clone().try_acquire_owned() {
                    Ok(p)
                } else {
                    if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
                        self.waiting.fetch_sub(1, Ordering::AcqRel);
                        return Err(Busy);
                    }
                    let _waiting = Waiting(&self.waiting);
                    self.general.clone().acquire_owned().await
                }
            }
        };
        // The semaphores are never closed.
        let permit = permit.map_err(|_| Busy)?;
        Ok(Slot {
            permit,
            memory: self.memory.clone(),
            checks: self.checks.clone(),
            dummy: self.dummy.clone(),
        })
    }

    /// Verifications made so far (a test hook: every login attempt that reaches its first
    /// factor makes exactly one).
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// Working-memory buffers made so far (at most one per slot).
    pub fn buffers(&self) -> usize {
        lock(&self.memory).len()
    }
}

impl Slot {
    /// Checks `password` against `stored`, or with `None` against the dummy hash (same cost,
    /// never a match), on a blocking thread. The slot and its buffer stay taken until the
    /// hash is done, even if the caller stops waiting.
    pub async fn verify(
        self,
        password: Secret,
        stored: Option<String>,
    ) -> Result<Verification, WorkerFailed> {
        let Slot {
            permit,
            memory,
            checks,
            dummy,
        } = self;
        let known = stored.is_some();
        let hash = stored.unwrap_or(dummy);
        checks.fetch_add(1, Ordering::Relaxed);
        let verdict = tokio::task::spawn_blocking(move || {
            let mut buffer = lock(&memory)
                .pop()
                .unwrap_or_else(|| vec![Block::default(); password::memory_blocks()].into());
            let verdict =
                password::verify_password_with_memory(password.expose(), &hash, &mut buffer);
            // Wiped for the next user (the buffer lives on, so the writes are not elided).
            buffer.fill(Block::default());
            lock(&memory).push(buffer);
            drop(permit);
            verdict
        })
        .await
        .map_err(|_| WorkerFailed)?;
        // The dummy hash belongs to nobody: whatever it says, the answer is no.
        Ok(if known {
            verdict
        } else {
            Verification::Mismatch
        })
    }
}

fn lock(pool: &Pool) -> std::sync::MutexGuard<'_, Vec<Box<[Block]>>> {
    // Only pushes and pops happen under this lock; a poisoned pool is still a list of buffers.
    pool.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hashing(slots: usize, queue: usize) -> Hashing {
        let work = LoginWork {
            hash_slots: Some(slots),
            hash_queue: queue,
            ..LoginWork::default()
        };
        // Cheap parameters: this test is about slots, not about argon2.
        Hashing::new(&work, password::hash_password("nobody's").unwrap())
    }

    #[tokio::test]
    async fn a_full_queue_refuses_others_but_not_known_addresses() {
        let h = hashing(2, 1);
        // One general slot, one reserved.
        let first = h.slot(Priority::Other).await.unwrap();
        let h = Arc::new(h);
        let waiter = {
            let h = h.clone();
            tokio::spawn(async move { h.slot(Priority::Other).await.map(|_| ()) })
        };
        while h.waiting.load(Ordering::Acquire) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The queue (one) is full: another new address is refused at once.
        assert_eq!(h.slot(Priority::Other).await.unwrap_err(), Busy);
        // A known address gets the reserved slot.
        let known = tokio::time::timeout(Duration::from_secs(5), h.slot(Priority::KnownAddress))
            .await
            .unwrap()
            .unwrap();
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        drop(known);
        assert_eq!(h.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn verifications_are_counted_and_reuse_one_buffer_per_slot() {
        let h = hashing(1, 8);
        let phc = password::hash_password("right password").unwrap();
        for (password, stored, expected) in [
            ("right password", Some(phc.clone()), Verification::Match),
            ("wrong password", Some(phc.clone()), Verification::Mismatch),
            ("nobody's", None, Verification::Mismatch),
        ] {
            let slot = h.slot(Priority::Other).await.unwrap();
            let verdict = slot.verify(Secret::new(password), stored).await.unwrap();
            assert_eq!(verdict, expected, "{password}");
        }
        assert_eq!(h.checks(), 3);
        assert_eq!(h.buffers(), 1);
    }

    #[test]
    fn settings_are_checked() {
        assert_eq!(LoginWork::default().problem(), None);
        let zero = LoginWork {
            hash_slots: Some(0),
            ..LoginWork::default()
        };
        assert_eq!(zero.problem().map(|p| p.0), Some("login_work.hash_slots"));
        let slow = LoginWork {
            failure_floor_ms: 60_000,
            ..LoginWork::default()
        };
        assert_eq!(
            slow.problem().map(|p| p.0),
            Some("login_work.failure_floor_ms")
        );
        assert!((1..=8).contains(&LoginWork::default().slots()));
    }
}
