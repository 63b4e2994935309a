//! Integration, OpenID Connect in the operator's browser: `viewer session --oidc corp
//! --browser` has the relay start the authorization-code flow with PKCE, opens the page with
//! `$BROWSER` (here a script running headless Chromium, which signs in at the real provider's
//! page), takes the provider's answer on its loopback listener and passes it to the relay,
//! which redeems the code and certifies the viewer's key. A forged answer sent to the
//! viewer's loopback port by another program is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::path::Path;

use serde_json::Value;
use sightline_tests::oidc::{
    browser_script, customer_sees, default_config, parse_query, relay_for, relay_with_table,
    spawn_viewer, viewer_command, OidcProvider, OidcUser, CAROL,
};
use sightline_tests::{Proc, Relay, SLOW};

/// `viewer session --oidc corp --browser --json`, its browser the script, signing in as
/// `user` (none: the page is only noted).
fn viewer(relay: &Relay, dir: &Path, user: Option<&OidcUser>) -> Proc {
    let mut cmd = viewer_command(relay, &dir.join("viewer"), "corp");
    cmd.arg("--browser")
        .env("BROWSER", browser_script(dir))
        .env("SL_OUT", dir.join("browser.out"))
        .env_remove("SL_USER");
    if let Some(u) = user {
        cmd.env("SL_USER", u.username)
            .env("SL_PASSWORD", u.password);
    }
    spawn_viewer(&mut cmd)
}

#[test]
fn an_operator_signs_in_in_the_system_browser_and_the_customer_sees_the_claims() {
    let provider = OidcProvider::start(&default_config());
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay_with_table(&provider, tmp.path(), "", "auto_provision = true");
    let mut viewer = viewer(&relay, tmp.path(), Some(&CAROL));

    let opened = viewer.wait_event("oidc_browser", SLOW);
    assert_eq!(opened["opened"], true, "{opened}");
    let url = opened["url"].as_str().unwrap();
    // The relay's request: its own client, PKCE (S256), a state and a nonce, the viewer's
    // loopback redirect; no secret.
    let query = parse_query(url.split_once('?').unwrap().1);
    assert!(url.starts_with(provider.issuer()), "{url}");
    assert_eq!(query["code_challenge_method"], "S256", "{url}");
    for key in ["code_challenge", "state", "nonce"] {
        assert!(
            query.get(key).is_some_and(|v| v.len() >= 16),
            "{key}: {url}"
        );
    }
    assert!(
        query["redirect_uri"].starts_with("http://127.0.0.1:")
            && query["redirect_uri"].ends_with("/callback"),
        "{url}"
    );
    assert!(!url.contains("secret"), "{url}");

    let login = viewer.wait_event("login", SLOW);
    assert_eq!(login["operator"], "carol", "{login}");
    assert_eq!(login["permissions"], serde_json::json!(["view"]), "{login}");
    let browser: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("browser.out")).unwrap())
            .unwrap();
    assert_eq!(browser["outcome"], "redirected", "{browser}");

    customer_sees(&relay, &mut viewer, tmp.path(), &CAROL);

    let log = relay.audit_json();
    assert!(
        log.contains("login.oidc.ok") && log.contains("subject=carol"),
        "{log}"
    );
}

/// Sends `GET target` to 127.0.0.1:`port`; the status line.
fn get(port: u16, target: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn a_forged_answer_on_the_viewers_loopback_port_is_refused() {
    // Another program on the operator's machine gets to the loopback port first, with a code
    // and a state of its own: the relay refuses it, says so, and audits it.
    let provider = OidcProvider::start(&default_config());
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay_for(&provider, tmp.path());
    let mut viewer = viewer(&relay, tmp.path(), None);
    let opened = viewer.wait_event("oidc_browser", SLOW);
    let url = opened["url"].as_str().unwrap();
    let query = parse_query(url.split_once('?').unwrap().1);
    let port: u16 = query["redirect_uri"]
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/callback")
        .parse()
        .unwrap();
    assert!(get(port, "/favicon.ico").contains("404"));
    assert!(get(port, "/callback?code=stolen&state=guessed").contains("200"));

    let error = viewer.wait_event("error", SLOW);
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("belongs to another sign-in"), "{error}");
    assert!(!viewer.events().iter().any(|e| e.contains("\"login\"")));
    viewer.wait_exit(SLOW);
    let log = relay.audit_json();
    assert!(log.contains("oidc redirect refused"), "{log}");
}
