//! Integration, OpenID Connect accounts: which relay account a sign-in at a real provider
//! (oidc-provider, tests/oidc) gets into. An account the administrator added with `relay user
//! add NAME --oidc corp` signs in, and its first sign-in binds it to the user at the provider;
//! with `auto_provision = true` a group member's first sign-in creates the account with the
//! group's role. A password account of the same name, a user with no account, a disabled
//! account and another user of the same name at the provider are refused, in words and in the
//! audit log; a password login to an account that signs in with the provider is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use serde_json::{json, Value};
use sightline_tests::oidc::{
    add_oidc_user, browser_login, default_config, generate_jwks, relay_for, relay_with_table,
    spawn_viewer, viewer_command, OidcProvider, OidcUser, ALICE, CAROL,
};
use sightline_tests::{Proc, Relay, PASSWORD, SLOW};

/// A help-desk operator with a second factor whom the relay has never heard of.
const ERIN: OidcUser = OidcUser {
    username: "erin",
    password: "erin's oidc password",
    name: "Erin Example",
    email: "erin@example.com",
    org: "Example Corp",
    groups: &["helpdesk-operators"],
    mfa: true,
};

/// [`default_config`] with [`ERIN`], signing with one key across restarts.
fn config() -> Value {
    let mut config = default_config();
    config["users"].as_array_mut().unwrap().push(ERIN.config());
    config["jwks"] = generate_jwks();
    config
}

/// `viewer session --oidc corp --json` against `relay`, nothing on standard input.
fn viewer(relay: &Relay, data: &Path) -> Proc {
    spawn_viewer(&mut viewer_command(relay, data, "corp"))
}

/// `user` signs in through a fresh viewer in `dir`; the viewer, after the browser's part.
fn sign_in(relay: &Relay, dir: &Path, user: &OidcUser) -> Proc {
    let mut viewer = viewer(relay, dir);
    let shown = viewer.wait_event("oidc_sign_in", SLOW);
    let url = shown["verification_uri_complete"].as_str().unwrap();
    let browser = browser_login(url, user.username, user.password, None);
    assert_eq!(
        browser["ok"], true,
        "the browser step itself works: {browser}"
    );
    viewer
}

/// `user` signs in and gets a certificate for that account; the login event.
fn signed_in(relay: &Relay, dir: &Path, user: &OidcUser) -> Value {
    let mut viewer = sign_in(relay, dir, user);
    let login = viewer.wait_event("login", SLOW);
    assert_eq!(login["operator"], user.username, "{login}");
    login
}

/// `user` signs in and is refused; the viewer's words.
fn refused(relay: &Relay, dir: &Path, user: &OidcUser) -> String {
    let mut viewer = sign_in(relay, dir, user);
    let error = viewer.wait_event("error", SLOW);
    viewer.wait_exit(SLOW);
    error["message"].as_str().unwrap_or_default().to_owned()
}

/// `relay ARGS...`, which must succeed; its standard output.
fn cli(relay: &Relay, args: &[&str]) -> String {
    let (st, out, err) = relay.cli(args, None);
    assert!(st.success(), "relay {args:?}: {err}");
    out
}

/// The account `name` as `relay user list --json` shows it.
fn listed(relay: &Relay, name: &str) -> Value {
    let all: Value = serde_json::from_str(&cli(relay, &["user", "list", "--json"])).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no account {name}: {all}"))
}

/// The relay's `relay.toml`, for `--config`.
fn relay_toml(relay: &Relay) -> String {
    relay
        .dir
        .path()
        .join("relay.toml")
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn an_account_added_with_oidc_signs_in_and_stays_with_its_user_at_the_provider() {
    let mut provider = OidcProvider::start(&config());
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay_for(&provider, tmp.path());
    // The relay's test setup made alice a password account; the administrator makes her one
    // that signs in with the provider.
    cli(&relay, &["user", "remove", "alice"]);
    let added = add_oidc_user(&relay, "alice", &["--display-name", "Alice at the desk"]);
    assert_eq!(added["added"], "alice", "{added}");
    assert_eq!(added["oidc"], "corp", "{added}");
    assert_eq!(
        added["two_factor"],
        Value::Null,
        "no authenticator: {added}"
    );
    let table = cli(&relay, &["user", "list"]);
    assert!(table.contains("operator, oidc corp"), "{table}");
    assert_eq!(
        listed(&relay, "alice")["oidc"],
        json!({"provider": "corp", "issuer": null, "subject": null})
    );
    // A provider the configuration does not have is refused, naming those it has.
    let (st, _, err) = relay.cli(
        &[
            "user",
            "add",
            "zoe",
            "--oidc",
            "crop",
            "--config",
            &relay_toml(&relay),
        ],
        None,
    );
    assert!(!st.success());
    assert!(
        err.contains("no [[oidc]] table named \"crop\" (it has: corp)"),
        "{err}"
    );

    signed_in(&relay, &tmp.path().join("alice"), &ALICE);
    // The first sign-in recorded who alice is at the provider.
    let issuer = provider.issuer().to_owned();
    assert_eq!(
        listed(&relay, "alice")["oidc"],
        json!({"provider": "corp", "issuer": issuer, "subject": "alice"})
    );
    let shown = cli(&relay, &["user", "show", "alice"]);
    assert!(
        shown.contains("none: signs in with the identity provider corp"),
        "{shown}"
    );
    assert!(shown.contains(&format!("alice at {issuer}")), "{shown}");

    // No password login to it: the same answer as a wrong password.
    let mut v = relay.viewer_with(&tmp.path().join("password"), &relay.fingerprint, PASSWORD);
    let error = v.wait_event("error", SLOW);
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("login failed"),
        "{error}"
    );
    v.wait_exit(SLOW);
    let (st, _, err) = relay.cli(
        &["user", "passwd", "alice", "--password-stdin"],
        Some("x\n"),
    );
    assert!(!st.success());
    assert!(
        err.contains("signs in with the identity provider \"corp\""),
        "{err}"
    );

    // Another person gets the user name alice at the provider (another subject): refused.
    let mut again = provider.config().clone();
    for user in again["users"].as_array_mut().unwrap() {
        if user["username"] == "alice" {
            user["sub"] = json!("alice-the-second");
        }
    }
    provider.restart(&again);
    let why = refused(&relay, &tmp.path().join("second"), &ALICE);
    assert!(
        why.contains("belongs to another user of the identity provider corp"),
        "{why}"
    );
    // Until the administrator links the account again: then the next sign-in is the user.
    let out = cli(
        &relay,
        &[
            "user",
            "set",
            "alice",
            "--oidc",
            "corp",
            "--config",
            &relay_toml(&relay),
        ],
    );
    assert!(out.contains("user at the provider forgotten"), "{out}");
    signed_in(&relay, &tmp.path().join("relinked"), &ALICE);
    assert_eq!(
        listed(&relay, "alice")["oidc"]["subject"],
        "alice-the-second"
    );

    let log = relay.audit_json();
    for want in [
        "user.oidc-bound",
        "login.oidc.ok",
        "oidc subject mismatch",
        "subject=alice-the-second",
        "signs in with an identity provider (OpenID Connect), not a password",
    ] {
        assert!(log.contains(want), "{want} not in the audit log:\n{log}");
    }
}

