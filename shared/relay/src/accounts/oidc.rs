//! Operators who sign in with the organisation's OpenID Connect provider: the `[[oidc]]`
//! tables ([`config`]), what the claims of a verified ID token make of an operator
//! ([`claims`]), both sans-IO, and the device grant with the provider ([`device`]). The
//! connection's side is [`crate::net::oidc_login`].

pub mod claims;
pub mod config;
pub mod device;
