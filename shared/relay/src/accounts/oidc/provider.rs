//! One `[[oidc]]` provider as the relay's client sees it: its discovery document (fetched at
//! each sign-in, as is its JWKS, so that a rotated key or moved endpoint is picked up), an
//! HTTP client (reqwest over rustls with the system's roots, a timeout, no redirects
//! followed), and the client id with the secret from `client_secret_file`, or none for a
//! public client. Both grants start here.

use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, ClientSecret, DeviceAuthorizationUrl, IssuerUrl,
    ProviderMetadata,
};
use serde::{Deserialize, Serialize};

use super::config::OidcConfig;
use super::error::{chain, OidcError};

/// Longest wait for one HTTP exchange with the provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The discovery document's device endpoint, which the core metadata type leaves out (absent
/// at providers without the device grant).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct DeviceEndpoint {
    #[serde(default)]
    device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
}
impl AdditionalProviderMetadata for DeviceEndpoint {}

/// The discovery document, with the device endpoint.
pub type Metadata = ProviderMetadata<
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

/// A provider, discovered.
pub struct Provider {
    /// For every request to the provider.
    pub http: openidconnect::reqwest::Client,
    metadata: Metadata,
    client_id: String,
    secret: Option<String>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", self.metadata.issuer())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Reads the client secret and fetches `cfg`'s discovery document (with its JWKS).
    pub async fn discover(cfg: &OidcConfig) -> Result<Provider, OidcError> {
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
        let metadata = Metadata::discover_async(issuer, &http)
            .await
            .map_err(|e| unreachable(chain(&e)))?;
        Ok(Provider {
            http,
            metadata,
            client_id: cfg.client_id.clone(),
            secret,
        })
    }

    /// The device authorization endpoint, when the provider has one.
    pub fn device_endpoint(&self) -> Option<DeviceAuthorizationUrl> {
        self.metadata
            .additional_metadata()
            .device_authorization_endpoint
            .clone()
    }

    /// The relay's client at this provider.
    pub fn client(
        &self,
    ) -> CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            self.metadata.clone(),
            ClientId::new(self.client_id.clone()),
            self.secret.clone().map(ClientSecret::new),
        )
    }
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
