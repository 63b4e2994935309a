//! Integration, OpenID Connect: operators sign in through a real provider (oidc-provider,
//! tests/oidc) with the device grant: `viewer session --oidc NAME` prints the provider's page
//! and a code, a real browser (headless Chromium) signs in there, and the relay, the
//! provider's client, verifies the ID token and certifies the viewer's own key with the
//! operator's name, organisation and role from the claims. Refusals say why, in the viewer
//! and in the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use serde_json::Value;
use sightline_tests::oidc::{
    add_oidc_user, browser_login, customer_sees, default_config, relay_for, relay_with,
    spawn_viewer, viewer_command, OidcProvider, OidcUser, ALICE, BOB, CAROL, DAVE,
};
use sightline_tests::{Proc, Relay, SLOW};

/// `viewer session --oidc corp --json` against `relay`.
fn viewer(relay: &Relay, data: &Path) -> Proc {
    viewer_for(relay, data, "corp")
}

/// `viewer session --oidc PROVIDER --json` against `relay`, nothing on standard input.
fn viewer_for(relay: &Relay, data: &Path, provider: &str) -> Proc {
    spawn_viewer(&mut viewer_command(relay, data, provider))
}

/// The viewer's sign-in event, then `user` signs in at its page in the browser.
fn sign_in(viewer: &mut Proc, user: &OidcUser) -> Value {
    let shown = viewer.wait_event("oidc_sign_in", SLOW);
    let url = shown["verification_uri_complete"].as_str().unwrap();
    browser_login(url, user.username, user.password, None)
}

#[test]
fn an_operator_signs_in_at_the_provider_and_the_customer_sees_the_claims() {
    let provider = OidcProvider::start(&default_config());
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay_for(&provider, tmp.path());
    // The administrator added carol for the provider (no names of her own: the claims').
    add_oidc_user(&relay, "carol", &[]);
    let mut viewer = viewer(&relay, &tmp.path().join("viewer"));
    let browser = sign_in(&mut viewer, &CAROL);
    assert_eq!(browser["ok"], true, "{browser}");
    let login = viewer.wait_event("login", SLOW);
    assert_eq!(login["operator"], "carol", "{login}");
    // Narrowed by the provider: the group's permissions, and no longer than max_age after
    // the sign-in (the relay's own validity is 8 hours).
    assert_eq!(login["permissions"], serde_json::json!(["view"]), "{login}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires = login["certificate_expires"].as_u64().unwrap();
    assert!(expires <= now + 3600, "{login}");
    // The customer's agent shows who, from the provider's claims, certified by the relay.
    customer_sees(&relay, &mut viewer, tmp.path(), &CAROL);

    let log = relay.audit_json();
    assert!(log.contains("login.oidc.ok"), "{log}");
    assert!(
        log.contains(&format!("issuer={}", provider.issuer())),
        "{log}"
    );
    assert!(log.contains("subject=carol"), "{log}");
}

/// Signs `user` in through a fresh viewer; returns the viewer's error event.
fn refused(relay: &Relay, dir: &Path, user: &OidcUser) -> String {
    let mut viewer = viewer(relay, dir);
    let browser = sign_in(&mut viewer, user);
    assert_eq!(
        browser["ok"], true,
        "the browser step itself works: {browser}"
    );
    let error = viewer.wait_event("error", SLOW);
    viewer.wait_exit(SLOW);
    error["message"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn refusals_say_why_in_the_viewer_and_the_audit_log() {
    let provider = OidcProvider::start(&default_config());
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay_for(&provider, tmp.path());

    // In no help-desk group.
    let why = refused(&relay, &tmp.path().join("bob"), &BOB);
    assert!(why.contains("not in a group allowed"), "{why}");
    // Signed in with a password only: the relay needs the provider's second factor.
    let why = refused(&relay, &tmp.path().join("dave"), &DAVE);
    assert!(why.contains("did not use an accepted method"), "{why}");
    // A relay account the administrator disabled stays shut whatever the provider says (alice's
    // is a password account, which the provider could not sign in to anyway: disabled comes
    // first).
    let (st, _, err) = relay.cli(&["user", "disable", "alice"], None);
    assert!(st.success(), "{err}");
    let why = refused(&relay, &tmp.path().join("alice"), &ALICE);
    assert!(why.contains("disabled"), "{why}");

    let log = relay.audit_json();
    for reason in [
        "oidc user in no allowed group",
        "oidc acr not accepted",
        "oidc account disabled",
    ] {
        assert!(
            log.contains(reason),
            "{reason} not in the audit log:\n{log}"
        );
    }
    assert!(
        log.contains("subject=bob") && log.contains("subject=dave"),
        "{log}"
    );
}

#[test]
fn a_provider_that_is_down_or_unknown_is_said_plainly() {
    let mut provider = OidcProvider::start(&default_config());
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay_for(&provider, tmp.path());
    provider.stop();
    let mut v = viewer(&relay, &tmp.path().join("viewer"));
    let error = v.wait_event("error", SLOW);
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("cannot be reached"), "{error}");
    v.wait_exit(SLOW);

    let mut v = viewer_for(&relay, &tmp.path().join("viewer2"), "elsewhere");
    let error = v.wait_event("error", SLOW);
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("it offers: corp"),
        "{error}"
    );
    assert!(relay.audit_json().contains("oidc provider unreachable"));
}

#[test]
fn refused_sign_ins_count_against_the_address_like_wrong_passwords() {
    // Each start costs the relay requests to the provider: an address whose sign-ins keep
    // being refused is held back before the next one starts.
    let provider = OidcProvider::start(&default_config());
    let tmp = tempfile::tempdir().unwrap();
    let limits = "[login_limit.per_address]\nfree_failures = 1\nbase_delay_secs = 60\n\
                  max_delay_secs = 60\nforget_after_secs = 3600\n";
    let relay = relay_with(&provider, tmp.path(), limits);
    // With one free failure, the first refusal already delays the next attempt.
    let why = refused(&relay, &tmp.path().join("bob"), &BOB);
    assert!(why.contains("not in a group allowed"), "{why}");
    let mut v = viewer(&relay, &tmp.path().join("held"));
    let error = v.wait_event("error", SLOW);
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("too many failed attempts"), "{error}");
    assert!(
        !v.events().iter().any(|e| e.contains("oidc_sign_in")),
        "a held-back address got a sign-in page"
    );
}
