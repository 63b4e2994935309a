//! Integration, nothing the operator controls can forge what the customer reads: a directory
//! user whose `displayName` holds terminal escape sequences and a line break with a forged
//! verification code, and whose `o` holds a text-direction override, logs in through the real
//! viewer against a real slapd. The certificate the relay signs already carries the names
//! cleaned; the real agent shows them clean in its JSON `connected` event and in its human
//! text, where no escape byte arrives and the forged code does not start a line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_core::cert::OperatorCert;
use sightline_tests::slapd::{Slapd, BOB};
use sightline_tests::*;
use std::path::Path;
use std::process::Command;

/// Clears the screen, turns red, then a line break and a fake verification code.
const HOSTILE_NAME: &str = "\u{1b}[2J\u{1b}[31mEvil\u{1b}[0m Mallory\nVerification code: 1234 5678";
/// "Example Help Desk" with the last two words stored backwards behind a right-to-left override.
const HOSTILE_ORG: &str = "Example \u{202e}kseD pleH\u{202c}";
/// What the customer reads instead.
const CLEAN_NAME: &str = "Evil Mallory Verification code: 1234 5678";
const CLEAN_ORG: &str = "Example kseD pleH";
const FORGED: &str = "Verification code: 1234 5678";

/// Nothing in `s` that a terminal interprets or that reads differently from what it is.
fn assert_clean(what: &str, s: &str) {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
    };
    assert!(!s.chars().any(hidden), "{what}: {s:?}");
}

/// `viewer session` for the directory user bob, JSON events.
fn viewer_as_bob(relay: &Relay, dir: &Path) -> Proc {
    let mut p = Proc::spawn(
        "viewer",
        Command::new(bin("viewer"))
            .arg("--data-dir")
            .arg(dir)
            .args([
                "session",
                "--relay",
                &relay.addr,
                "--relay-key",
                &relay.fingerprint,
                "--user",
                BOB.name,
                "--password-stdin",
                "--json",
            ]),
    );
    p.send_lines(&[BOB.password, &relay.totp(BOB.name)]);
    p
}

