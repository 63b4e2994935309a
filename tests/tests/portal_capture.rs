//! Integration, Wayland: the agent captures a Wayland desktop through the real screen-cast
//! portal, with PipeWire loaded at run time, and a viewer gets its picture; where the portal
//! cannot be used the agent says why, and falls back to X11 only when XWayland is there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use sightline_media::convert::load_png_rgba;
use sightline_tests::wayland::{WaylandDesktop, BACKGROUND};
use sightline_tests::{bin, direct_session, run, Proc, Relay, Xvfb, SLOW};

/// Share of the pixels of a PNG within `tolerance` of `rgb` (0xRRGGBB) in every channel.
fn share_of_colour(png: &Path, rgb: u32, tolerance: u8) -> f64 {
    let (rgba, w, h) = load_png_rgba(png).unwrap();
    let want = [(rgb >> 16) as u8, (rgb >> 8) as u8, rgb as u8];
    let close = rgba
        .chunks_exact(4)
        .filter(|p| (0..3).all(|i| p[i].abs_diff(want[i]) <= tolerance))
        .count();
    close as f64 / f64::from(w * h)
}

/// The agent under test: this build's, or the single-file agent `just release-check` names
/// (it must load PipeWire at run time just the same).
fn agent_program() -> std::path::PathBuf {
    std::env::var_os("SIGHTLINE_SINGLE_FILE_AGENT").map_or_else(|| bin("agent"), Into::into)
}

/// `agent --json CODE` on the Wayland desktop (no X display), the customer typing `y` ahead.
fn agent_on_wayland(relay: &Relay, desktop: &WaylandDesktop, data: &Path, code: &str) -> Proc {
    let mut cmd = Command::new(agent_program());
    cmd.arg("--data-dir").arg(data).args([
        "--relay",
        &relay.addr,
        "--relay-key",
        &relay.fingerprint,
        "--json",
        code,
    ]);
    desktop.apply(&mut cmd);
    // The agent's info lines (which backend, the wait for a first picture) in failure output.
    cmd.env("RUST_LOG", "sightline_agent=info");
    let mut agent = Proc::spawn("agent", &mut cmd);
    agent.write_line("y");
    agent
}

/// A Wayland desktop of `width` x `height`, a relay, and a directory for the test's files.
fn setup(width: u32, height: u32) -> (WaylandDesktop, Relay, tempfile::TempDir) {
    let desktop = WaylandDesktop::start(width, height);
    let mut relay = Relay::new(None);
    relay.start();
    (desktop, relay, tempfile::tempdir().unwrap())
}

/// Where the viewer writes its last picture (`--save-frame`), as a path and as an argument.
fn saved_frame(tmp: &tempfile::TempDir) -> (std::path::PathBuf, String) {
    let saved = tmp.path().join("decoded.png");
    let arg = saved.to_string_lossy().into_owned();
    (saved, arg)
}

#[test]
fn the_agent_shares_a_wayland_desktop_through_the_portal() {
    let (desktop, relay, tmp) = setup(800, 600);
    let (saved, saved_s) = saved_frame(&tmp);
    let mut viewer = relay.viewer_args(
        &tmp.path().join("viewer"),
        &["--frames", "1", "--save-frame", &saved_s],
    );
    let code = viewer.session_code();
    let mut agent = agent_on_wayland(&relay, &desktop, &tmp.path().join("agent"), &code);

    let sharing = agent.wait_event("sharing", SLOW);
    assert_eq!(
        sharing["capture"],
        "portal",
        "{sharing}\n{}",
        desktop.logs()
    );
    assert_eq!(
        (sharing["width"].as_u64(), sharing["height"].as_u64()),
        (Some(800), Some(600))
    );
    let first = first_frame_nudging(&mut viewer, &desktop, &agent);
    assert_eq!(
        (first["width"].as_u64(), first["height"].as_u64()),
        (Some(800), Some(600))
    );
    let closed = viewer.wait_event("closed", SLOW);
    assert_eq!(closed["normal"], true, "{closed}");
    assert!(viewer.wait_exit(SLOW).success());

    // The viewer decoded the desktop's own colour (AV1 is lossy: within a few levels).
    let share = share_of_colour(&saved, BACKGROUND, 6);
    assert!(
        share > 0.99,
        "only {share} of the decoded frame is #{BACKGROUND:06x}"
    );
    let closed = agent.wait_event("closed", SLOW);
    assert_eq!(
        closed["reason"],
        "ended by operator",
        "{closed}\n{}",
        agent.stderr()
    );
    assert!(agent.wait_exit(SLOW).success(), "{}", agent.stderr());
}

