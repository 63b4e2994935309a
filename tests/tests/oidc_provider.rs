#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The OpenID Connect test infrastructure on its own (`sightline_tests::oidc`), without any
//! Sightline code: the real oidc-provider answers discovery, the device authorization grant
//! and the authorization-code flow with PKCE on a loopback redirect URI of any port, with the
//! claims the relay will map (name, org, groups, acr, amr, auth_time); headless Chromium
//! signs in at its pages; a wrong password, a missing PKCE challenge, a restart with a new
//! signing key and an expired ID token are each what a negative test of the relay needs.

use serde_json::{json, Value};
use sightline_tests::oidc::{
    browser_login, browser_login_with, default_config, generate_jwks, jwt_claims, jwt_header,
    post_form, LoginOptions, OidcProvider, Pkce, RedirectListener, ACR_MFA, ACR_PWD, ALICE, BOB,
    DAVE, DEVICE_GRANT, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, RELAY_CLIENT_ID, RELAY_CLIENT_SECRET,
    SCOPES,
};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Polls the token endpoint for a device code (RFC 8628 §3.4) until tokens or an error
/// other than `authorization_pending`/`slow_down`.
fn poll_device_token(provider: &OidcProvider, device_code: &str) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, answer) = post_form(
            &format!("{}/token", provider.issuer()),
            Some((RELAY_CLIENT_ID, RELAY_CLIENT_SECRET)),
            &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
        );
        let pending = matches!(
            answer["error"].as_str(),
            Some("authorization_pending" | "slow_down")
        );
        if !pending || Instant::now() > deadline {
            return (status, answer);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The code flow for the relay's client: PKCE, a loopback listener on a random port,
/// Chromium signing in; returns the browser's outcome, what the listener got, and the PKCE
/// pair, state and nonce.
struct CodeFlow {
    outcome: Value,
    listener: RedirectListener,
    pkce: Pkce,
    state: String,
    nonce: String,
}

fn code_flow(provider: &OidcProvider, client: &str, user: &str, password: &str) -> CodeFlow {
    let listener = RedirectListener::start();
    let pkce = Pkce::new();
    let state = sightline_tests::oidc::random_token();
    let nonce = sightline_tests::oidc::random_token();
    let url = provider.authorization_url(
        client,
        &listener.redirect_uri(),
        SCOPES,
        &state,
        &nonce,
        &pkce,
    );
    let outcome = browser_login(&url, user, password, None);
    CodeFlow {
        outcome,
        listener,
        pkce,
        state,
        nonce,
    }
}

fn exchange(
    provider: &OidcProvider,
    flow: &CodeFlow,
    code: &str,
    verifier: &str,
    basic: Option<(&str, &str)>,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let redirect_uri = flow.listener.redirect_uri();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", verifier),
        ("redirect_uri", redirect_uri.as_str()),
    ];
    form.extend_from_slice(extra);
    post_form(&format!("{}/token", provider.issuer()), basic, &form)
}

/// `GET /me` with a bearer token: the status and the JSON body.
fn userinfo(provider: &OidcProvider, access_token: &str) -> (u16, Value) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {access_token}"))
        .arg(format!("{}/me", provider.issuer()))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), serde_json::from_str(body).unwrap())
}

#[test]
fn discovery_advertises_what_the_relay_needs() {
    let started = Instant::now();
    let provider = OidcProvider::start(&default_config());
    eprintln!("provider started in {:?}", started.elapsed());
    let issuer = provider.issuer().to_string();
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");
    let doc = provider.discovery();
    assert_eq!(doc["issuer"], issuer.as_str());
    for (key, path) in [
        ("authorization_endpoint", "/auth"),
        ("token_endpoint", "/token"),
        ("jwks_uri", "/jwks"),
        ("userinfo_endpoint", "/me"),
        ("device_authorization_endpoint", "/device/auth"),
    ] {
        assert_eq!(doc[key], format!("{issuer}{path}"), "{key}: {doc}");
    }
    let has = |key: &str, value: &str| {
        doc[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} missing: {doc}"))
            .iter()
            .any(|v| v == value)
    };
    assert!(has("id_token_signing_alg_values_supported", "RS256"));
    assert!(has("code_challenge_methods_supported", "S256"));
    assert!(!has("code_challenge_methods_supported", "plain"));
    assert!(has("response_types_supported", "code"));
    assert!(has("grant_types_supported", "authorization_code"));
    assert!(has("grant_types_supported", DEVICE_GRANT));
    assert!(has("grant_types_supported", "refresh_token"));
    for scope in ["openid", "profile", "email", "groups"] {
        assert!(has("scopes_supported", scope), "{scope}");
    }
    for claim in [
        "sub",
        "name",
        "email",
        "groups",
        "org",
        "acr",
        "amr",
        "auth_time",
    ] {
        assert!(has("claims_supported", claim), "{claim}");
    }
    assert!(has("acr_values_supported", ACR_MFA));
    assert!(has("acr_values_supported", ACR_PWD));
    assert!(has(
        "token_endpoint_auth_methods_supported",
        "client_secret_basic"
    ));

    let (status, jwks) = sightline_tests::oidc::get_json(doc["jwks_uri"].as_str().unwrap());
    assert_eq!(status, 200);
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!(keys[0]["kid"], provider.kids()[0].as_str());
    assert_eq!(keys[0]["kty"], "RSA");
    assert!(keys[0].get("d").is_none(), "the JWKS is public: {jwks}");
}

