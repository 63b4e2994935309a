//! Integration, OpenID Connect: the relay refuses ID tokens that do not verify, and says which
//! check failed, in words in the viewer and as a reason in the audit log. The provider is the
//! real one of the other OIDC tests (oidc-provider, tests/oidc) made to misbehave: with
//! `tamper_id_token` it rewrites the ID token of its token endpoint's answers (another
//! audience, a key it does not publish, an expiry in the past, the first token again), signed
//! as a broken or hostile provider would. The user signs in for real in headless Chromium;
//! no certificate comes of it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use serde_json::Value;
use sightline_tests::oidc::{
    browser_login, relay_for, spawn_viewer, tampering_config, viewer_command, OidcProvider, Tamper,
    CAROL, OTHER_CLIENT_ID, RELAY_CLIENT_ID,
};
use sightline_tests::{Proc, Relay, SLOW};

/// `viewer session --oidc corp --json` against `relay` with `extra` arguments; `BROWSER` is
/// `true` (a `--browser` sign-in's page is opened by the test's own browser instead).
fn viewer(relay: &Relay, data: &Path, extra: &[&str]) -> Proc {
    spawn_viewer(
        viewer_command(relay, data, "corp")
            .env("BROWSER", "true")
            .args(extra),
    )
}

/// The viewer's first `login` or `error` event.
fn outcome(viewer: &mut Proc) -> Value {
    while let Some(line) = viewer.next_line(SLOW) {
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        if v["event"] == "login" || v["event"] == "error" {
            return v;
        }
    }
    panic!("the viewer ended without login or error: {:?}", viewer.seen)
}

/// Carol signs in with the device grant (`viewer session --oidc corp`) at `provider`, which
/// rewrites her ID token; returns the viewer's error message, after checking that the
/// browser step itself worked, that the provider did tamper, and that no login came of it.
fn device_refusal(relay: &Relay, provider: &mut OidcProvider, data: &Path) -> String {
    let mut v = viewer(relay, data, &[]);
    let shown = v.wait_event("oidc_sign_in", SLOW);
    let url = shown["verification_uri_complete"].as_str().unwrap();
    let browser = browser_login(url, CAROL.username, CAROL.password, None);
    assert_eq!(
        browser["ok"], true,
        "the browser step itself works: {browser}"
    );
    provider.wait_event("tampered", SLOW);
    let end = outcome(&mut v);
    assert_eq!(end["event"], "error", "{end}");
    v.wait_exit(SLOW);
    assert!(
        !v.events().iter().any(|e| e == "login" || e == "code"),
        "{:?}",
        v.seen
    );
    let message = end["message"].as_str().unwrap_or_default().to_owned();
    eprintln!("the viewer says: {message}");
    // Nothing of the token (a JWT's base64url JSON starts with "eyJ") reaches the operator.
    assert!(!message.contains("eyJ"), "{message}");
    message
}

/// The audit log holds `reason` for a refused sign-in at `provider`, and no login.
fn audited(relay: &Relay, provider: &OidcProvider, reason: &str) {
    let log = relay.audit_json();
    let detail = format!("reason={reason} issuer={}", provider.issuer());
    assert!(log.contains("login.oidc.refused"), "{log}");
    assert!(
        log.contains(&detail),
        "{detail} not in the audit log:\n{log}"
    );
    assert!(
        !log.contains("login.oidc.ok") && !log.contains("\"login.ok\""),
        "{log}"
    );
}

#[test]
fn a_token_for_another_application_is_refused_as_the_wrong_audience() {
    let mut provider = OidcProvider::start(&tampering_config(Tamper::Audience));
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay_for(&provider, tmp.path());
    let why = device_refusal(&relay, &mut provider, &tmp.path().join("viewer"));
    assert!(
        why.contains(&format!(
            "token was issued for another application (audience \"{OTHER_CLIENT_ID}\"), not \
             this relay (client_id \"{RELAY_CLIENT_ID}\"): ask your administrator to check \
             client_id"
        )),
        "{why}"
    );
    audited(&relay, &provider, "oidc token wrong audience");
}

