#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Integration, the certificate authority: the root key that clients pin certifies issuing
//! keys that are replaced without the pin changing. Viewers and agents that pinned the root
//! keep working across `relay ca rotate` (relayed sessions before and after, and a kiosk
//! offered a certificate stored before the rotation), and the offline root works end to end:
//! `relay init --offline-ca`, then `relay ca request` on the relay, `relay ca issue` where the
//! root key is, `relay ca install` on the relay, picked up by the running relay.

use sightline_tests::*;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// `relay ca status --json` of `relay`.
fn status(relay: &Relay) -> serde_json::Value {
    let (st, out, err) = relay.cli(&["ca", "status", "--json"], None);
    assert!(st.success(), "relay ca status failed: {err}");
    serde_json::from_str(&out).unwrap()
}

/// A whole relayed session: alice's viewer (one frame, then it ends) and an agent in `dir`.
/// Returns what the agent verified about the operator.
fn relayed_session(relay: &Relay, dir: &Path) -> serde_json::Value {
    let mut viewer = relay.viewer_args(&dir.join("viewer"), &["--frames", "1"]);
    let digits = viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let mut agent = relay.agent(&dir.join("agent"), &digits);
    let connected = agent.wait_event("connected", SLOW);
    viewer.wait_event("frame", T);
    assert_eq!(viewer.wait_event("closed", T)["normal"], true);
    assert!(viewer.wait_exit(T).success());
    agent.wait_event("closed", T);
    assert!(agent.wait_exit(T).success());
    connected
}