#[test]
fn device_flow_gives_the_claims_of_the_person_who_signed_in() {
    let mut provider = OidcProvider::start(&default_config());
    let auth = provider.device_authorization(SCOPES);
    let device_code = auth["device_code"].as_str().unwrap();
    assert!(auth["user_code"].is_string(), "{auth}");

    // before anyone signs in: pending
    let (status, pending) = post_form(
        &format!("{}/token", provider.issuer()),
        Some((RELAY_CLIENT_ID, RELAY_CLIENT_SECRET)),
        &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
    );
    assert_eq!(status, 400);
    assert_eq!(pending["error"], "authorization_pending", "{pending}");

    let before = now();
    let outcome = browser_login(
        auth["verification_uri_complete"].as_str().unwrap(),
        ALICE.username,
        ALICE.password,
        None,
    );
    assert_eq!(outcome["ok"], true, "{outcome}");
    assert_eq!(outcome["outcome"], "device_success", "{outcome}");
    let login = provider.wait_event("login", Duration::from_secs(5));
    assert_eq!(login["username"], "alice");

    let (status, tokens) = poll_device_token(&provider, device_code);
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(jwt_header(id_token)["alg"], "RS256");
    assert_eq!(jwt_header(id_token)["kid"], provider.kids()[0].as_str());
    let claims = jwt_claims(id_token);
    eprintln!("device flow ID token claims: {claims}");
    assert_eq!(claims["iss"], provider.issuer());
    assert_eq!(claims["aud"], RELAY_CLIENT_ID);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["name"], ALICE.name);
    assert_eq!(claims["email"], ALICE.email);
    assert_eq!(claims["org"], ALICE.org);
    assert_eq!(claims["groups"], json!(ALICE.groups));
    assert_eq!(claims["acr"], ACR_MFA);
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    let auth_time = claims["auth_time"].as_u64().unwrap();
    assert!((before..=now()).contains(&auth_time), "{claims}");
    let exp = claims["exp"].as_u64().unwrap();
    assert_eq!(exp - claims["iat"].as_u64().unwrap(), 3600);

    // the device code is used up
    let (status, again) = poll_device_token(&provider, device_code);
    assert_eq!(status, 400);
    assert_eq!(again["error"], "invalid_grant", "{again}");

    // the verification URI with the user code typed in, and a password-only user
    let auth = provider.device_authorization(SCOPES);
    let outcome = browser_login(
        auth["verification_uri"].as_str().unwrap(),
        DAVE.username,
        DAVE.password,
        auth["user_code"].as_str(),
    );
    assert_eq!(outcome["outcome"], "device_success", "{outcome}");
    let (status, tokens) = poll_device_token(&provider, auth["device_code"].as_str().unwrap());
    assert_eq!(status, 200, "{tokens}");
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "dave");
    assert_eq!(claims["acr"], ACR_PWD);
    assert_eq!(claims["amr"], json!(["pwd"]));
}

