//! The authorization-code flow with PKCE (RFC 7636) in the operator's system browser, the relay
//! being the (confidential) client and the viewer's loopback listener the redirect (RFC 8252):
//!
//! 1. the relay builds the authorization request with a fresh PKCE verifier, state and nonce,
//!    all kept here, and the viewer opens it in the browser;
//! 2. the provider sends the browser back to `http://127.0.0.1:PORT/...` on the operator's
//!    machine, where the viewer takes the query and passes it on unread;
//! 3. the relay checks the state, redeems the code with the verifier (and its client secret),
//!    and verifies the ID token, its nonce included ([`super::token`]).
//!
//! The viewer never holds the verifier, the secret or a token: a code that leaks from the
//! browser or the loopback port is useless without the verifier, and a redirect forged by
//! another program on the machine fails the state check.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge,
    RedirectUrl, RequestTokenError, Scope, TokenResponse,
};

use super::claims::VerifiedClaims;
use super::config::OidcConfig;
use super::error::{chain, OidcError};
use super::provider::Provider;
use super::token;

/// Longest the relay waits for the browser to come back.
pub const MAX_WAIT: Duration = super::device::MAX_WAIT;

/// Longest query the viewer may pass on (a provider's answer is a few hundred bytes).
const MAX_QUERY: usize = 8 * 1024;

/// Runs the flow with `cfg`'s provider and the viewer's `redirect_uri`: `visit` gets the
/// authorization URL to open and returns the query the browser brought back.
pub async fn sign_in<F, Fut>(
    cfg: &OidcConfig,
    redirect_uri: &str,
    visit: F,
) -> Result<VerifiedClaims, OidcError>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<String, OidcError>>,
{
    let redirect = loopback_redirect(redirect_uri).map_err(OidcError::BadRedirect)?;
    let provider = Provider::discover(cfg).await?;
    let client = provider.client().set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        // `openid` is always asked for.
        .add_scopes(
            cfg.scopes
                .iter()
                .filter(|s| *s != "openid")
                .map(|s| Scope::new(s.clone())),
        );
    if let Some(max_age) = cfg.max_age {
        // The provider asks the operator to sign in again rather than the relay refusing.
        request = request.set_max_age(Duration::from_secs(max_age));
    }
    for acr in &cfg.require_acr {
        request = request.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
    }
    let (url, state, nonce) = request.url();
    let query = visit(url.to_string()).await?;
    let code = answer(cfg, &query, state.secret())?;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| OidcError::Unreachable {
            provider: cfg.name.clone(),
            detail: e.to_string(),
        })?
        // The client's redirect goes with it, as the provider requires.
        .set_pkce_verifier(verifier)
        .request_async(&provider.http)
        .await
        .map_err(|e| match e {
            // The provider would not redeem the code (spent, expired, not this client's).
            RequestTokenError::ServerResponse(_) => OidcError::NotCompleted {
                provider: cfg.name.clone(),
                detail: chain(&e),
            },
            _ => OidcError::Unreachable {
                provider: cfg.name.clone(),
                detail: chain(&e),
            },
        })?;
    token::verify(
        cfg,
        client.id_token_verifier(),
        token.id_token(),
        Some(&nonce),
    )
}

/// A redirect the relay lets the provider use: plain http to the operator's own machine by
/// IP literal (RFC 8252 §7.3, §8.3: `localhost` may resolve elsewhere), with a port, and
/// nothing that could carry the answer anywhere else (no user, query or fragment).
pub fn loopback_redirect(uri: &str) -> Result<RedirectUrl, String> {
    let refuse = |why: &str| format!("the viewer's redirect {uri:?} {why}");
    let url = url::Url::parse(uri).map_err(|e| refuse(&format!("is not a URL ({e})")))?;
    if url.scheme() != "http" {
        return Err(refuse("is not http on the loopback address"));
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        _ => false,
    };
    if !loopback {
        return Err(refuse("is not on 127.0.0.1 or [::1]"));
    }
    if url.port().is_none() {
        return Err(refuse("names no port"));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(refuse("carries a user, query or fragment"));
    }
    RedirectUrl::new(uri.to_owned()).map_err(|e| refuse(&e.to_string()))
}

