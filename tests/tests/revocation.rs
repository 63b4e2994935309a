#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Integration, revocation: disabling an operator's account, or `relay cert revoke`, ends the
//! operator's running relayed session within 5 s (the `relay user` and `relay cert` commands
//! run in another process than `relay serve`); a kiosk with `--revocation-list` refuses a
//! revoked certificate once its file holds the newer list; a kiosk that a viewer brings the
//! newer list to adopts it (writing it to its file) and refuses the revoked certificate too;
//! and a kiosk does not start with a list that does not verify.

use sightline_core::revocation::RevocationList;
use sightline_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);
/// What the help desk is promised.
const PROMISED: Duration = Duration::from_secs(5);

/// Starts a relayed session (alice's viewer, an agent in `dir` that allows viewing) and waits
/// until pictures flow.
fn running_session(relay: &Relay, dir: &Path) -> (Proc, Proc) {
    let mut viewer = relay.viewer(&dir.join("viewer"));
    let digits = viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let mut agent = relay.agent(&dir.join("agent"), &digits);
    agent.wait_event("sharing", SLOW);
    viewer.wait_event("frame", T);
    (viewer, agent)
}

/// Waits for both ends of a session to see it end; returns how long after `from` the later
/// one did.
fn both_end(viewer: &mut Proc, agent: &mut Proc, from: Instant) -> Duration {
    viewer.wait_event("closed", T);
    let viewer_at = from.elapsed();
    agent.wait_event("closed", T);
    let agent_at = from.elapsed();
    viewer.wait_exit(T);
    agent.wait_exit(T);
    viewer_at.max(agent_at)
}

