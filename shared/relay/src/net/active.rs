//! The relayed sessions running right now, by the serial of the operator's certificate, so
//! that revoking a certificate (or disabling its account) ends its sessions.
//!
//! A session registers when it is paired and is forgotten when its guard drops; stopping it
//! fires the one-shot its forwarding waits on, with the reason ([`Stop::Revoked`]).

use crate::net::stop::Stop;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::oneshot;

#[derive(Debug)]
struct Entry {
    operator: String,
    serial: u64,
    stop: Option<oneshot::Sender<Stop>>,
}

/// Running sessions.
#[derive(Debug, Default)]
pub struct ActiveSessions {
    entries: Mutex<HashMap<u64, Entry>>,
    next: AtomicU64,
}

/// Keeps a session registered until dropped.
#[derive(Debug)]
pub struct Registered<'a> {
    sessions: &'a ActiveSessions,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.sessions.lock().remove(&self.id);
    }
}

/// A session that was told to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The operator's account.
    pub operator: String,
    /// The serial of the certificate it ran under.
    pub serial: u64,
}

impl ActiveSessions {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        // Every operation is one insert, remove or scan: a poisoned map is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a session of `operator` under the certificate `serial`; the receiver fires
    /// when it must stop.
    pub fn register(
        &self,
        operator: &str,
        serial: u64,
    ) -> (Registered<'_>, oneshot::Receiver<Stop>) {
        let (tx, rx) = oneshot::channel();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            id,
            Entry {
                operator: operator.to_string(),
                serial,
                stop: Some(tx),
            },
        );
        (Registered { sessions: self, id }, rx)
    }

    /// Stops every session whose certificate `revoked` says is revoked; returns them.
    pub fn stop_revoked(&self, revoked: impl Fn(u64) -> bool) -> Vec<Stopped> {
        let mut stopped = Vec::new();
        for entry in self.lock().values_mut() {
            if revoked(entry.serial) {
                if let Some(stop) = entry.stop.take() {
                    let _ = stop.send(Stop::Revoked);
                    stopped.push(Stopped {
                        operator: entry.operator.clone(),
                        serial: entry.serial,
                    });
                }
            }
        }
        stopped
    }

    /// Sessions running now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_sessions_are_stopped_once_and_forgotten_when_they_end() {
        let active = ActiveSessions::new();
        let (a, mut a_stop) = active.register("alice", 1);
        let (b, mut b_stop) = active.register("bob", 2);
        assert_eq!(active.len(), 2);
        let stopped = active.stop_revoked(|s| s == 1);
        assert_eq!(
            stopped,
            vec![Stopped {
                operator: "alice".into(),
                serial: 1
            }]
        );
        assert_eq!(a_stop.try_recv(), Ok(Stop::Revoked));
        assert!(b_stop.try_recv().is_err());
        assert!(active.stop_revoked(|s| s == 1).is_empty(), "told once");
        drop(a);
        assert_eq!(active.len(), 1);
        drop(b);
        assert!(active.is_empty());
    }
}