#[test]
fn code_flow_with_pkce_on_a_loopback_redirect_of_any_port() {
    let provider = OidcProvider::start(&default_config());
    let flow = code_flow(&provider, RELAY_CLIENT_ID, ALICE.username, ALICE.password);
    assert_eq!(flow.outcome["ok"], true, "{}", flow.outcome);
    assert_eq!(flow.outcome["outcome"], "redirected", "{}", flow.outcome);

    let got = flow.listener.wait(Duration::from_secs(10));
    assert_eq!(got.method, "GET");
    assert_eq!(got.params["state"], flow.state);
    assert_eq!(got.params["iss"], provider.issuer(), "RFC 9207 iss");
    let code = got.params["code"].clone();
    assert_eq!(flow.outcome["params"]["code"], code.as_str());

    // another login's code with the wrong verifier is refused
    let wrong = Pkce::new();
    let basic = Some((RELAY_CLIENT_ID, RELAY_CLIENT_SECRET));
    let flow2 = code_flow(&provider, RELAY_CLIENT_ID, ALICE.username, ALICE.password);
    let code2 = flow2.listener.wait(Duration::from_secs(10)).params["code"].clone();
    let (status, refused) = exchange(&provider, &flow2, &code2, &wrong.verifier, basic, &[]);
    assert_eq!(status, 400);
    assert_eq!(refused["error"], "invalid_grant", "{refused}");

    // the right one gives tokens
    let (status, tokens) = exchange(&provider, &flow, &code, &flow.pkce.verifier, basic, &[]);
    assert_eq!(status, 200, "{tokens}");
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    eprintln!("code flow ID token claims: {claims}");
    assert_eq!(claims["aud"], RELAY_CLIENT_ID);
    assert_eq!(claims["nonce"], flow.nonce.as_str());
    assert_eq!(claims["name"], ALICE.name);
    assert_eq!(claims["org"], ALICE.org);
    assert_eq!(claims["groups"], json!(ALICE.groups));
    assert_eq!(claims["acr"], ACR_MFA);
    assert!(claims["auth_time"].is_u64());

    // the userinfo endpoint has the same claims
    let access_token = tokens["access_token"].as_str().unwrap();
    let (status, info) = userinfo(&provider, access_token);
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["org"], ALICE.org);

    // a code is good once
    let (status, replay) = exchange(&provider, &flow, &code, &flow.pkce.verifier, basic, &[]);
    assert_eq!(status, 400);
    assert_eq!(replay["error"], "invalid_grant", "{replay}");

    // and its replay revokes what it gave (RFC 6749 §4.1.2)
    let (status, info) = userinfo(&provider, access_token);
    assert_eq!(status, 401, "{info}");
}

#[test]
fn the_other_client_gets_its_own_audience_after_consent() {
    let provider = OidcProvider::start(&default_config());
    let flow = code_flow(&provider, OTHER_CLIENT_ID, BOB.username, BOB.password);
    assert_eq!(flow.outcome["outcome"], "redirected", "{}", flow.outcome);
    assert!(
        flow.outcome["log"]
            .as_str()
            .unwrap()
            .contains("page consent"),
        "a consent page: {}",
        flow.outcome["log"]
    );
    let code = flow.listener.wait(Duration::from_secs(10)).params["code"].clone();
    // client_secret_post
    let (status, tokens) = exchange(
        &provider,
        &flow,
        &code,
        &flow.pkce.verifier,
        None,
        &[
            ("client_id", OTHER_CLIENT_ID),
            ("client_secret", OTHER_CLIENT_SECRET),
        ],
    );
    assert_eq!(status, 200, "{tokens}");
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["aud"], OTHER_CLIENT_ID);
    assert_eq!(claims["groups"], json!(["marketing"]));

    // denying consent sends access_denied to the redirect URI
    let listener = RedirectListener::start();
    let pkce = Pkce::new();
    let url = provider.authorization_url(
        OTHER_CLIENT_ID,
        &listener.redirect_uri(),
        SCOPES,
        "s",
        "n",
        &pkce,
    );
    let denied = browser_login_with(
        &url,
        BOB.username,
        BOB.password,
        &LoginOptions {
            deny: true,
            ..LoginOptions::default()
        },
    );
    assert_eq!(denied["ok"], false, "{denied}");
    assert_eq!(denied["outcome"], "redirect_error", "{denied}");
    assert_eq!(denied["error"], "access_denied", "{denied}");
    let got = listener.wait(Duration::from_secs(10));
    assert_eq!(got.params["error"], "access_denied");
}