/// Serials of alice's certificates still valid (`relay cert list`).
fn valid_serials(relay: &Relay) -> Vec<u64> {
    let (st, out, err) = relay.cli(&["cert", "list", "--user", "alice", "--json"], None);
    assert!(st.success(), "relay cert list failed: {err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .filter(|c| c["revoked_at"].is_null())
        .map(|c| c["serial"].as_u64().unwrap())
        .collect()
}

#[test]
fn disabling_the_account_or_revoking_the_certificate_ends_running_sessions_within_5_s() {
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();

    // Disabled while sharing.
    let (mut viewer, mut agent) = running_session(&relay, &tmp.path().join("one"));
    let asked = Instant::now();
    let (st, out, err) = relay.cli(&["user", "disable", "alice"], None);
    assert!(st.success(), "relay user disable failed: {err}");
    assert!(out.contains("revoked 1 certificate"), "{out}");
    let took = both_end(&mut viewer, &mut agent, asked);
    assert!(
        took < PROMISED,
        "the session ended {took:?} after the account was disabled"
    );
    assert!(relay
        .log()
        .contains("the operator's certificate was revoked"));
    assert!(valid_serials(&relay).is_empty());

    // Enabled again, a new login; that certificate revoked by serial while sharing.
    let (st, _, err) = relay.cli(&["user", "enable", "alice"], None);
    assert!(st.success(), "{err}");
    let (mut viewer, mut agent) = running_session(&relay, &tmp.path().join("two"));
    let serials = valid_serials(&relay);
    assert_eq!(serials.len(), 1, "{serials:?}");
    let asked = Instant::now();
    let (st, out, err) = relay.cli(&["cert", "revoke", &serials[0].to_string()], None);
    assert!(st.success(), "relay cert revoke failed: {err}");
    assert!(out.contains("revoked certificate"), "{out}");
    let took = both_end(&mut viewer, &mut agent, asked);
    assert!(
        took < PROMISED,
        "the session ended {took:?} after the revocation"
    );
    // Revoking it again, or an unknown serial, says so.
    let (st, out, _) = relay.cli(&["cert", "revoke", &serials[0].to_string()], None);
    assert!(st.success() && out.contains("already revoked"), "{out}");
    let (st, _, err) = relay.cli(&["cert", "revoke", "12345"], None);
    assert!(!st.success() && err.contains("no certificate"), "{err}");

    // Both revocations are in the audit log.
    let (_, audit, _) = relay.cli(&["audit", "--json"], None);
    assert_eq!(audit.matches("cert.revoke").count(), 2, "{audit}");
}

/// `relay crl --out FILE`; returns the list's sequence.
fn crl(relay: &Relay, file: &Path) -> u64 {
    let (st, _, err) = relay.cli(&["crl", "--out", file.to_str().unwrap()], None);
    assert!(st.success(), "relay crl failed: {err}");
    let list = RevocationList::from_bytes(&std::fs::read(file).unwrap()).unwrap();
    list.check_pin(&relay.fingerprint.parse().unwrap()).unwrap();
    list.sequence()
}

/// Replaces `to` with `from` in one step (as an admin's deployment would).
fn install(from: &Path, to: &Path) {
    let tmp = to.with_extension("new");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

#[test]
fn kiosks_refuse_a_revoked_certificate_from_their_list_file_or_from_a_viewer() {
    let x = Xvfb::start(640, 480);
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let pin = relay.fingerprint.clone();

    // Both kiosks start with the relay's current list (nothing revoked, sequence 0).
    let first = tmp.path().join("list-0.bin");
    assert_eq!(crl(&relay, &first), 0);
    let (list_a, list_b) = (tmp.path().join("a.bin"), tmp.path().join("b.bin"));
    install(&first, &list_a);
    install(&first, &list_b);
    let (mut kiosk_a, addr_a) = lan_kiosk(
        &tmp.path().join("kiosk-a"),
        &x.display,
        &[
            "--relay-key",
            &pin,
            "--revocation-list",
            list_a.to_str().unwrap(),
        ],
    );
    let (mut kiosk_b, addr_b) = lan_kiosk(
        &tmp.path().join("kiosk-b"),
        &x.display,
        &[
            "--relay-key",
            &pin,
            "--revocation-list",
            list_b.to_str().unwrap(),
        ],
    );
    // Loaded at start, before it listened.
    let loaded = kiosk_a
        .seen
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "revocation_list")
        .expect("the list was loaded at start");
    assert_eq!(loaded["sequence"], 0);

    // The operator logs in and uses kiosk A: the certificate is stored for later.
    let old = tmp.path().join("old-viewer");
    let mut viewer = direct_session(
        Some(&relay),
        &old,
        &addr_a,
        &["--accept-new-agent-key", "--frames", "1"],
    );
    viewer.wait_event("frame", T);
    assert!(viewer.wait_exit(T).success());
    kiosk_a.wait_event("summary", T);

    // The certificate is revoked (a stolen laptop).
    let serials = valid_serials(&relay);
    assert_eq!(serials.len(), 1);
    let (st, _, err) = relay.cli(&["cert", "revoke", &serials[0].to_string()], None);
    assert!(st.success(), "{err}");

    // Kiosk A gets the newer list through its file, and refuses the stored certificate.
    let newer = tmp.path().join("list-1.bin");
    assert_eq!(crl(&relay, &newer), 1);
    install(&newer, &list_a);
    let adopted = kiosk_a.wait_event("revocation_list", T);
    assert_eq!(adopted["sequence"], 1);
    assert_eq!(adopted["source"], "file");
    let mut refused = direct_session(None, &old, &addr_a, &[]);
    let err = refused.wait_event("error", T);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("the agent refused this operator"),
        "{err}"
    );
    let why = kiosk_a.wait_event("refused", T);
    assert!(
        why["message"].as_str().unwrap().contains("revoked"),
        "{why}"
    );
    assert!(kiosk_a.stderr().contains("has been revoked"));

    // Kiosk B still holds list 0. A viewer that logs in now (a new certificate) brings list 1
    // along: kiosk B adopts it, writes it to its file, and lets that viewer in...
    let new = tmp.path().join("new-viewer");
    let mut viewer = direct_session(
        Some(&relay),
        &new,
        &addr_b,
        &["--accept-new-agent-key", "--frames", "1"],
    );
    let adopted = kiosk_b.wait_event("revocation_list", T);
    assert_eq!(adopted["sequence"], 1);
    assert_eq!(adopted["source"], "viewer");
    viewer.wait_event("frame", T);
    assert!(viewer.wait_exit(T).success());
    kiosk_b.wait_event("summary", T);
    let written = RevocationList::from_bytes(&std::fs::read(&list_b).unwrap()).unwrap();
    assert_eq!(written.sequence(), 1);
    assert!(written.is_revoked(serials[0]));
    // ...and refuses the revoked certificate stored in the other viewer.
    let mut refused = direct_session(None, &old, &addr_b, &["--accept-new-agent-key"]);
    refused.wait_event("error", T);
    let why = kiosk_b.wait_event("refused", T);
    assert!(
        why["message"].as_str().unwrap().contains("revoked"),
        "{why}"
    );

    // An older list in the file does not replace a newer one.
    install(&first, &list_a);
    eventually("the kiosk notices the older list", T, || {
        kiosk_a.stderr().contains("keeping the newer one")
    });
    kiosk_a.signal("TERM");
    kiosk_b.signal("TERM");
    assert!(kiosk_a.wait_exit(T).success());
    assert!(kiosk_b.wait_exit(T).success());

    // A kiosk does not start with a list that does not verify: damaged, or another relay's.
    let mut damaged = std::fs::read(&newer).unwrap();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    let bad = tmp.path().join("damaged.bin");
    std::fs::write(&bad, damaged).unwrap();
    let start = |key: &str, list: &Path| {
        run(
            Command::new(bin("agent"))
                .arg("--data-dir")
                .arg(tmp.path().join("kiosk-c"))
                .args(["--lan-only", "--listen", "127.0.0.1:0", "--relay-key", key])
                .arg("--revocation-list")
                .arg(list)
                .env("DISPLAY", &x.display),
            None,
        )
    };
    let (st, _, err) = start(&pin, &bad);
    assert!(
        !st.success() && err.contains("not a valid revocation list"),
        "{err}"
    );
    let (st, _, err) = start(&"ab".repeat(32), &newer);
    assert!(
        !st.success() && err.contains("not from the pinned relay"),
        "{err}"
    );
    // And a list needs a pinned relay to be checked against.
    let (st, _, err) = run(
        Command::new(bin("agent")).args([
            "--lan-only",
            "--operator-key",
            &"ab".repeat(32),
            "--revocation-list",
            newer.to_str().unwrap(),
        ]),
        None,
    );
    assert!(!st.success() && err.contains("needs --relay-key"), "{err}");
}