/// The issuing key of the newest certificate alice was issued (`relay cert list`).
fn newest_certificate_issuer(relay: &Relay) -> String {
    let (st, out, err) = relay.cli(&["cert", "list", "--user", "alice", "--json"], None);
    assert!(st.success(), "relay cert list failed: {err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    list[0]["issuer"].as_str().unwrap().to_string()
}

#[test]
fn clients_that_pinned_the_root_keep_working_across_a_rotation() {
    let x = Xvfb::start(640, 480);
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let before = status(&relay);
    assert_eq!(before["root"], relay.fingerprint.as_str());
    assert_eq!(before["root_on_this_machine"], true);
    assert!(before["days_left"].as_u64().unwrap() >= 89);

    // A kiosk pinned to the root, and a viewer that logs in and connects to it: it stores the
    // certificate of the first issuing key.
    let (mut kiosk, addr) = lan_kiosk(
        &tmp.path().join("kiosk"),
        &x.display,
        &["--relay-key", &relay.fingerprint.clone()],
    );
    let stored = tmp.path().join("stored");
    let mut viewer = direct_session(
        Some(&relay),
        &stored,
        &addr,
        &["--accept-new-agent-key", "--frames", "1"],
    );
    viewer.wait_event("frame", T);
    assert!(viewer.wait_exit(T).success());
    kiosk.wait_event("summary", T);

    // A relayed session before the rotation.
    let a = relayed_session(&relay, &tmp.path().join("before"));
    assert_eq!(a["peer"]["operator"], "alice");
    assert_eq!(newest_certificate_issuer(&relay), before["issuer"]);

    // Rotation, in another process while the relay runs: a new issuing key, the same root.
    let (st, out, err) = relay.cli(&["ca", "rotate", "--days", "30"], None);
    assert!(st.success(), "relay ca rotate failed: {err}");
    assert_eq!(out.lines().last().unwrap(), relay.fingerprint);
    let after = status(&relay);
    assert_eq!(after["root"], before["root"]);
    assert_ne!(after["issuer"], before["issuer"]);
    let days = after["days_left"].as_u64().unwrap();
    assert!((29..=30).contains(&days), "{after}");
    let (st, out, _) = relay.cli(&["fingerprint"], None);
    assert!(st.success());
    assert_eq!(out.trim(), relay.fingerprint, "the pin does not change");
    eventually("the running relay takes the new issuing key", T, || {
        relay.log().contains("installed by another process")
    });

    // A relayed session after the rotation: the agent still trusts the operator, whose new
    // certificate comes from the new issuing key.
    let a = relayed_session(&relay, &tmp.path().join("after"));
    assert_eq!(a["peer"]["operator"], "alice");
    assert_eq!(newest_certificate_issuer(&relay), after["issuer"]);

    // The certificate stored before the rotation still opens the kiosk (its issuing key's
    // certificate is still valid and chains to the pinned root)...
    let mut viewer = direct_session(None, &stored, &addr, &["--frames", "1"]);
    viewer.wait_event("frame", T);
    assert!(viewer.wait_exit(T).success());
    kiosk.wait_event("summary", T);
    // ...and so does a certificate from the new issuing key.
    let fresh = tmp.path().join("fresh");
    let mut viewer = direct_session(
        Some(&relay),
        &fresh,
        &addr,
        &["--accept-new-agent-key", "--frames", "1"],
    );
    viewer.wait_event("frame", T);
    assert!(viewer.wait_exit(T).success());
    kiosk.wait_event("summary", T);
    kiosk.signal("TERM");
    assert!(kiosk.wait_exit(T).success());
}

#[test]
fn the_root_key_can_stay_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let offline = tmp.path().join("usb").join("sightline-ca");
    let offline_arg = offline.to_str().unwrap().to_string();
    let mut relay = Relay::with_init_args(None, &["--offline-ca", &offline_arg]);
    // The root key is on the "removable medium" only; the relay has the issuing key.
    let root_file = offline.join("ca-key.pem");
    assert!(root_file.exists());
    assert!(!relay.data_dir().join("ca-key.pem").exists());
    assert!(relay.data_dir().join("issuer-key.pem").exists());
    use std::os::unix::fs::PermissionsExt;
    for f in [
        root_file.clone(),
        relay.data_dir().join("issuer-key.pem"),
        relay.data_dir().join("issuer-cert.bin"),
    ] {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    let (_, out, _) = relay.cli(&["fingerprint"], None);
    assert_eq!(out.trim(), relay.fingerprint);
    let before = status(&relay);
    assert_eq!(before["root_on_this_machine"], false);
    // Without the root key the relay cannot rotate by itself.
    let (st, _, err) = relay.cli(&["ca", "rotate"], None);
    assert!(!st.success());
    assert!(err.contains("not on this machine"), "{err}");

    relay.start();
    let a = relayed_session(&relay, &tmp.path().join("before"));
    assert_eq!(a["peer"]["operator"], "alice");

    // Step 1, on the relay: a request for the next issuing key.
    let request = tmp.path().join("request.bin");
    let req = request.to_str().unwrap();
    let (st, out, err) = relay.cli(&["ca", "request", "--out", req], None);
    assert!(st.success(), "relay ca request failed: {err}");
    let requested = out.lines().last().unwrap().to_string();
    assert_eq!(status(&relay)["pending"], requested.as_str());

    // Step 2, where the root key is (no relay data directory needed there).
    let cert = tmp.path().join("issuer-cert.bin");
    let (st, out, err) = run(
        std::process::Command::new(bin("relay"))
            .arg("--data-dir")
            .arg(tmp.path().join("no-relay-here"))
            .args(["ca", "issue", "--root", &offline_arg, "--request", req])
            .arg("--out")
            .arg(&cert)
            .args(["--days", "120"]),
        None,
    );
    assert!(st.success(), "relay ca issue failed: {err}");
    assert!(out.contains(&requested), "{out}");
    assert!(!tmp.path().join("no-relay-here").exists());

    // Step 3, on the relay: installed, and taken by the running relay.
    let (st, _, err) = relay.cli(&["ca", "install", cert.to_str().unwrap()], None);
    assert!(st.success(), "relay ca install failed: {err}");
    let after = status(&relay);
    assert_eq!(after["issuer"], requested.as_str());
    assert_eq!(after["root"], before["root"]);
    let days = after["days_left"].as_u64().unwrap();
    assert!((119..=120).contains(&days), "{after}");
    assert!(after["pending"].is_null());
    // The same certificate cannot be installed twice (no key waits for it any more).
    let (st, _, _) = relay.cli(&["ca", "install", cert.to_str().unwrap()], None);
    assert!(!st.success());
    eventually("the running relay takes the new issuing key", T, || {
        relay.log().contains("installed by another process")
    });
    let a = relayed_session(&relay, &tmp.path().join("after"));
    assert_eq!(a["peer"]["operator"], "alice");
    assert_eq!(newest_certificate_issuer(&relay), requested);
}