#[test]
fn the_picture_follows_the_desktop() {
    let (desktop, relay, tmp) = setup(640, 480);
    let (saved, saved_s) = saved_frame(&tmp);
    let mut viewer = relay.viewer_args(&tmp.path().join("viewer"), &["--save-frame", &saved_s]);
    let code = viewer.session_code();
    let mut agent = agent_on_wayland(&relay, &desktop, &tmp.path().join("agent"), &code);
    assert_eq!(agent.wait_event("sharing", SLOW)["capture"], "portal");
    first_frame_nudging(&mut viewer, &desktop, &agent);

    // A new colour on the screen reaches the viewer: the stream keeps flowing. The viewer
    // writes its last picture when the session ends, so the customer ends it once the change
    // has arrived and settled.
    let red = 0xcc2222;
    desktop.set_background(red);
    viewer.wait_event_where("frame", "seq", serde_json::json!(1), SLOW);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    agent.write_line("e");
    assert!(agent.wait_exit(SLOW).success(), "{}", agent.stderr());
    viewer.wait_event("closed", SLOW);
    let share = share_of_colour(&saved, red, 6);
    assert!(share > 0.99, "only {share} of the last frame is #{red:06x}");
}

#[test]
fn without_a_usable_portal_the_agent_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let no_bus = format!("unix:path={}", tmp.path().join("no-bus").display());
    let wayland_only = |cmd: &mut Command| {
        cmd.env("WAYLAND_DISPLAY", "wayland-sightline-none")
            .env("XDG_RUNTIME_DIR", tmp.path())
            .env("DBUS_SESSION_BUS_ADDRESS", &no_bus)
            .env_remove("DISPLAY");
    };

    // Wayland and nothing to fall back to: a clear refusal naming the reason.
    let mut cmd = Command::new(agent_program());
    cmd.arg("monitors");
    wayland_only(&mut cmd);
    let (status, stdout, stderr) = run(&mut cmd, None);
    assert!(!status.success(), "{stdout}");
    assert!(
        stderr.contains("no X11 display to fall back to")
            && stderr.contains("screen-cast portal cannot be used")
            && stderr.contains("D-Bus session bus"),
        "{stderr}"
    );

    // With XWayland there: the agent says it falls back to X11, and lists X11's monitors.
    let x = Xvfb::start(320, 200);
    let mut cmd = Command::new(agent_program());
    cmd.arg("monitors");
    wayland_only(&mut cmd);
    cmd.env("DISPLAY", &x.display);
    let (status, stdout, stderr) = run(&mut cmd, None);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("320x200"), "{stdout}");
    assert!(
        stderr.contains("falling back to X11") && stderr.contains("D-Bus session bus"),
        "{stderr}"
    );
}

/// Waits for the viewer's first `frame` event, repainting `desktop` every few seconds: on a
/// loaded machine xdpw's first copy of a fresh cast can miss its buffer, and its next copy
/// waits for damage, which a solid-colour screen never has (a real desktop's clock or cursor
/// does).
fn first_frame_nudging(
    viewer: &mut Proc,
    desktop: &WaylandDesktop,
    agent: &Proc,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + SLOW;
    while std::time::Instant::now() < deadline {
        let nudge = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while let Some(left) = nudge.checked_duration_since(std::time::Instant::now()) {
            let Some(line) = viewer.next_line(left) else {
                break;
            };
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if event["event"] == "frame" {
                return event;
            }
        }
        desktop.repaint();
    }
    panic!(
        "no frame: viewer {:?}\nagent:\n{}\ndesktop:\n{}",
        viewer.events(),
        agent.stderr(),
        desktop.logs()
    );
}

#[test]
fn a_second_session_on_an_unchanged_screen_waits_for_the_picture() {
    // wlroots' portal sends a later cast of an unchanged screen no picture until the screen
    // changes (see WaylandDesktop::repaint). The agent must wait, not give up.
    let (desktop, relay, tmp) = setup(640, 480);
    let mut first = relay.viewer_args(&tmp.path().join("viewer1"), &["--frames", "1"]);
    let code = first.session_code();
    let mut agent = agent_on_wayland(&relay, &desktop, &tmp.path().join("agent"), &code);
    assert_eq!(agent.wait_event("sharing", SLOW)["capture"], "portal");
    // The first session only has to end with a picture.
    first_frame_nudging(&mut first, &desktop, &agent);
    first.wait_event("closed", SLOW);
    assert!(agent.wait_exit(SLOW).success(), "{}", agent.stderr());

    // The second session: whether a picture comes at once depends on the compositor's
    // timing; either way the agent keeps sharing and the change on the screen arrives.
    let (saved, saved_s) = saved_frame(&tmp);
    let mut second = relay.viewer_args(&tmp.path().join("viewer2"), &["--save-frame", &saved_s]);
    let code = second.session_code();
    let mut agent = agent_on_wayland(&relay, &desktop, &tmp.path().join("agent"), &code);
    assert_eq!(agent.wait_event("sharing", SLOW)["capture"], "portal");
    // A customer whose screen stays still for a while: the agent is still sharing.
    std::thread::sleep(std::time::Duration::from_secs(12));
    assert!(agent.is_running(), "the agent gave up: {}", agent.stderr());
    let green = 0x22aa44;
    desktop.set_background(green);
    second.wait_event("frame", SLOW);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    agent.write_line("e");
    assert!(agent.wait_exit(SLOW).success(), "{}", agent.stderr());
    second.wait_event("closed", SLOW);
    let share = share_of_colour(&saved, green, 6);
    assert!(
        share > 0.99,
        "only {share} of the last frame is #{green:06x}"
    );
    let waited = agent
        .stderr()
        .contains("waiting for the desktop's first picture");
    eprintln!("the second session waited for its first picture: {waited}");
}

