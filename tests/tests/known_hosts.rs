//! Integration, pinned kiosks: `viewer session --direct` keeps a known-hosts file (address →
//! the agent's key fingerprint). A first connection is refused unless the operator accepts
//! the key (`--accept-new-agent-key`, or `--agent-key` with the fingerprint `agent fingerprint`
//! prints); a kiosk whose key changed (a new data directory) is refused with both fingerprints
//! named, until `--agent-key NEW` pins the new one. Every refusal ends the session with an
//! explicit close, after the handshake and before anything of it is used. The window asks
//! about a first connection's key before it shows anything of the session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// `agent --lan-only` on `listen` for operators certified by `relay`; returns it, its address
/// and the fingerprint it printed.
fn kiosk(data: &Path, display: &str, listen: &str, relay: &Relay) -> (Proc, String, String) {
    let mut p = Proc::spawn(
        "kiosk",
        Command::new(bin("agent"))
            .arg("--data-dir")
            .arg(data)
            .args(["--lan-only", "--listen", listen, "--json"])
            .args(["--relay-key", &relay.fingerprint])
            .env("DISPLAY", display)
            .env_remove("WAYLAND_DISPLAY"),
    );
    let listening = p.wait_event("listening", SLOW);
    let addr = listening["address"].as_str().unwrap().to_string();
    let fingerprint = listening["fingerprint"].as_str().unwrap().to_string();
    (p, addr, fingerprint)
}

/// `agent fingerprint --data-dir DIR`: the fingerprint alone on stdout.
fn agent_fingerprint(data: &Path) -> String {
    let (st, out, err) = run(
        Command::new(bin("agent"))
            .args(["fingerprint", "--data-dir"])
            .arg(data),
        None,
    );
    assert!(st.success(), "{err}");
    let fp = out.trim().to_string();
    assert_eq!(fp.len(), 64, "{out}");
    assert!(fp.chars().all(|c| c.is_ascii_hexdigit()), "{out}");
    fp
}

/// A refused connection: the `agent_key` event with `status`, then the error; exit status 1
/// (failed), never "connected"; the kiosk saw the operator close the session. Returns the
/// report and the error message.
fn refused(mut viewer: Proc, kiosk: &mut Proc, status: &str) -> (serde_json::Value, String) {
    let report = viewer.wait_event("agent_key", SLOW);
    assert_eq!(report["status"], status, "{report}");
    assert_eq!(report["accepted"], false, "{report}");
    let err = viewer.wait_event("error", T);
    let message = err["message"].as_str().unwrap().to_string();
    assert_eq!(viewer.wait_exit(T).code(), Some(1), "{message}");
    assert!(!viewer.events().iter().any(|e| e == "connected"));
    let closed = kiosk.wait_event("closed", T);
    assert_eq!(closed["reason"], "ended by operator", "{closed}");
    assert_eq!(closed["normal"], true, "{closed}");
    kiosk.wait_event("summary", T);
    (report, message)
}

/// A connection that goes on: the `agent_key` event with `status`, a picture, a normal end.
fn connects(mut viewer: Proc, kiosk: &mut Proc, status: &str) -> serde_json::Value {
    let report = viewer.wait_event("agent_key", SLOW);
    assert_eq!(report["status"], status, "{report}");
    assert_eq!(report["accepted"], true, "{report}");
    viewer.wait_event("connected", T);
    viewer.wait_event("frame", T);
    assert!(viewer.wait_exit(T).success(), "{}", viewer.stderr());
    // The kiosk's only session slot is free again.
    kiosk.wait_event("summary", T);
    report
}

fn known_hosts(viewer_data: &Path) -> String {
    std::fs::read_to_string(viewer_data.join("known-hosts")).unwrap()
}