#[test]
fn a_token_signed_with_a_key_not_in_the_jwks_is_refused_as_a_bad_signature() {
    // The forged header names the provider's own key, then a key id of its own: both fail.
    let mut provider = OidcProvider::start(&tampering_config(Tamper::ForeignKey));
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay_for(&provider, tmp.path());
    for (i, tamper) in [Tamper::ForeignKey, Tamper::ForeignKid]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            provider.restart(&tampering_config(tamper));
        }
        let data = tmp.path().join(format!("viewer-{}", tamper.name()));
        let why = device_refusal(&relay, &mut provider, &data);
        assert!(
            why.contains(
                "the token's signature does not match any key the identity provider publishes"
            ),
            "{tamper:?}: {why}"
        );
    }
    audited(&relay, &provider, "oidc token bad signature");
    assert_eq!(
        relay
            .audit_json()
            .matches("oidc token bad signature")
            .count(),
        2
    );
}

#[test]
fn an_expired_token_is_refused_pointing_at_the_clocks() {
    let mut provider = OidcProvider::start(&tampering_config(Tamper::Expired));
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay_for(&provider, tmp.path());
    let why = device_refusal(&relay, &mut provider, &tmp.path().join("viewer"));
    // The provider's copy expired 600 s before it sent it.
    assert!(
        why.contains("the identity provider's token has expired (6"),
        "{why}"
    );
    assert!(
        why.contains(
            "s ago by the relay's clock): check that the relay's and the provider's clocks agree"
        ),
        "{why}"
    );
    audited(&relay, &provider, "oidc token expired");
}

/// Carol signs in with `viewer session --oidc corp --browser`; the viewer's outcome.
fn browser_sign_in(relay: &Relay, data: &Path) -> (Proc, Value) {
    let mut v = viewer(relay, data, &["--browser"]);
    let shown = v.wait_event("oidc_browser", SLOW);
    let url = shown["url"].as_str().unwrap();
    let browser = browser_login(url, CAROL.username, CAROL.password, None);
    assert_eq!(
        browser["ok"], true,
        "the browser step itself works: {browser}"
    );
    let end = outcome(&mut v);
    (v, end)
}

#[test]
fn a_replayed_token_is_refused_in_the_browser_sign_in() {
    // The provider answers every sign-in after the first with the first one's ID token: its
    // nonce is not the one the relay sent for the second.
    let mut provider = OidcProvider::start(&tampering_config(Tamper::Replay));
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay_for(&provider, tmp.path());
    let (_first, first_end) = browser_sign_in(&relay, &tmp.path().join("first"));
    provider.wait_event("tampered", SLOW);
    // The first token is the real one: whatever the account rules make of carol, the token
    // itself verified.
    let log = relay.audit_json();
    assert!(
        !log.contains("reason=oidc token"),
        "first sign-in ({first_end}):\n{log}"
    );

    let (mut second, end) = browser_sign_in(&relay, &tmp.path().join("second"));
    provider.wait_event("tampered", SLOW);
    assert_eq!(end["event"], "error", "{end}");
    let why = end["message"].as_str().unwrap_or_default();
    eprintln!("first sign-in: {first_end}\nthe viewer says: {why}");
    assert!(
        why.contains(
            "the token does not belong to this sign-in (it may be replayed): sign in again"
        ),
        "{why}"
    );
    second.wait_exit(SLOW);
    assert!(
        !second.events().iter().any(|e| e == "login"),
        "{:?}",
        second.seen
    );
    let log = relay.audit_json();
    let detail = format!("reason=oidc token replayed issuer={}", provider.issuer());
    assert!(
        log.contains(&detail),
        "{detail} not in the audit log:\n{log}"
    );
    assert_eq!(log.matches("reason=oidc token").count(), 1, "{log}");
}
