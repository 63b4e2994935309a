//! Per-key async locks, so that the check of a brute-force counter, the attempt it guards and
//! the recording of its failure happen as one step per key. Without them, many parallel
//! attempts could all pass the check before the first failure is recorded.
//!
//! Entries exist only while someone holds or awaits them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// A set of named async locks.
#[derive(Debug, Default)]
pub struct KeyedLocks {
    map: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// Holds the lock of one key until dropped.
#[derive(Debug)]
pub struct KeyGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<AsyncMutex<()>>>> {
        // Only inserts and removes happen under this lock; a poisoned map is still consistent.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for the lock of `key`. Take several keys always in the same order.
    pub async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let mutex = self.map().entry(key.to_string()).or_default().clone();
        let guard = mutex.lock_owned().await;
        KeyGuard {
            locks: self,
            key: key.to_string(),
            guard: Some(guard),
        }
    }

    /// Number of keys currently held or awaited.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.map();
        // Only the map's own reference left: nobody holds or awaits this key.
        if map
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn same_key_serialises_other_keys_do_not() {
        let locks = KeyedLocks::new();
        let a = locks.lock("a").await;
        let b = locks.lock("b").await;
        assert_eq!(locks.len(), 2);
        // A second holder of "a" must wait.
        let waited = tokio::time::timeout(Duration::from_millis(50), locks.lock("a")).await;
        assert!(waited.is_err());
        drop(a);
        let a2 = tokio::time::timeout(Duration::from_secs(5), locks.lock("a"))
            .await
            .unwrap();
        drop(a2);
        drop(b);
        assert!(locks.is_empty(), "released keys are forgotten");
    }
}
