//! ID tokens signed here with real RSA keys (RS256), verified by the crate's verifier as the
//! relay uses it: each refusal is classified, and nothing of the token reaches the words.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use openidconnect::core::{CoreJsonWebKey, CoreJsonWebKeySet};
use openidconnect::{ClientId, IssuerUrl, JsonWebKeyId};
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::json;

use super::*;

const ISSUER: &str = "https://idp.example";
const KID: &str = "the-provider-key";
const NONCE: &str = "the nonce of this sign-in";

/// The provider's key, and another that it does not publish.
fn keys() -> &'static (RsaPrivateKey, RsaPrivateKey) {
    static KEYS: OnceLock<(RsaPrivateKey, RsaPrivateKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = || RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        (key(), key())
    })
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWT of `header` and `claims`, signed RS256 with `key`.
fn sign(key: &RsaPrivateKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signer = SigningKey::<sha2::Sha256>::new(key.clone());
    format!("{input}.{}", b64(&signer.sign(input.as_bytes()).to_vec()))
}

fn good_claims() -> Value {
    let now = sightline_net::clock::now_unix();
    json!({
        "iss": ISSUER, "aud": "relay", "sub": "carol", "nonce": NONCE,
        "iat": now, "exp": now + 600, "auth_time": now, "acr": "mfa",
        "groups": ["helpdesk-admins"],
    })
}

fn rs256() -> Value {
    json!({"alg": "RS256", "kid": KID})
}

fn cfg() -> OidcConfig {
    let text = format!("name = \"corp\"\nissuer = \"{ISSUER}\"\nclient_id = \"relay\"\n");
    toml::from_str(&text).unwrap()
}

/// Verifies `jwt` as the relay does, the provider publishing only its own key.
fn check(jwt: &str, nonce: Option<&str>) -> Result<VerifiedClaims, OidcError> {
    let public = keys().0.to_public_key();
    let jwk = CoreJsonWebKey::new_rsa(
        public.n().to_bytes_be(),
        public.e().to_bytes_be(),
        Some(JsonWebKeyId::new(KID.to_owned())),
    );
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new("relay".to_owned()),
        IssuerUrl::new(ISSUER.to_owned()).unwrap(),
        CoreJsonWebKeySet::new(vec![jwk]),
    );
    let token: CoreIdToken = jwt.parse().unwrap();
    let nonce = nonce.map(|n| Nonce::new(n.to_owned()));
    verify(&cfg(), verifier, Some(&token), nonce.as_ref())
}

/// The problem `check` finds, with its words checked for the token's contents.
fn refused(jwt: &str, nonce: Option<&str>) -> TokenProblem {
    match check(jwt, nonce) {
        Err(OidcError::BadToken(p)) => {
            let words = p.to_string();
            // No part of the JWT (base64url JSON starts with "eyJ"), nor the nonce.
            assert!(!words.contains("eyJ") && !words.contains(NONCE), "{words}");
            p
        }
        other => panic!("not refused as a bad token: {other:?}"),
    }
}

