//! The front door: `assets/demo.sh` (what `./dev demo` runs) with no terminal, as CI and a
//! new user without a display run it. The demo must tell the whole story and end normally:
//! a decoded picture of the customer's screen with the banner, the customer's consent, control
//! granted, the operator's typing arriving in the customer's shell, control taken back, and a
//! normal end on both sides. A demo that breaks fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_media::convert::load_png_rgba;
use sightline_media::quality::{luma_from_rgba, psnr};
use sightline_tests::*;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Far more than the demo needs (about a minute on a loaded 2-core machine).
const DEMO_TIMEOUT: Duration = Duration::from_secs(300);
/// The banner the agent draws across the top of the shared screen (agent/src/indicator.rs).
const BANNER_RGB: [u8; 3] = [0xD9, 0x3A, 0x00];
const BANNER_HEIGHT: u32 = 28;

/// Runs the demo with no terminal (stdin from /dev/null) in `dir`, holding control for one
/// second, with `display` as the person's display (none: headless). Kills the whole demo
/// (its own process group) if it runs past the timeout.
fn run_demo(dir: &Path, display: Option<&str>) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("assets/demo.sh"))
        .arg("1")
        .current_dir(repo_root())
        .env("SIGHTLINE_DEMO_DIR", dir)
        .env("SIGHTLINE_BIN", bin("agent").parent().unwrap())
        .env_remove("SIGHTLINE_DEMO_VIEWER")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    match display {
        Some(d) => {
            cmd.env("DISPLAY", d)
                .env("XDG_RUNTIME_DIR", runtime_dir(dir.parent().unwrap()));
        }
        None => {
            cmd.env_remove("DISPLAY");
        }
    }
    let child = cmd.spawn().expect("bash");
    let pgid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEMO_TIMEOUT) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &format!("-{pgid}")])
                .status();
            let out = rx.recv().unwrap().unwrap();
            panic!(
                "the demo did not finish in {DEMO_TIMEOUT:?}:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Asserts that `text` contains each of `steps`, in this order.
fn assert_story(text: &str, steps: &[&str]) {
    let mut at = 0;
    for step in steps {
        match text[at..].find(step) {
            Some(i) => at += i + step.len(),
            None => panic!("the demo's story lacks {step:?} (in this order):\n{text}"),
        }
    }
}

/// Share of the top rows' pixels that have the banner's colour.
fn banner_share(rgba: &[u8], width: u32) -> f64 {
    let pixels = (width * BANNER_HEIGHT) as usize;
    let near = rgba[..pixels * 4]
        .chunks_exact(4)
        .filter(|p| {
            p[..3]
                .iter()
                .zip(BANNER_RGB)
                .all(|(&a, b)| a.abs_diff(b) <= 24)
        })
        .count();
    near as f64 / pixels as f64
}

#[test]
fn the_demo_tells_the_whole_story_without_a_terminal_or_display() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = run_demo(&dir, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the demo failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert_story(
        &stdout,
        &[
            "relay init",
            "every session recorded for the auditor",
            "oathtool plays the phone",
            "relay agent-bundle",
            "[viewer] Logged in as demo",
            "[viewer] Session code: ",
            "[agent]  Sightline remote support for Sightline Demo Desk",
            "[agent]  Connected to Dana Operator (Sightline Demo Desk)",
            "[agent]  Verification code: ",
            "wants to see your screen",
            "[agent]  This session is recorded for the help desk's auditors.",
            "[customer, played by the demo] types \"y\"",
            "[agent]  You allowed viewing.",
            "[agent]  Sharing your screen (1280x720)",
            "asks to control your keyboard and mouse",
            "[customer, played by the demo] types \"y\"",
            "[agent]  You allowed control.",
            "the operator typed into the customer's shell",
            "[customer, played by the demo] types \"r\"",
            "[agent]  You took back control.",
            "[customer, played by the demo] types \"e\"",
            "[agent]  Session ended: ended by customer",
            "[agent]  Session summary: Dana Operator (Sightline Demo Desk)",
            "used: view, control",
            "the auditor fetches the recording",
            "complete",
            "Result       VERIFIED: the video is what the agent sent",
            "session.webm: ",
            "done: the session ended normally and its recording verifies",
        ],
    );
    // The operator's side of the same story (its lines interleave with the agent's).
    for line in [
        "[viewer] The customer allowed control",
        "[viewer] The customer took back control",
        "[viewer] Session ended: ended by customer",
    ] {
        assert!(stdout.contains(line), "no {line:?}:\n{stdout}");
    }
    assert!(!stdout.contains("You refused"), "{stdout}");

    // The operator's typing reached the customer's shell (its history).
    let history = std::fs::read_to_string(dir.join("customer-shell-history")).unwrap();
    assert!(
        history
            .lines()
            .any(|l| l == "echo Hello from the help desk"),
        "{history:?}"
    );

    // A decoded picture of the customer's screen, the banner across its top.
    let frame = dir.join("last-frame.png");
    let (rgba, w, h) = load_png_rgba(&frame).unwrap();
    assert_eq!((w, h), (1280, 720));
    let share = banner_share(&rgba, w);
    assert!(share > 0.5, "banner colour in {share:.2} of the top rows");
    // ... and it is the customer's screen as it was at the end (ImageMagick's screenshot of
    // the demo's display, taken just before the customer ended the session).
    let (shot, sw, sh) = load_png_rgba(dir.join("customer-screen.png")).unwrap();
    assert_eq!((sw, sh), (w, h));
    let db = psnr(
        &luma_from_rgba(&rgba, w, h),
        &luma_from_rgba(&shot, sw, sh),
        w,
        h,
        w as usize,
        sw as usize,
    );
    assert!(db >= 30.0, "decoded picture vs screenshot: {db:.1} dB");
}

#[test]
fn with_a_display_the_demo_opens_the_viewer_window() {
    // The person's desktop: the viewer's window opens here (Mesa's lavapipe draws it).
    let desk = Xvfb::start(1280, 800);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let started = Instant::now();
    let out = run_demo(&dir, Some(&desk.display));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the demo failed after {:?} ({}):\n{stdout}\n{stderr}",
        started.elapsed(),
        out.status
    );
    let events: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("viewer.out"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    let order = [
        "login",
        "code",
        "connected",
        "first_frame",
        "control",
        "closed",
    ];
    let mut at = 0;
    for name in order {
        match names[at..].iter().position(|n| *n == name) {
            Some(i) => at += i + 1,
            None => panic!("window events lack {name:?} in order: {names:?}\n{stdout}"),
        }
    }
    let closed = events.iter().find(|e| e["event"] == "closed").unwrap();
    assert_eq!(closed["reason"], "ended by customer", "{closed}");
    assert_eq!(closed["normal"], true);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "control" && e["granted"] == true),
        "{names:?}"
    );
    assert!(std::fs::read_to_string(dir.join("customer-shell-history"))
        .unwrap()
        .contains("echo Hello from the help desk"));
}
