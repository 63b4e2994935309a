//! Operators who sign in with the organisation's OpenID Connect provider: the `[[oidc]]`
//! tables ([`config`]), what the claims of a verified ID token make of an operator
//! ([`claims`]), which relay account that is ([`provision`]), the provider as the relay's
//! client sees it ([`provider`]), the two grants ([`browser`]: authorization code with PKCE;
//! [`device`]: the device grant), and the ID token's verification ([`token`]). The
//! connection's side is [`crate::net::oidc_login`].

pub mod browser;
pub mod claims;
pub mod config;
pub mod device;
pub mod error;
pub mod provider;
pub mod provision;
pub mod token;
