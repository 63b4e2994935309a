//! The running relay's revocations: the current revocation list (signed again whenever the
//! revocation sequence or the issuing key changes), and the watcher that ends the relayed
//! sessions of revoked certificates.
//!
//! `relay user disable`, `relay user remove` and `relay cert revoke` run in another process:
//! they write the database, and [`watch`] reads the revocation sequence every
//! [`POLL_EVERY`], so a revoked operator's running sessions end within about a second (two at
//! most, well inside the five the help desk is promised). Each pass also stops any session that
//! registered after the previous one under a certificate already revoked.

use crate::authority::ca::Issuing;
use crate::authority::certs;
use crate::context::{InternalError, Relay};
use crate::net::active::Stopped;
use crate::store::db::Database;
use rand_core::OsRng;
use sightline_core::identity::Fingerprint;
use sightline_core::revocation::RevocationList;
use sightline_net::clock;
use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often the revocation sequence is read.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// One state of the revocations: the sequence it was read at, the revoked serials, and the
/// list signed for it.
#[derive(Debug)]
pub struct Snapshot {
    /// The revocation sequence.
    pub sequence: u64,
    /// The issuing key that signed `list`.
    pub issuer: Fingerprint,
    revoked: HashSet<u64>,
    /// The signed list.
    pub list: RevocationList,
}

impl Snapshot {
    /// Reads the revocations from `db` and signs a list with `issuing` at `now`.
    pub fn make(db: &Database, issuing: &Issuing, now: u64) -> Result<Self, InternalError> {
        let sequence = certs::sequence(db)?;
        let entries = certs::revoked(db, now)?;
        Self::sign(sequence, entries, issuing, now)
    }

    fn sign(
        sequence: u64,
        mut entries: Vec<sightline_core::revocation::Revoked>,
        issuing: &Issuing,
        now: u64,
    ) -> Result<Self, InternalError> {
        // Past the size one list may have, the certificates that end soonest are left out:
        // they are refused anyway once they end (certificates live hours).
        if entries.len() > sightline_core::revocation::MAX_ENTRIES {
            entries.sort_by_key(|r| std::cmp::Reverse(r.not_after));
            entries.truncate(sightline_core::revocation::MAX_ENTRIES);
            tracing::warn!(
                max = sightline_core::revocation::MAX_ENTRIES,
                "more revoked certificates than one list holds; the soonest to end are left out"
            );
        }
        let revoked = entries.iter().map(|r| r.serial).collect();
        let list = RevocationList::issue(
            issuing.key(),
            issuing.authority(),
            sequence,
            now,
            entries,
            &mut OsRng,
        )?;
        Ok(Self {
            sequence,
            issuer: issuing.authority().issuer().fingerprint(),
            revoked,
            list,
        })
    }

    /// Whether `serial` is revoked in this state.
    pub fn is_revoked(&self, serial: u64) -> bool {
        self.revoked.contains(&serial)
    }
}

/// The current revocations of a running relay.
#[derive(Debug)]
pub struct Revocations {
    current: RwLock<Arc<Snapshot>>,
}

impl Revocations {
    /// Starts with `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        Self {
            current: RwLock::new(Arc::new(snapshot)),
        }
    }

    /// The state in force.
    pub fn current(&self) -> Arc<Snapshot> {
        // Only whole values are stored: a poisoned lock still holds a consistent one.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn set(&self, snapshot: Snapshot) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(snapshot);
    }
}

/// Reads the sequence; when it (or the issuing key) changed, reads the revocations and signs a
/// new list. Then stops the running sessions of revoked certificates; returns them.
pub async fn refresh(relay: &Relay) -> Result<Vec<Stopped>, InternalError> {
    let sequence = relay.with_db(|db| certs::sequence(db)).await?;
    let issuing = relay.issuing.get();
    let current = relay.revocations.current();
    let issuer = issuing.authority().issuer().fingerprint();
    if sequence != current.sequence || !issuer.ct_eq(&current.issuer) {
        let now = clock::now_unix();
        let entries = relay.with_db(move |db| certs::revoked(db, now)).await?;
        let snapshot =
            tokio::task::spawn_blocking(move || Snapshot::sign(sequence, entries, &issuing, now))
                .await
                .map_err(|_| InternalError::Worker)??;
        tracing::info!(
            sequence,
            revoked = snapshot.revoked.len(),
            "revocation list signed"
        );
        relay.revocations.set(snapshot);
    }
    let snapshot = relay.revocations.current();
    Ok(relay.active.stop_revoked(|s| snapshot.is_revoked(s)))
}

/// Runs for the life of the relay: [`refresh`] every [`POLL_EVERY`].
pub async fn watch(relay: Arc<Relay>) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        match refresh(&relay).await {
            Ok(stopped) => {
                failing = false;
                for s in stopped {
                    tracing::warn!(operator = %s.operator, serial = s.serial,
                        "ending a relayed session: the operator's certificate was revoked");
                }
            }
            Err(e) if !failing => {
                failing = true;
                tracing::error!(error = %e, "cannot read revocations");
            }
            Err(_) => {}
        }
    }
}
