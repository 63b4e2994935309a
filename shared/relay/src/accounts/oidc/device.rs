//! The device authorization grant (RFC 8628) with one `[[oidc]]` provider, the relay being the
//! client: the device code, the polling, and the ID token's verification ([`super::token`]),
//! through the `openidconnect` crate ([`super::provider`]). The viewer only relays the URL and the code to the
//! operator: it never sees a token or the client secret.

use std::future::Future;
use std::time::Duration;

use openidconnect::core::CoreDeviceAuthorizationResponse;
use openidconnect::{Scope, TokenResponse};

use super::claims::VerifiedClaims;
use super::config::OidcConfig;
use super::error::{chain, OidcError};
use super::provider::Provider;
use super::token;

/// Longest the relay waits for the operator to finish in the browser, whatever the provider
/// says.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// What the operator is shown: where to sign in and the code to type there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCode {
    /// The provider's page.
    pub verification_uri: String,
    /// The same page with the code filled in, when the provider offers it.
    pub verification_uri_complete: Option<String>,
    /// The code.
    pub user_code: String,
    /// Seconds the code is valid.
    pub expires_in: u64,
}

/// Runs the device grant with `cfg`'s provider: `show` gets the code for the operator once
/// the provider issued it; the result is the verified ID token's claims.
pub async fn sign_in<F, Fut>(cfg: &OidcConfig, show: F) -> Result<VerifiedClaims, OidcError>
where
    F: FnOnce(DeviceCode) -> Fut,
    Fut: Future<Output = Result<(), OidcError>>,
{
    let provider = Provider::discover(cfg).await?;
    let unreachable = |detail: String| OidcError::Unreachable {
        provider: cfg.name.clone(),
        detail,
    };
    let device_url = provider.device_endpoint().ok_or_else(|| {
        unreachable("its discovery document names no device authorization endpoint: use the sign-in in the browser".into())
    })?;
    let http = provider.http.clone();
    let client = provider.client().set_device_authorization_url(device_url);
    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(cfg.scopes.iter().map(|s| Scope::new(s.clone())))
        .request_async(&http)
        .await
        .map_err(|e| unreachable(chain(&e)))?;
    show(DeviceCode {
        verification_uri: details.verification_uri().to_string(),
        verification_uri_complete: details
            .verification_uri_complete()
            .map(|u| u.secret().clone()),
        user_code: details.user_code().secret().clone(),
        expires_in: details.expires_in().as_secs(),
    })
    .await?;
    let wait = details.expires_in().min(MAX_WAIT);
    let token = client
        .exchange_device_access_token(&details)
        .map_err(|e| unreachable(e.to_string()))?
        .request_async(&http, tokio::time::sleep, Some(wait))
        .await
        .map_err(|e| OidcError::NotCompleted {
            provider: cfg.name.clone(),
            detail: chain(&e),
        })?;
    let verifier = client.id_token_verifier();
    // The device grant has no nonce (nothing of the relay's travels through the browser): the
    // token comes straight from the token endpoint.
    token::verify(cfg, verifier, token.id_token(), None)
}