#[test]
fn a_hostile_directory_display_name_reaches_the_customer_clean() {
    let directory = Slapd::start();
    directory.set_attribute(&BOB.dn(), "displayName", HOSTILE_NAME);
    directory.set_attribute(&BOB.dn(), "o", HOSTILE_ORG);
    // The directory holds them as given (LDIF shows such values base64-encoded).
    let entry = directory.ldapsearch(&[
        "-s",
        "base",
        "-b",
        &BOB.dn(),
        "(objectClass=*)",
        "displayName",
        "o",
    ]);
    assert!(
        entry.contains("displayName:: ") && entry.contains("o:: "),
        "{entry}"
    );

    let mut relay = Relay::with_policy(Some(&directory.ldap_toml()), None);
    relay.add_user_with(BOB.name, "", &["--ldap"]);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let vdir = tmp.path().join("viewer");
    let adir = tmp.path().join("agent");

    // The operator logs in; the certificate the relay signed (kept by the viewer for direct
    // connections) is already clean.
    let mut viewer = viewer_as_bob(&relay, &vdir);
    let code = viewer.session_code();
    let stored = vdir.join("operator-cert.bin");
    eventually("the viewer keeps the certificate", SLOW, || stored.exists());
    let body = OperatorCert::from_bytes(&std::fs::read(&stored).unwrap())
        .unwrap()
        .unverified_body()
        .unwrap();
    assert_eq!(body.operator, BOB.name);
    assert_eq!(body.display_name, CLEAN_NAME);
    assert_eq!(body.organisation, CLEAN_ORG);

    // The customer's agent, JSON events: the names in `connected` are clean.
    let mut agent = relay.agent_unanswered(&adir, &code, &[]);
    let connected = agent.wait_event("connected", SLOW);
    let peer = &connected["peer"];
    for field in ["operator", "display_name", "organisation"] {
        let text = peer[field]
            .as_str()
            .unwrap_or_else(|| panic!("{connected}"));
        assert_clean(field, text);
    }
    assert_eq!(peer["display_name"], CLEAN_NAME, "{connected}");
    assert_eq!(peer["organisation"], CLEAN_ORG, "{connected}");
    drop(agent);
    drop(viewer);

    // Again with the agent's human text, as a customer's terminal shows it.
    let x = Xvfb::start(640, 480);
    let mut viewer = viewer_as_bob(&relay, &vdir);
    let code = viewer.session_code();
    let mut agent = Proc::spawn(
        "agent",
        Command::new(bin("agent"))
            .arg("--data-dir")
            .arg(&adir)
            .args(["--relay", &relay.addr, "--relay-key", &relay.fingerprint])
            .arg(&code)
            .env("DISPLAY", &x.display)
            .env_remove("WAYLAND_DISPLAY"),
    );
    let last = agent.wait_line("Press Ctrl-C", SLOW);
    assert!(!last.is_empty());
    let text = agent.seen.join("\n");
    assert!(
        !text.contains('\u{1b}'),
        "an escape byte reached the terminal: {text:?}"
    );
    assert!(
        !text
            .chars()
            .any(|c| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
        "a text-direction control reached the terminal: {text:?}"
    );
    for line in &agent.seen {
        assert!(
            !line.trim_start().starts_with(FORGED),
            "the forged code starts a line: {text}"
        );
    }
    // The name is there, on the line that says who connected, and the real code has its own.
    assert!(
        agent.seen.iter().any(|l| l.starts_with("Connected to ")
            && l.contains(CLEAN_NAME)
            && l.contains(CLEAN_ORG)),
        "{text}"
    );
    assert_eq!(
        agent
            .seen
            .iter()
            .filter(|l| l.starts_with("Verification code: "))
            .count(),
        1,
        "{text}"
    );
    let log = agent.stderr();
    assert!(
        !log.contains("\u{1b}[2J") && !log.contains('\u{202e}'),
        "the payload reached the agent's log: {log:?}"
    );
    drop(agent);
    drop(viewer);
}

#[test]
fn relay_user_refuses_labels_that_would_not_be_shown_as_given() {
    let relay = Relay::new(None);
    let bad: [(&str, &str); 6] = [
        ("\u{1b}[2J\u{1b}[31mEvil\u{1b}[0m", "escape sequences"),
        ("Mallory\nVerification code: 1234 5678", "line breaks"),
        ("Bell\u{7}", "control characters"),
        ("Example \u{202e}kseD pleH", "text-direction"),
        ("Alice  Example", "single plain spaces"),
        (&"x".repeat(65), "at most 64 characters"),
    ];
    for (flag, other) in [("--display-name", "--org"), ("--org", "--display-name")] {
        for (value, why) in bad {
            // Refused before the password is asked for (stdin is empty here), naming the flag.
            let (st, _, err) = relay.cli(
                &["user", "add", "mallory", "--password-stdin", flag, value],
                None,
            );
            assert!(!st.success(), "{flag} {value:?} was accepted");
            assert!(
                err.contains(flag) && !err.contains(other),
                "{value:?}: {err}"
            );
            assert!(err.contains(why), "{value:?}: {err}");
            assert!(
                !err.contains('\u{1b}'),
                "the error echoes the escape: {err:?}"
            );

            let (st, _, err) = relay.cli(&["user", "set", "alice", flag, value], None);
            assert!(!st.success(), "user set {flag} {value:?} was accepted");
            assert!(err.contains(flag) && err.contains(why), "{value:?}: {err}");
        }
    }
    // Nothing was stored: no mallory, alice's labels as they were.
    let (st, out, err) = relay.cli(&["user", "list", "--json"], None);
    assert!(st.success(), "{err}");
    let users: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1, "{out}");
    let (st, out, err) = relay.cli(&["user", "show", "alice", "--json"], None);
    assert!(st.success(), "{err}");
    assert!(
        out.contains("Alice Example") && out.contains("Example Help Desk"),
        "{out}"
    );
    // Plain text is accepted, up to 64 characters, and an empty text clears a label.
    let longest = "x".repeat(64);
    let (st, _, err) = relay.cli(
        &[
            "user",
            "set",
            "alice",
            "--display-name",
            &longest,
            "--org",
            "",
        ],
        None,
    );
    assert!(st.success(), "{err}");
    let (_, out, _) = relay.cli(&["user", "show", "alice", "--json"], None);
    assert!(
        out.contains(&longest) && !out.contains("Example Help Desk"),
        "{out}"
    );
}
