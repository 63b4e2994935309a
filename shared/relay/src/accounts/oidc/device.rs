//! The device authorization grant (RFC 8628) with one `[[oidc]]` provider, the relay being the
//! client: discovery, the device code, the polling, and the ID token's verification (issuer,
//! audience, expiry, signature with a key of the provider's published JWKS, algorithm from the
//! table's allow list), all through the `openidconnect` crate over reqwest (rustls, the
//! system's roots, no redirects followed). The viewer only relays the URL and the code to the
//! operator: it never sees a token or the client secret.

use std::future::Future;
use std::time::Duration;

use base64::Engine;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
    CoreDeviceAuthorizationResponse, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, ClientSecret, DeviceAuthorizationUrl, IssuerUrl, Nonce,
    ProviderMetadata, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::claims::VerifiedClaims;
use super::config::OidcConfig;

/// Longest wait for one HTTP exchange with the provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the relay waits for the operator to finish in the browser, whatever the provider
/// says.
const MAX_WAIT: Duration = Duration::from_secs(600);

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

/// Why a sign-in with the provider did not give verified claims. The words are for the
/// operator (no secret in them); [`OidcError::audit_reason`] is for the audit log.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider (discovery, device or token endpoint) cannot be reached or answered
    /// nonsense.
    #[error("the identity provider {provider} cannot be reached: {detail}")]
    Unreachable {
        /// The table's name.
        provider: String,
        /// What failed.
        detail: String,
    },
    /// The operator did not finish in time, or refused in the browser.
    #[error("the sign-in at {provider} was not completed: {detail}")]
    NotCompleted {
        /// The table's name.
        provider: String,
        /// The provider's answer.
        detail: String,
    },
    /// The ID token did not verify (signature, issuer, audience, expiry, algorithm).
    #[error("the identity provider's token was refused: {0}")]
    BadToken(String),
    /// The client secret file cannot be used.
    #[error("the relay's client secret for {provider} cannot be read: {detail}")]
    Secret {
        /// The table's name.
        provider: String,
        /// Why.
        detail: String,
    },
    /// The viewer went away while the operator was signing in.
    #[error("the viewer disconnected")]
    Gone,
}

impl OidcError {
    /// A short reason for the audit log.
    pub fn audit_reason(&self) -> &'static str {
        match self {
            OidcError::Unreachable { .. } => "oidc provider unreachable",
            OidcError::NotCompleted { .. } => "oidc sign-in not completed",
            OidcError::BadToken(_) => "oidc token refused",
            OidcError::Secret { .. } => "oidc client secret unusable",
            OidcError::Gone => "oidc viewer disconnected",
        }
    }
}

/// The discovery document's device endpoint, which the core metadata type leaves out.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct DeviceEndpoint {
    device_authorization_endpoint: DeviceAuthorizationUrl,
}
impl AdditionalProviderMetadata for DeviceEndpoint {}

type DeviceProviderMetadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Runs the device grant with `cfg`'s provider: `show` gets the code for the operator once
/// the provider issued it; the result is the verified ID token's claims.
pub async fn sign_in<F, Fut>(cfg: &OidcConfig, show: F) -> Result<VerifiedClaims, OidcError>
where
    F: FnOnce(DeviceCode) -> Fut,
    Fut: Future<Output = Result<(), OidcError>>,
{
    let unreachable = |detail: String| OidcError::Unreachable {
        provider: cfg.name.clone(),
        detail,
    };
    let secret = client_secret(cfg)?;
    let http = openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(HTTP_TIMEOUT)
        .build()
        .map_err(|e| unreachable(e.to_string()))?;
    let issuer = IssuerUrl::new(cfg.issuer.clone()).map_err(|e| unreachable(e.to_string()))?;
    let metadata = DeviceProviderMetadata::discover_async(issuer, &http)
        .await
        .map_err(|e| unreachable(chain(&e)))?;
    let device_url = metadata
        .additional_metadata()
        .device_authorization_endpoint
        .clone();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(cfg.client_id.clone()),
        secret.map(ClientSecret::new),
    )
    .set_device_authorization_url(device_url);
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
    let id_token = token
        .id_token()
        .ok_or_else(|| OidcError::BadToken("the provider sent no ID token".to_owned()))?;
    let algorithms: Vec<CoreJwsSigningAlgorithm> = cfg
        .algorithms
        .iter()
        .filter_map(|a| serde_json::from_value(Value::String(a.clone())).ok())
        .collect();
    let verifier = client.id_token_verifier().set_allowed_algs(algorithms);
    // The device grant has no nonce (nothing of the relay's travels through the browser).
    let claims = id_token
        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
        .map_err(|e| OidcError::BadToken(chain(&e)))?;
    Ok(VerifiedClaims {
        issuer: claims.issuer().to_string(),
        subject: claims.subject().to_string(),
        auth_time: claims
            .auth_time()
            .and_then(|t| u64::try_from(t.timestamp()).ok()),
        acr: claims.auth_context_ref().map(|a| a.to_string()),
        all: payload(&id_token.to_string())?,
    })
}

/// The claims of a compact JWT whose signature has been verified, as signed (every claim, the
/// provider's own ones included).
fn payload(jwt: &str) -> Result<Map<String, Value>, OidcError> {
    let bad = |why: &str| OidcError::BadToken(format!("its claims cannot be read: {why}"));
    let part = jwt.split('.').nth(1).ok_or_else(|| bad("not a JWT"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| bad("not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| bad("not a JSON object"))
}

/// The client secret from `client_secret_file` (owner-only), or none for a public client.
fn client_secret(cfg: &OidcConfig) -> Result<Option<String>, OidcError> {
    let Some(path) = &cfg.client_secret_file else {
        return Ok(None);
    };
    let fail = |detail: String| OidcError::Secret {
        provider: cfg.name.clone(),
        detail,
    };
    read_secret(path).map(Some).map_err(fail)
}

/// A secret file: owner-only (it holds a credential), UTF-8, one line, not empty.
pub fn read_secret(path: &std::path::Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{shown} has mode {mode:04o}; it holds a secret and must be readable by its owner \
             only (chmod 600 {shown})"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let line = text.trim_end_matches(['\n', '\r']);
    if line.is_empty() || line.contains(['\n', '\r']) {
        return Err(format!("{shown} must hold the secret on one line"));
    }
    Ok(line.to_owned())
}

/// An error with its causes, one after the other.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_of_a_jwt_is_read_and_nonsense_refused() {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"a","groups":["x"]}"#);
        let all = payload(&format!("h.{claims}.s")).unwrap();
        assert_eq!(all["groups"][0], "x");
        assert!(payload("nodots").is_err());
        assert!(payload("h.!!!.s").is_err());
        let list = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"[1]");
        assert!(payload(&format!("h.{list}.s")).is_err());
    }
}
