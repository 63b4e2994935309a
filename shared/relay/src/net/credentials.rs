//! The relay's channel credentials (Noise static key signed by the issuing key), made at start
//! and renewed before they expire or when the issuing key changes. Making them costs one RSA
//! signature, so it happens rarely and off the async threads.

use crate::authority::ca::Issuing;
use crate::authority::issuing::IssuerCell;
use rand_core::OsRng;
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

/// Makes credentials valid from `now` for [`LIFETIME_SECS`] (at most until the issuer
/// certificate ends), on a blocking thread.
pub async fn make(issuing: Arc<Issuing>, now: u64) -> Result<RelayCredentials, CredentialsError> {
    tokio::task::spawn_blocking(move || {
        RelayCredentials::new(
            issuing.key(),
            issuing.authority(),
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
    issuing: Arc<IssuerCell>,
    current: Mutex<Arc<RelayCredentials>>,
}

impl CredentialCache {
    /// Makes the first credentials with the issuing key in force.
    pub async fn new(issuing: Arc<IssuerCell>) -> Result<Self, CredentialsError> {
        let first = make(issuing.get(), clock::now_unix()).await?;
        Ok(Self {
            issuing,
            current: Mutex::new(Arc::new(first)),
        })
    }

    /// Credentials valid for at least [`RENEW_BEFORE_SECS`] after `now` (or until the issuer
    /// certificate ends) and signed by the issuing key in force, renewing if needed.
    /// Concurrent callers wait for one renewal instead of each making their own.
    pub async fn current(&self, now: u64) -> Result<Arc<RelayCredentials>, CredentialsError> {
        let mut current = self.current.lock().await;
        let issuing = self.issuing.get();
        let issuer = issuing.authority().issuer().fingerprint();
        // A proof that already runs to the issuer certificate's end cannot be made to run
        // longer: it is renewed only once another issuing key is in force (otherwise every
        // connection would cost a signature in an issuer's last hours).
        let capped = current.not_after() >= issuing.not_after();
        let stale = needs_renewal(current.not_after(), now) && !capped;
        if stale || !current.issuer().ct_eq(&issuer) {
            *current = Arc::new(make(issuing, now).await?);
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
