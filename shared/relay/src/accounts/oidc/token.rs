//! The ID token's verification, for both grants: the signature with a key of the provider's
//! published JWKS (fetched at each sign-in, so rotation is picked up) and an algorithm from the
//! table's allow list, the issuer, the audience (the relay's client id), the expiry, and in
//! the browser flow the nonce the relay sent, so that a token from an earlier sign-in cannot
//! be replayed. Then the claims, read from the verified payload. A refusal says which check
//! failed ([`TokenProblem`]): its own words for the operator and its own audit reason.
//!
//! The device grant has no nonce: nothing of the relay's travels through a browser, and no
//! token does either. What protects it instead is the way the token arrives: the relay
//! itself fetches it from the provider's token endpoint (found by discovery, over TLS with
//! the system's roots, no redirect followed), in exchange for the device code it was given
//! and its own client authentication. Nobody but the provider can put a token there, and an
//! old token the provider sent again still has to be unexpired, for this client, and signed
//! by a key the provider publishes now; `max_age` bounds how old the sign-in behind it is.

use base64::Engine;
use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJwsSigningAlgorithm};
use openidconnect::{ClaimsVerificationError, Nonce, SignatureVerificationError};
use serde_json::{Map, Value};

use super::claims::VerifiedClaims;
use super::config::OidcConfig;
use super::error::{chain, shown, OidcError, TokenProblem};

/// Verifies `id_token` (none: the provider sent none) with `verifier` (the client's, with the
/// provider's JWKS) and the table's algorithms; `nonce` is the one the relay sent in the
/// authorization request (none in the device grant, which has no browser redirect).
pub fn verify(
    cfg: &OidcConfig,
    verifier: CoreIdTokenVerifier<'_>,
    id_token: Option<&CoreIdToken>,
    nonce: Option<&Nonce>,
) -> Result<VerifiedClaims, OidcError> {
    let id_token = id_token.ok_or(OidcError::BadToken(TokenProblem::Missing))?;
    let algorithms: Vec<CoreJwsSigningAlgorithm> = cfg
        .algorithms
        .iter()
        .filter_map(|a| serde_json::from_value(Value::String(a.clone())).ok())
        .collect();
    let verifier = verifier.set_allowed_algs(algorithms);
    let checked = match nonce {
        Some(n) => id_token.claims(&verifier, n),
        None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
    };
    let jwt = id_token.to_string();
    let now = sightline_net::clock::now_unix();
    let claims = checked.map_err(|e| OidcError::BadToken(problem(&e, cfg, &jwt, now)))?;
    Ok(VerifiedClaims {
        issuer: claims.issuer().to_string(),
        subject: claims.subject().to_string(),
        auth_time: claims
            .auth_time()
            .and_then(|t| u64::try_from(t.timestamp()).ok()),
        acr: claims.auth_context_ref().map(|a| a.to_string()),
        all: payload(&jwt)?,
    })
}

/// What `e` (from verifying the compact token `jwt` under `cfg`, at `now`) says is wrong.
/// The values shown (audience, issuer, algorithm, expiry) are read from the token itself,
/// not from the crate's message, and shown quoted and short.
fn problem(e: &ClaimsVerificationError, cfg: &OidcConfig, jwt: &str, now: u64) -> TokenProblem {
    let claims = part(jwt, 1).unwrap_or_default();
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(shown);
    match e {
        ClaimsVerificationError::InvalidAudience(_) => TokenProblem::WrongAudience {
            client_id: cfg.client_id.clone(),
            found: match claims.get("aud") {
                Some(Value::String(one)) => vec![shown(one)],
                Some(Value::Array(many)) => {
                    many.iter().filter_map(Value::as_str).map(shown).collect()
                }
                _ => Vec::new(),
            },
        },
        ClaimsVerificationError::InvalidIssuer(_) => TokenProblem::WrongIssuer {
            expected: cfg.issuer.clone(),
            found: text("iss").unwrap_or_else(|| "no issuer".to_owned()),
        },
        ClaimsVerificationError::Expired(_) => TokenProblem::Expired {
            ago: claims
                .get("exp")
                .and_then(Value::as_u64)
                .map(|exp| now.saturating_sub(exp)),
        },
        ClaimsVerificationError::InvalidNonce(_) => TokenProblem::Replayed,
        ClaimsVerificationError::SignatureVerification(s) => match s {
            SignatureVerificationError::NoMatchingKey
            | SignatureVerificationError::CryptoError(_)
            | SignatureVerificationError::NoSignature => TokenProblem::BadSignature,
            SignatureVerificationError::DisallowedAlg(_)
            | SignatureVerificationError::UnsupportedAlg(_) => {
                let header = part(jwt, 0).unwrap_or_default();
                let alg = header.get("alg").and_then(Value::as_str);
                TokenProblem::DisallowedAlgorithm(alg.map_or("no algorithm".to_owned(), shown))
            }
            other => TokenProblem::Other(plain(&chain(other))),
        },
        other => TokenProblem::Other(plain(&chain(other))),
    }
}

/// The crate's words about a token, without control characters and at most 200 characters
/// (they may quote the token's header).
fn plain(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(200)
        .collect()
}

/// The claims of a compact JWT whose signature has been verified, as signed (every claim, the
/// provider's own ones included).
fn payload(jwt: &str) -> Result<Map<String, Value>, OidcError> {
    part(jwt, 1).map_err(|why| {
        OidcError::BadToken(TokenProblem::Other(format!(
            "its claims cannot be read: {why}"
        )))
    })
}

/// Part `i` of a compact JWT (0: the header, 1: the claims) as a JSON object, unverified.
fn part(jwt: &str, i: usize) -> Result<Map<String, Value>, &'static str> {
    let part = jwt.split('.').nth(i).ok_or("not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| "not base64url")?;
    serde_json::from_slice(&bytes).map_err(|_| "not a JSON object")
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
