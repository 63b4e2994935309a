//! The running relay's issuing key: the one in force (swapped whole when it changes), a
//! watcher that picks up a key installed by `relay ca rotate` or `relay ca install` in another
//! process, and rotation before expiry when the root key is on this machine.

use crate::authority::ca::{self, CaError, Issuing};
use crate::context::Relay;
use crate::store::paths::DataDir;
use sightline_net::clock;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often the issuer certificate file is read for a change made by another process.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// How often the issuer certificate's remaining validity is checked.
pub const EXPIRY_CHECK_EVERY: Duration = Duration::from_secs(3600);

/// The issuing key in force.
#[derive(Debug)]
pub struct IssuerCell {
    current: RwLock<Arc<Issuing>>,
}

impl IssuerCell {
    /// Starts with `issuing`.
    pub fn new(issuing: Issuing) -> Self {
        Self {
            current: RwLock::new(Arc::new(issuing)),
        }
    }

    /// The issuing key in force now.
    pub fn get(&self) -> Arc<Issuing> {
        // Only whole values are stored: a poisoned lock still holds a consistent one.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Puts `issuing` in force (new signatures use it; what the old one signed stays valid
    /// until it expires).
    pub fn set(&self, issuing: Issuing) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(issuing);
    }
}

/// When the relay certifies a new issuing key by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    /// Validity of a new issuer certificate, seconds.
    pub validity_secs: u64,
    /// Renew when less than this is left, seconds.
    pub renew_before_secs: u64,
}

/// Whether an issuer certificate ending at `not_after` is due for renewal at `now`.
pub fn due(renewal: Renewal, not_after: u64, now: u64) -> bool {
    not_after.saturating_sub(now) < renewal.renew_before_secs
}

/// Reads the data directory's issuer certificate and puts a changed one in force. Returns the
/// new issuing key when it changed.
pub async fn reload(relay: &Relay, data: &DataDir) -> Result<Option<Arc<Issuing>>, CaError> {
    let current = relay.issuing.get();
    let d = data.clone();
    let found = tokio::task::spawn_blocking(move || ca::load_issuing(&d, false))
        .await
        .map_err(|_| CaError::Mismatch("issuer reload worker failed".into()))??;
    if found.authority() == current.authority() {
        return Ok(None);
    }
    relay.issuing.set(found);
    Ok(Some(relay.issuing.get()))
}

/// Certifies a new issuing key with the root key in the data directory, installs it and puts
/// it in force.
pub async fn rotate_here(
    relay: &Relay,
    data: &DataDir,
    renewal: Renewal,
) -> Result<Arc<Issuing>, CaError> {
    let d = data.clone();
    let issuing = tokio::task::spawn_blocking(move || {
        let root = ca::load_root(d.root())?;
        ca::rotate(&d, &root, clock::now_unix(), renewal.validity_secs)
    })
    .await
    .map_err(|_| CaError::Mismatch("issuer rotation worker failed".into()))??;
    relay.issuing.set(issuing);
    Ok(relay.issuing.get())
}

fn log_new(issuing: &Issuing, how: &str) {
    let body = issuing.authority().issuer_body();
    tracing::info!(
        issuer = %issuing.authority().issuer().fingerprint(),
        serial = body.serial,
        not_after = body.not_after,
        how,
        "issuing key in force"
    );
}

/// Runs for the life of the relay: reloads the issuer certificate every [`RELOAD_EVERY`], and
/// every [`EXPIRY_CHECK_EVERY`] (and at once) renews it when due and the root key is here, or
/// warns that an offline renewal is due.
pub async fn watch(relay: Arc<Relay>, data: DataDir, renewal: Renewal) {
    let mut reload_tick = tokio::time::interval(RELOAD_EVERY);
    reload_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut expiry_tick = tokio::time::interval(EXPIRY_CHECK_EVERY);
    let mut reload_failing = false;
    loop {
        tokio::select! {
            _ = reload_tick.tick() => match reload(&relay, &data).await {
                Ok(Some(new)) => {
                    reload_failing = false;
                    log_new(&new, "installed by another process");
                }
                Ok(None) => reload_failing = false,
                // Once per failure streak: an install in progress in another process can
                // show a certificate whose key is not in place yet.
                Err(e) if !reload_failing => {
                    reload_failing = true;
                    tracing::warn!(error = %e, "cannot read the issuer certificate; keeping the issuing key in force");
                }
                Err(_) => {}
            },
            _ = expiry_tick.tick() => {
                let now = clock::now_unix();
                let current = relay.issuing.get();
                if !due(renewal, current.not_after(), now) {
                    continue;
                }
                if ca::root_here(&data) {
                    match rotate_here(&relay, &data, renewal).await {
                        Ok(new) => log_new(&new, "renewed before expiry with the root key in the data directory"),
                        Err(e) => tracing::error!(error = %e, "cannot renew the issuing key"),
                    }
                } else {
                    let days = current.not_after().saturating_sub(now) / 86_400;
                    tracing::warn!(days_left = days, not_after = current.not_after(),
                        "the issuing certificate ends soon and the root key is offline: certify a new issuing key (relay ca request, relay ca issue, relay ca install)");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_with_less_than_the_margin_left() {
        let r = Renewal {
            validity_secs: 90 * 86_400,
            renew_before_secs: 30 * 86_400,
        };
        let now = 1_800_000_000;
        assert!(!due(r, now + 31 * 86_400, now));
        assert!(!due(r, now + 30 * 86_400, now));
        assert!(due(r, now + 30 * 86_400 - 1, now));
        assert!(due(r, now - 5, now), "an expired one is due");
    }
}