#[test]
fn failures_are_clear_outcomes() {
    let mut provider = OidcProvider::start(&default_config());

    // wrong password: the provider's login page says so, nothing reaches the redirect URI
    let flow = code_flow(
        &provider,
        RELAY_CLIENT_ID,
        ALICE.username,
        "not alice's password",
    );
    assert_eq!(flow.outcome["ok"], false, "{}", flow.outcome);
    assert_eq!(flow.outcome["outcome"], "login_failed", "{}", flow.outcome);
    assert_eq!(flow.outcome["error"], "Invalid user name or password.");
    let failed = provider.wait_event("login_failed", Duration::from_secs(5));
    assert_eq!(failed["reason"], "wrong password");

    // an unknown user, in the device flow
    let auth = provider.device_authorization(SCOPES);
    let outcome = browser_login(
        auth["verification_uri_complete"].as_str().unwrap(),
        "mallory",
        "guess",
        None,
    );
    assert_eq!(outcome["outcome"], "login_failed", "{outcome}");
    let failed = provider.wait_event("login_failed", Duration::from_secs(5));
    assert_eq!(failed["reason"], "unknown user");

    // a user code that does not exist
    let outcome = browser_login(
        auth["verification_uri"].as_str().unwrap(),
        ALICE.username,
        ALICE.password,
        Some("BCDF-GHJK"),
    );
    assert_eq!(outcome["outcome"], "user_code_failed", "{outcome}");

    // no PKCE: the provider refuses, to the redirect URI
    let listener = RedirectListener::start();
    let url = format!(
        "{}/auth?{}",
        provider.issuer(),
        sightline_tests::oidc::form_urlencode(&[
            ("client_id", RELAY_CLIENT_ID),
            ("response_type", "code"),
            ("scope", SCOPES),
            ("redirect_uri", &listener.redirect_uri()),
            ("state", "s"),
        ])
    );
    let outcome = browser_login(&url, ALICE.username, ALICE.password, None);
    assert_eq!(outcome["outcome"], "redirect_error", "{outcome}");
    assert_eq!(outcome["error"], "invalid_request", "{outcome}");
    assert!(
        outcome["params"]["error_description"]
            .as_str()
            .unwrap()
            .contains("PKCE"),
        "{outcome}"
    );

    // a redirect URI that is not registered: the provider's error page, not a redirect
    let pkce = Pkce::new();
    let url = provider.authorization_url(
        RELAY_CLIENT_ID,
        "http://127.0.0.1:9/elsewhere",
        SCOPES,
        "s",
        "n",
        &pkce,
    );
    let outcome = browser_login(&url, ALICE.username, ALICE.password, None);
    assert_eq!(outcome["outcome"], "provider_error", "{outcome}");
    assert_eq!(outcome["error"], "invalid_redirect_uri", "{outcome}");

    // the provider down: the browser cannot reach it
    let issuer = provider.issuer().to_string();
    provider.stop();
    assert!(!provider.is_running());
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{issuer}/.well-known/openid-configuration"))
        .output()
        .unwrap();
    let status = String::from_utf8(out.stdout).unwrap();
    assert_eq!(status, "000", "nothing listens at {issuer}");
    let outcome = browser_login(
        auth["verification_uri_complete"].as_str().unwrap(),
        ALICE.username,
        ALICE.password,
        None,
    );
    assert_eq!(outcome["outcome"], "unreachable", "{outcome}");
    assert!(
        outcome["error"]
            .as_str()
            .unwrap()
            .contains("ERR_CONNECTION_REFUSED"),
        "{outcome}"
    );
}

#[test]
fn restart_with_a_new_key_and_short_lived_id_tokens() {
    // a fixed key survives a restart; a new one does not
    let jwks = generate_jwks();
    let mut config = default_config();
    config["jwks"] = jwks.clone();
    let mut provider = OidcProvider::start(&config);
    let kid = provider.kids()[0].clone();
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str());
    let issuer = provider.issuer().to_string();

    let started = Instant::now();
    provider.restart(&config);
    eprintln!("provider restarted in {:?}", started.elapsed());
    assert_eq!(provider.issuer(), issuer, "same port, same issuer");
    assert_eq!(provider.kids(), std::slice::from_ref(&kid));

    // another key, and ID tokens that live 2 s
    let mut short = default_config();
    short["ttl"]["id_token"] = json!(2);
    provider.restart(&short);
    assert_eq!(provider.issuer(), issuer);
    assert_ne!(provider.kids()[0], kid, "a fresh key");
    let (_, published) = sightline_tests::oidc::get_json(&format!("{issuer}/jwks"));
    assert!(
        !published["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid.as_str()),
        "the old key is gone from the JWKS: {published}"
    );

    let auth = provider.device_authorization(SCOPES);
    let outcome = browser_login(
        auth["verification_uri_complete"].as_str().unwrap(),
        ALICE.username,
        ALICE.password,
        None,
    );
    assert_eq!(outcome["outcome"], "device_success", "{outcome}");
    let (status, tokens) = poll_device_token(&provider, auth["device_code"].as_str().unwrap());
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims = jwt_claims(id_token);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        2
    );
    assert_eq!(jwt_header(id_token)["kid"], provider.kids()[0].as_str());
}