#[test]
fn when_pipewire_dies_the_session_ends_with_the_reason() {
    let (desktop, relay, tmp) = setup(640, 480);
    desktop.keep_repainting(std::time::Duration::from_millis(200));
    let mut viewer = relay.viewer_args(&tmp.path().join("viewer"), &[]);
    let code = viewer.session_code();
    let mut agent = agent_on_wayland(&relay, &desktop, &tmp.path().join("agent"), &code);
    assert_eq!(agent.wait_event("sharing", SLOW)["capture"], "portal");
    viewer.wait_event("frame", SLOW);

    let group = desktop.process_group().to_string();
    let (status, _, stderr) = run(
        Command::new("pkill").args(["-KILL", "-x", "-g", &group, "pipewire"]),
        None,
    );
    assert!(status.success(), "pkill: {stderr}");
    // Sharing stops (the operator is told the agent shut down; the customer's log has
    // PipeWire's reason); the agent neither hangs nor crashes.
    let closed = viewer.wait_event("closed", SLOW);
    assert_eq!(closed["reason"], "shutdown", "{closed}");
    agent.wait_exit(SLOW);
    let log = agent.stderr();
    assert!(
        log.contains("screen capture failed") && log.contains("screen stream"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_customer_who_cancels_the_desktops_dialog_shares_nothing() {
    // The desktop's dialog (xdpw's chooser) answers with no screen: the customer cancelled.
    let desktop = WaylandDesktop::start_with_chooser(640, 480, Some("true"));
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut viewer = relay.viewer_args(&tmp.path().join("viewer"), &[]);
    let code = viewer.session_code();
    let mut agent = agent_on_wayland(&relay, &desktop, &tmp.path().join("agent"), &code);
    let error = agent.wait_event("error", SLOW);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("did not choose a screen to share"),
        "{error}"
    );
    let closed = viewer.wait_event("closed", SLOW);
    assert_eq!(closed["reason"], "declined by customer", "{closed}");
    assert!(!viewer.events().iter().any(|l| l.contains("\"frame\"")));
    agent.wait_exit(SLOW);
}

#[test]
fn an_unattended_kiosk_on_a_wayland_desktop_uses_x11_not_the_portal() {
    // Nobody is at a kiosk to answer the desktop's screen-sharing dialog: with XWayland there,
    // the kiosk captures through X11 and says why it does not use the portal.
    let (desktop, relay, tmp) = setup(640, 480);
    let x = Xvfb::start(320, 240);
    let mut cmd = Command::new(agent_program());
    cmd.arg("--data-dir")
        .arg(tmp.path().join("kiosk"))
        .args(["--lan-only", "--listen", "127.0.0.1:0", "--json"])
        .args(["--relay-key", &relay.fingerprint]);
    desktop.apply(&mut cmd);
    cmd.env("DISPLAY", &x.display);
    let mut kiosk = Proc::spawn("kiosk", &mut cmd);
    let addr = kiosk.wait_event("listening", SLOW)["address"]
        .as_str()
        .unwrap()
        .to_string();
    let mut viewer = direct_session(
        Some(&relay),
        &tmp.path().join("viewer"),
        &addr,
        &["--accept-new-agent-key", "--frames", "1"],
    );
    let sharing = kiosk.wait_event("sharing", SLOW);
    assert_eq!(sharing["capture"], "x11", "{sharing}");
    assert_eq!(sharing["width"], 320, "{sharing}");
    viewer.wait_event("frame", SLOW);
    assert!(viewer.wait_exit(SLOW).success());
    let log = kiosk.stderr();
    assert!(
        log.contains("unattended kiosk") && log.contains("falling back to X11"),
        "{log}"
    );
}
