//! The relay's channel credentials (Noise static key signed by the CA), made at start and
//! renewed before they expire. Making them costs one RSA signature, so it happens rarely and
//! off the async threads.

use rand_core::OsRng;
use sightline_core::identity::PrivateIdentity;
use sightline_core::relay_channel::RelayCredentials;
use sightline_net::clock;
use std::sync::Arc;
use tokio::sync::Mutex;

/// How long new credentials are valid.
pub const LIFETIME_SECS: u64 = 24 * 3600;
/// Credentials with less than this left are replaced.
pub const RENEW_BEFORE_SECS: u64 = 12 * 3600;

/// Making credentials failed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The core refused (a local key problem).
    #[error("cannot make relay channel credentials: {0}")]
    Core(#[from] sightline_core::Error),
    /// The worker thread did not finish.
    #[error("cannot make relay channel credentials: worker failed")]
    Worker,
}

/// Whether credentials valid until `not_after` must be replaced at `now`.
pub fn needs_renewal(not_after: u64, now: u64) -> bool {
    not_after.saturating_sub(now) < RENEW_BEFORE_SECS
}

/// Makes credentials valid from `now` for [`LIFETIME_SECS`], on a blocking thread.
pub async fn make(
    ca: Arc<PrivateIdentity>,
    now: u64,
) -> Result<RelayCredentials, CredentialsError> {
    tokio::task::spawn_blocking(move || {
        RelayCredentials::new(
            &ca,
            clock::seed(),
            now.saturating_add(LIFETIME_SECS),
            &mut OsRng,
        )
    })
    .await
    .map_err(|_| CredentialsError::Worker)?
    .map_err(CredentialsError::from)
}

/// The current credentials, renewed on demand.
#[derive(Debug)]
pub struct CredentialCache {
    ca: Arc<PrivateIdentity>,
    current: Mutex<Arc<RelayCredentials>>,
}

impl CredentialCache {
    /// Makes the first credentials.
    pub async fn new(ca: Arc<PrivateIdentity>) -> Result<Self, CredentialsError> {
        let first = make(ca.clone(), clock::now_unix()).await?;
        Ok(Self {
            ca,
            current: Mutex::new(Arc::new(first)),
        })
    }

    /// Credentials valid for at least [`RENEW_BEFORE_SECS`] after `now`, renewing if needed.
    /// Concurrent callers wait for one renewal instead of each making their own.
    pub async fn current(&self, now: u64) -> Result<Arc<RelayCredentials>, CredentialsError> {
        let mut current = self.current.lock().await;
        if needs_renewal(current.not_after(), now) {
            *current = Arc::new(make(self.ca.clone(), now).await?);
            tracing::info!(
                not_after = current.not_after(),
                "renewed relay channel credentials"
            );
        }
        Ok(current.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_with_less_than_twelve_hours_left() {
        let now = 1_700_000_000;
        assert!(!needs_renewal(now + LIFETIME_SECS, now));
        assert!(!needs_renewal(now + RENEW_BEFORE_SECS, now));
        assert!(needs_renewal(now + RENEW_BEFORE_SECS - 1, now));
        assert!(needs_renewal(now, now));
        assert!(
            needs_renewal(now - 10, now),
            "expired credentials are renewed"
        );
    }
}