/// The code in the browser's answer `query`, once its state is `state`; the provider's own
/// refusal ("access_denied") in words.
pub fn answer(cfg: &OidcConfig, query: &str, state: &str) -> Result<String, OidcError> {
    if query.len() > MAX_QUERY {
        return Err(OidcError::BadRedirect("the answer is too long".into()));
    }
    let mut got_state = None;
    let (mut code, mut error, mut description) = (None, None, None);
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "state" => &mut got_state,
            "code" => &mut code,
            "error" => &mut error,
            "error_description" => &mut description,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(OidcError::BadRedirect(format!(
                "the answer repeats {key:?}"
            )));
        }
    }
    // A state from another sign-in, or none: not this sign-in's answer (a forged redirect).
    if got_state.as_deref() != Some(state) {
        return Err(OidcError::BadRedirect(
            "the answer belongs to another sign-in (its state does not match)".into(),
        ));
    }
    if let Some(error) = error {
        let detail = match description {
            Some(d) => format!("the provider answered {error}: {d}"),
            None => format!("the provider answered {error}"),
        };
        return Err(OidcError::NotCompleted {
            provider: cfg.name.clone(),
            detail,
        });
    }
    code.filter(|c| !c.is_empty())
        .ok_or_else(|| OidcError::BadRedirect("the answer has no code".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> OidcConfig {
        toml::from_str(
            r#"name = "corp"
issuer = "https://id.example.com"
client_id = "relay""#,
        )
        .unwrap()
    }

    #[test]
    fn only_loopback_ip_literals_with_a_port_are_redirects() {
        for ok in [
            "http://127.0.0.1:49152/callback",
            "http://[::1]:8080/callback",
            "http://127.0.0.1:1/",
        ] {
            assert!(loopback_redirect(ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://127.0.0.1:49152/callback",
            "http://localhost:49152/callback",
            "http://example.com:80/callback",
            "http://10.0.0.1:8080/callback",
            "http://127.0.0.1/callback",
            "http://u:p@127.0.0.1:8080/callback",
            "http://127.0.0.1:8080/callback?next=https://evil",
            "http://127.0.0.1:8080/callback#x",
            "not a url",
            "",
        ] {
            assert!(loopback_redirect(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_answer_must_carry_this_sign_ins_state() {
        let c = cfg();
        assert_eq!(answer(&c, "code=abc&state=s1", "s1").unwrap(), "abc");
        assert_eq!(
            answer(&c, "state=s1&code=a%2Bb&iss=x", "s1").unwrap(),
            "a+b"
        );
        for forged in ["code=abc&state=s2", "code=abc", "code=abc&state=", ""] {
            let e = answer(&c, forged, "s1").unwrap_err();
            assert!(matches!(e, OidcError::BadRedirect(_)), "{forged}: {e}");
        }
        let e = answer(&c, "code=a&code=b&state=s1", "s1").unwrap_err();
        assert!(matches!(e, OidcError::BadRedirect(_)), "{e}");
        let e = answer(&c, "state=s1", "s1").unwrap_err();
        assert!(e.to_string().contains("no code"), "{e}");
        let long = format!("state=s1&code={}", "a".repeat(MAX_QUERY));
        assert!(answer(&c, &long, "s1").is_err());
    }

    #[test]
    fn the_providers_refusal_is_said() {
        let e = answer(
            &cfg(),
            "error=access_denied&error_description=End-User+aborted&state=s1",
            "s1",
        )
        .unwrap_err();
        assert!(matches!(e, OidcError::NotCompleted { .. }), "{e}");
        assert!(
            e.to_string().contains("access_denied: End-User aborted"),
            "{e}"
        );
    }
}