#[test]
fn password_accounts_unknown_users_and_disabled_accounts_are_refused() {
    let provider = OidcProvider::start(&config());
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay_for(&provider, tmp.path());

    // carol has a relay password: her account is not the provider's to sign in to.
    relay.add_user_with("carol", PASSWORD, &[]);
    let why = refused(&relay, &tmp.path().join("carol"), &CAROL);
    assert_eq!(
        why,
        "the relay account carol signs in with a password, not with corp: ask your administrator"
    );
    // erin is in the operators' group but has no relay account, and none is made.
    let why = refused(&relay, &tmp.path().join("erin"), &ERIN);
    assert_eq!(
        why,
        "you have no relay account: ask your administrator to add you (relay user add erin \
         --oidc corp)"
    );
    let (st, _, _) = relay.cli(&["user", "show", "erin"], None);
    assert!(!st.success(), "no account was made for erin");
    // An account added for the provider and disabled stays shut whatever the provider says.
    cli(&relay, &["user", "remove", "alice"]);
    add_oidc_user(&relay, "alice", &[]);
    cli(&relay, &["user", "disable", "alice"]);
    let why = refused(&relay, &tmp.path().join("alice"), &ALICE);
    assert!(why.contains("your relay account is disabled"), "{why}");

    let log = relay.audit_json();
    for reason in [
        "reason=oidc account not linked",
        "reason=oidc no relay account ",
        "reason=oidc account disabled",
        "subject=carol",
        "subject=erin",
    ] {
        assert!(
            log.contains(reason),
            "{reason} not in the audit log:\n{log}"
        );
    }
    assert!(!log.contains("login.oidc.ok"), "{log}");
    assert!(!log.contains("user.provisioned"), "{log}");
}

#[test]
fn auto_provision_creates_the_account_at_the_first_sign_in_with_the_group_role() {
    let provider = OidcProvider::start(&config());
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay_with_table(&provider, tmp.path(), "", "auto_provision = true");

    // carol is in the admins' group: her first sign-in creates her account, as an admin.
    let login = signed_in(&relay, &tmp.path().join("carol"), &CAROL);
    // The admins' group's permissions in relay.toml narrow the certificate as before.
    assert_eq!(login["permissions"], json!(["view"]), "{login}");
    let carol = listed(&relay, "carol");
    assert_eq!(carol["role"], "admin", "{carol}");
    assert_eq!(carol["source"], "oidc", "{carol}");
    assert_eq!(carol["two_factor"], false, "{carol}");
    assert_eq!(
        carol["oidc"],
        json!({"provider": "corp", "issuer": provider.issuer(), "subject": "carol"})
    );
    let table = cli(&relay, &["user", "list"]);
    assert!(table.contains("admin, oidc corp"), "{table}");
    // The next sign-in is to that account: nothing more is made.
    signed_in(&relay, &tmp.path().join("carol2"), &CAROL);
    // An existing password account is not taken over.
    let why = refused(&relay, &tmp.path().join("alice"), &ALICE);
    assert!(
        why.contains("the relay account alice signs in with a password"),
        "{why}"
    );

    let log = relay.audit_json();
    let entries: Vec<Value> = serde_json::from_str(&log).unwrap();
    let provisioned: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "user.provisioned")
        .collect();
    assert_eq!(provisioned.len(), 1, "{log}");
    assert_eq!(provisioned[0]["subject"], "carol");
    let detail = provisioned[0]["detail"].as_str().unwrap();
    assert_eq!(
        detail,
        format!(
            "role=admin provider=corp issuer={} subject=carol",
            provider.issuer()
        )
    );
    let ok = entries
        .iter()
        .filter(|e| e["action"] == "login.oidc.ok")
        .count();
    assert_eq!(ok, 2, "{log}");
}