fn with(change: Value) -> Value {
    let mut claims = good_claims();
    for (k, v) in change.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

#[test]
fn a_good_token_gives_its_claims_with_or_without_a_nonce() {
    let jwt = sign(&keys().0, &rs256(), &good_claims());
    for nonce in [Some(NONCE), None] {
        let claims = check(&jwt, nonce).unwrap();
        assert_eq!(claims.subject, "carol");
        assert_eq!(claims.acr.as_deref(), Some("mfa"));
        assert_eq!(claims.all["groups"][0], "helpdesk-admins");
    }
}

#[test]
fn a_token_for_another_application_is_refused_naming_its_audience() {
    let jwt = sign(&keys().0, &rs256(), &with(json!({"aud": "other-app"})));
    let p = refused(&jwt, Some(NONCE));
    assert_eq!(
        p,
        TokenProblem::WrongAudience {
            client_id: "relay".into(),
            found: vec!["\"other-app\"".into()]
        }
    );
    assert_eq!(p.audit_reason(), "oidc token wrong audience");
    // An extra audience the relay does not trust is refused too.
    let jwt = sign(
        &keys().0,
        &rs256(),
        &with(json!({"aud": ["relay", "other-app"]})),
    );
    assert!(matches!(
        refused(&jwt, None),
        TokenProblem::WrongAudience { .. }
    ));
}

#[test]
fn a_token_from_another_issuer_is_refused() {
    let jwt = sign(
        &keys().0,
        &rs256(),
        &with(json!({"iss": "https://evil.example"})),
    );
    let p = refused(&jwt, None);
    assert_eq!(
        p,
        TokenProblem::WrongIssuer {
            expected: ISSUER.into(),
            found: "\"https://evil.example\"".into()
        }
    );
}

#[test]
fn a_key_the_provider_does_not_publish_is_a_bad_signature() {
    let foreign = &keys().1;
    // Claiming the provider's key id, or another one: the same refusal.
    for header in [rs256(), json!({"alg": "RS256", "kid": "elsewhere"})] {
        let jwt = sign(foreign, &header, &good_claims());
        assert_eq!(refused(&jwt, Some(NONCE)), TokenProblem::BadSignature);
    }
    // Unsigned.
    let header = b64(json!({"alg": "none"}).to_string().as_bytes());
    let claims = b64(good_claims().to_string().as_bytes());
    let p = refused(&format!("{header}.{claims}."), None);
    assert_eq!(p, TokenProblem::BadSignature);
    assert_eq!(p.audit_reason(), "oidc token bad signature");
}

#[test]
fn an_algorithm_outside_the_list_is_named() {
    let jwt = sign(
        &keys().0,
        &json!({"alg": "HS256", "kid": KID}),
        &good_claims(),
    );
    assert_eq!(
        refused(&jwt, None),
        TokenProblem::DisallowedAlgorithm("\"HS256\"".into())
    );
}

#[test]
fn an_expired_token_says_how_long_ago_by_the_relays_clock() {
    let now = sightline_net::clock::now_unix();
    let jwt = sign(
        &keys().0,
        &rs256(),
        &with(json!({"iat": now - 4000, "exp": now - 400})),
    );
    match refused(&jwt, Some(NONCE)) {
        TokenProblem::Expired { ago: Some(ago) } => assert!((400..460).contains(&ago), "{ago}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_token_of_another_sign_in_is_refused_as_replayed() {
    let jwt = sign(&keys().0, &rs256(), &good_claims());
    let p = refused(&jwt, Some("the nonce of the next sign-in"));
    assert_eq!(p, TokenProblem::Replayed);
    assert_eq!(p.audit_reason(), "oidc token replayed");
    // No nonce at all, where the relay sent one.
    let mut claims = good_claims();
    claims.as_object_mut().unwrap().remove("nonce");
    let jwt = sign(&keys().0, &rs256(), &claims);
    assert_eq!(refused(&jwt, Some(NONCE)), TokenProblem::Replayed);
}

#[test]
fn no_token_at_all_is_said() {
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new("relay".to_owned()),
        IssuerUrl::new(ISSUER.to_owned()).unwrap(),
        CoreJsonWebKeySet::new(Vec::new()),
    );
    let e = verify(&cfg(), verifier, None, None).unwrap_err();
    assert_eq!(e.audit_reason(), "oidc token missing");
}

#[test]
fn the_parts_of_a_jwt_are_read_and_nonsense_refused() {
    let all = payload(&format!("h.{}.s", b64(br#"{"sub":"a","groups":["x"]}"#))).unwrap();
    assert_eq!(all["groups"][0], "x");
    assert!(payload("nodots").is_err());
    assert!(payload("h.!!!.s").is_err());
    assert!(payload(&format!("h.{}.s", b64(b"[1]"))).is_err());
    assert_eq!(plain("a\nb\u{7}c"), "a?b?c");
    assert_eq!(plain(&"x".repeat(500)).len(), 200);
}