#[test]
fn kiosk_keys_are_pinned_and_a_changed_key_is_refused() {
    let x = Xvfb::start(640, 480);
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let vdir = tmp.path().join("viewer");

    // `agent fingerprint` creates the key as the agent would, and prints the same one again;
    // the kiosk prints it too when it starts.
    let first_dir = tmp.path().join("kiosk");
    let first = agent_fingerprint(&first_dir);
    assert_eq!(agent_fingerprint(&first_dir), first, "the key is kept");
    let (mut kiosk1, addr, listening) = kiosk(&first_dir, &x.display, "127.0.0.1:0", &relay);
    assert_eq!(listening, first);

    // First connection, no flag: the relay login happens (it stores the certificate), the
    // handshake too, then the viewer refuses the unknown key, says how to accept it, and ends
    // the session with an explicit close. Nothing is stored.
    let viewer = direct_session(Some(&relay), &vdir, &addr, &[]);
    let (report, message) = refused(viewer, &mut kiosk1, "unknown");
    assert_eq!(report["fingerprint"], first.as_str());
    assert_eq!(report["address"], addr.as_str());
    assert!(message.contains(&first), "{message}");
    assert!(
        message.contains("--agent-key") && message.contains("--accept-new-agent-key"),
        "{message}"
    );
    assert!(!vdir.join("known-hosts").exists());

    // Trust on first use, explicitly: connects, and the key is stored (owner-only file).
    let viewer = direct_session(
        None,
        &vdir,
        &addr,
        &["--accept-new-agent-key", "--frames", "1"],
    );
    connects(viewer, &mut kiosk1, "remembered");
    assert!(
        known_hosts(&vdir).contains(&format!("{addr} {first}")),
        "{}",
        known_hosts(&vdir)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(vdir.join("known-hosts"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Known now: no flag needed.
    let viewer = direct_session(None, &vdir, &addr, &["--frames", "1"]);
    connects(viewer, &mut kiosk1, "known");

    // The kiosk is reinstalled: same address, new data directory, new key.
    kiosk1.signal("TERM");
    assert!(kiosk1.wait_exit(T).success());
    let second_dir = tmp.path().join("kiosk-reinstalled");
    let (mut kiosk2, addr2, second) = kiosk(&second_dir, &x.display, &addr, &relay);
    assert_eq!(addr2, addr);
    assert_ne!(second, first);

    // Refused, naming both keys and the way out; --accept-new-agent-key does not override.
    let stored_before = known_hosts(&vdir);
    for extra in [&[][..], &["--accept-new-agent-key"][..]] {
        let viewer = direct_session(None, &vdir, &addr, extra);
        let (report, message) = refused(viewer, &mut kiosk2, "changed");
        assert_eq!(report["fingerprint"], second.as_str());
        assert_eq!(report["stored"], first.as_str());
        for part in [
            &first,
            &second,
            "known-hosts",
            &format!("--agent-key {second}"),
        ] {
            assert!(message.contains(part), "{part} missing: {message}");
        }
        assert_eq!(known_hosts(&vdir), stored_before, "never replaced silently");
    }
    // --agent-key with another key: refused too.
    let viewer = direct_session(None, &vdir, &addr, &["--agent-key", &first]);
    let (report, _) = refused(viewer, &mut kiosk2, "mismatch");
    assert_eq!(report["expected"], first.as_str());

    // --agent-key NEW: connects, and the entry now holds the new key, which is what
    // `agent fingerprint` prints for the new data directory.
    let viewer = direct_session(
        None,
        &vdir,
        &addr,
        &["--agent-key", &second, "--frames", "1"],
    );
    let report = connects(viewer, &mut kiosk2, "remembered");
    assert_eq!(report["stored"], first.as_str(), "says what it replaced");
    let stored = known_hosts(&vdir);
    assert!(stored.contains(&format!("{addr} {second}")), "{stored}");
    assert!(!stored.contains(&first), "{stored}");
    assert_eq!(agent_fingerprint(&second_dir), second);
    let viewer = direct_session(None, &vdir, &addr, &["--frames", "1"]);
    connects(viewer, &mut kiosk2, "known");

    kiosk2.signal("TERM");
    assert!(kiosk2.wait_exit(T).success());
}

/// Share of pixels close to `rgb`.
fn share_of_colour(png: &Path, rgb: [u8; 3]) -> f64 {
    let (rgba, w, h) = sightline_media::convert::load_png_rgba(png).unwrap();
    let close = rgba
        .chunks_exact(4)
        .filter(|p| (0..3).all(|i| (i32::from(p[i]) - i32::from(rgb[i])).abs() < 40))
        .count();
    close as f64 / f64::from(w * h)
}

/// The window viewer with `--direct ADDR --json EXTRA...` on `display`.
fn window(data: &Path, display: &str, addr: &str, extra: &[&str]) -> Proc {
    Proc::spawn(
        "viewer-gui",
        Command::new(bin("viewer"))
            .arg("--data-dir")
            .arg(data)
            .args(["--direct", addr, "--password-stdin", "--json"])
            .args(extra)
            .env("DISPLAY", display)
            .env("XDG_RUNTIME_DIR", runtime_dir(data.parent().unwrap()))
            .env_remove("WAYLAND_DISPLAY"),
    )
}

#[test]
fn the_window_asks_about_a_new_kiosk_key_before_showing_anything() {
    // The kiosk's screen: a big magenta window.
    let mut customer = Xvfb::start(1280, 720);
    customer.app_window(
        "xterm",
        &[
            "-title",
            "sightline-magenta",
            "-geometry",
            "160x45+0+0",
            "-bg",
            "#ff00ff",
            "-e",
            "sleep",
            "600",
        ],
        "sightline-magenta",
    );
    let operator = Xvfb::start(1280, 800);
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let vdir = tmp.path().join("viewer");
    let (mut kiosk, addr, fingerprint) = kiosk(
        &tmp.path().join("kiosk"),
        &customer.display,
        "127.0.0.1:0",
        &relay,
    );

    // A first connection (after the relay login): the dialog, and nothing of the session.
    let mut viewer = window(
        &vdir,
        &operator.display,
        &addr,
        &[
            "--relay",
            &relay.addr,
            "--relay-key",
            &relay.fingerprint,
            "--user",
            "alice",
        ],
    );
    viewer.send_lines(&[PASSWORD, &relay.totp("alice")]);
    let prompt = viewer.wait_event("agent_key_prompt", T);
    assert_eq!(prompt["fingerprint"], fingerprint.as_str());
    assert_eq!(prompt["address"], addr.as_str());
    std::thread::sleep(Duration::from_secs(2));
    let asking = tmp.path().join("agent-key-dialog.png");
    operator.screenshot(&asking);
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gui");
    std::fs::create_dir_all(&keep).unwrap();
    std::fs::copy(&asking, keep.join("agent-key-dialog.png")).unwrap();
    assert!(
        share_of_colour(&asking, [255, 0, 255]) < 0.001,
        "the kiosk's screen shows before its key was accepted (screenshot in {})",
        keep.display()
    );
    assert!(!viewer
        .events()
        .iter()
        .any(|e| e == "connected" || e == "first_frame"));
    assert!(!vdir.join("known-hosts").exists(), "nothing accepted yet");

    // "Accept and remember" (the dialog's second button, reached with the keyboard): the
    // session goes on, the kiosk's screen appears, the key is stored.
    operator.run(
        "xdotool",
        &[
            "search",
            "--onlyvisible",
            "--name",
            "Sightline viewer",
            "windowfocus",
            "--sync",
        ],
    );
    // The window takes a moment to act on the focus: a Tab sent at once can be lost, and
    // the answer would then be the first button's.
    std::thread::sleep(Duration::from_secs(1));
    for key in ["Tab", "Tab", "space"] {
        operator.run("xdotool", &["key", key]);
        std::thread::sleep(Duration::from_millis(500));
    }
    let report = viewer.wait_event("agent_key", T);
    assert_eq!(report["status"], "remembered", "{report}");
    viewer.wait_event("first_frame", T);
    assert!(known_hosts(&vdir).contains(&format!("{addr} {fingerprint}")));
    std::thread::sleep(Duration::from_secs(2));
    let live = tmp.path().join("agent-key-accepted.png");
    operator.screenshot(&live);
    std::fs::copy(&live, keep.join("agent-key-accepted.png")).unwrap();
    assert!(
        share_of_colour(&live, [255, 0, 255]) > 0.2,
        "the kiosk's screen does not show once its key was accepted (screenshot in {})",
        keep.display()
    );
    viewer.signal("KILL");
    let _ = viewer.wait_exit(T);
    kiosk.wait_event("summary", T);

    // Next time the key is known: no question (the certificate stored at the login above).
    let mut viewer = window(&vdir, &operator.display, &addr, &[]);
    viewer.close_stdin();
    let report = viewer.wait_event("agent_key", T);
    assert_eq!(report["status"], "known", "{report}");
    viewer.wait_event("first_frame", T);
    assert!(!viewer.events().iter().any(|e| e == "agent_key_prompt"));
    viewer.signal("KILL");
}
