//! Operators who sign in with the organisation's OpenID Connect provider: the `[[oidc]]`
//! tables ([`config`]) and what the claims of a verified ID token make of an operator
//! ([`claims`]). Both are sans-IO.
//!
//! Not yet reachable: the relay does not read `[[oidc]]` from `relay.toml` until the sign-in
//! flows (the relay-mediated authorization code with PKCE and the device grant) exist.

pub mod claims;
pub mod config;
