//! Integration, screen to screen: a real agent shares an Xvfb display running real X
//! applications; the viewer (headless, and the GUI under another Xvfb) receives and decodes it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_media::convert::load_png_rgba;
use sightline_media::quality::{luma_from_rgba, psnr};
use sightline_tests::*;
use std::path::Path;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

/// Luma PSNR of two same-sized pictures below their top `skip_rows` rows.
fn luma_psnr(a: &Path, b: &Path, skip_rows: u32) -> f64 {
    let (ra, wa, ha) = load_png_rgba(a).unwrap();
    let (rb, wb, hb) = load_png_rgba(b).unwrap();
    assert_eq!((wa, ha), (wb, hb), "pictures differ in size");
    let (ya, yb) = (luma_from_rgba(&ra, wa, ha), luma_from_rgba(&rb, wb, hb));
    let from = (skip_rows * wa) as usize;
    psnr(
        &ya[from..],
        &yb[from..],
        wa,
        ha - skip_rows,
        wa as usize,
        wb as usize,
    )
}

/// Starts a headless viewer (with `extra` arguments) and an agent sharing `display`, joined
/// with the viewer's code.
fn connect(relay: &Relay, dir: &Path, display: &str, extra: &[&str]) -> (Proc, Proc) {
    let mut viewer = relay.viewer_args(&dir.join("viewer"), extra);
    let code = viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let agent = relay.agent_on(&dir.join("agent"), &relay.fingerprint, &code, Some(display));
    (viewer, agent)
}

/// An xterm with known text on a 1280x720 display.
fn desktop_with_text() -> Xvfb {
    let mut x = Xvfb::start(1280, 720);
    x.app_window(
        "xterm",
        &["-title", "sightline-test", "-geometry", "100x30+40+40", "-fa", "Monospace", "-fs", "12",
          "-bg", "white", "-fg", "black", "-e", "sh", "-c",
          "printf 'Sightline screen test\\nThe quick brown fox jumps over the lazy dog 0123456789\\n'; ls -l /usr/bin | head -20; sleep 600"],
        "sightline-test",
    );
    std::thread::sleep(Duration::from_millis(800));
    x
}

#[test]
fn the_viewer_sees_the_agents_screen_sharply() {
    let x = desktop_with_text();
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let saved = tmp.path().join("decoded.png");
    let saved_s = saved.to_string_lossy().into_owned();
    let (mut viewer, mut agent) = connect(
        &relay,
        tmp.path(),
        &x.display,
        &["--frames", "1", "--save-frame", &saved_s],
    );
    let sharing = agent.wait_event("sharing", SLOW);
    assert_eq!(sharing["width"], 1280);
    assert_eq!(sharing["height"], 720);
    let first = viewer.wait_event("frame", T);
    assert_eq!(first["width"], 1280);
    assert_eq!(first["keyframe"], true);
    let closed = viewer.wait_event("closed", T);
    assert_eq!(closed["normal"], true, "{closed}");
    assert!(viewer.wait_exit(T).success());

    let shot = tmp.path().join("screenshot.png");
    x.screenshot(&shot);
    // The session banner is in the decoded picture but gone from the screen once the session
    // ended (the consent tests check the banner); compare what lies below it.
    let banner = u32::from(sightline_agent::indicator::BANNER_HEIGHT);
    let db = luma_psnr(&saved, &shot, banner);
    eprintln!("luma PSNR decoded vs screenshot: {db:.2} dB");
    assert!(db >= 35.0, "luma PSNR {db:.2} dB < 35 dB");
    assert_eq!(agent.wait_event("closed", T)["reason"], "ended by operator");
}

#[test]
fn an_unchanged_screen_sends_no_frames() {
    let x = desktop_with_text();
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let (mut viewer, _agent) = connect(&relay, tmp.path(), &x.display, &[]);
    viewer.wait_event("frame", T);
    // Let the encoder flush what it held back, then watch a quiet screen.
    let settle = Instant::now() + Duration::from_secs(2);
    while let Some(left) = settle.checked_duration_since(Instant::now()) {
        viewer.next_line(left);
    }
    let quiet_from = Instant::now();
    let mut frames = 0;
    while let Some(left) =
        (quiet_from + Duration::from_secs(4)).checked_duration_since(Instant::now())
    {
        match viewer.next_line(left) {
            Some(l) if l.contains("\"event\":\"frame\"") => frames += 1,
            _ => {}
        }
    }
    assert_eq!(frames, 0, "frames were sent for an unchanged screen");
    // A change is sent again promptly.
    x.run(
        "xdotool",
        &[
            "search",
            "--name",
            "sightline-test",
            "windowmove",
            "200",
            "100",
        ],
    );
    viewer.wait_event("frame", Duration::from_secs(10));
}

#[test]
fn typing_and_clicking_reach_an_x_application_and_held_keys_are_released() {
    let mut x = Xvfb::start(1024, 768);
    let tmp = tempfile::tempdir().unwrap();
    let typed = tmp.path().join("typed.txt");
    let cmd = format!("cat > {}", typed.display());
    x.app_window(
        "xterm",
        &[
            "-title",
            "sightline-input",
            "-geometry",
            "80x24+0+0",
            "-e",
            "sh",
            "-c",
            &cmd,
        ],
        "sightline-input",
    );
    let mut relay = Relay::new(None);
    relay.start();
    let script = tmp.path().join("input.txt");
    std::fs::write(&script, "wait-frames 1\nmove 0.2 0.2\nclick left\ntype hello Sightline\nkey Enter\nsleep 300\nkeydown ShiftLeft\nkeydown KeyA\nsleep 300\n").unwrap();
    let script_s = script.to_string_lossy().into_owned();
    let (mut viewer, mut agent) =
        connect(&relay, tmp.path(), &x.display, &["--send-input", &script_s]);
    // Control is the customer's second yes.
    agent.allow_control(T);
    assert_eq!(viewer.wait_event("control", T)["granted"], true);

    // The typed line reaches the application.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&typed).unwrap_or_default();
        if text.contains("hello Sightline\n") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "typed text did not arrive: {text:?}\nagent: {}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Shift and A are held down now; the viewer dies without a close.
    let deadline = Instant::now() + Duration::from_secs(10);
    while pressed_keys(&x.display) < 2 {
        assert!(Instant::now() < deadline, "keys were not held down");
        std::thread::sleep(Duration::from_millis(50));
    }
    viewer.signal("KILL");
    // Control is suspended as soon as the connection is lost: held keys are released while
    // the agent waits (30 s) for the viewer to come back.
    agent.wait_event("reconnecting", T);
    let deadline = Instant::now() + Duration::from_secs(10);
    while pressed_keys(&x.display) > 0 {
        assert!(
            Instant::now() < deadline,
            "held keys were not released when the connection was lost"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let closed = agent.wait_event("closed", SLOW);
    assert_eq!(closed["normal"], false);
    // The pointer went where the operator put it: 20 % of 1024x768.
    let loc = x.run("xdotool", &["getmouselocation"]);
    assert!(
        loc.starts_with("x:205 y:154")
            || loc.starts_with("x:204 y:153")
            || loc.starts_with("x:205 y:153")
            || loc.starts_with("x:204 y:154"),
        "{loc}"
    );
}
