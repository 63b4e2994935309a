//! Integration, GUI: `viewer play` under Xvfb (wgpu on Mesa's software Vulkan) shows a
//! recording made in the test at the position asked for: red at 1 s, blue at 8 s. The
//! screenshots are kept under target/ for people to look at.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_media::convert::load_png_rgba;
use sightline_tests::recordings::{red_then_blue, RecordingFile};
use sightline_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

/// Share of pixels close to `rgb`.
fn share_of_colour(png: &Path, rgb: [u8; 3]) -> f64 {
    let (rgba, w, h) = load_png_rgba(png).unwrap();
    let close = rgba
        .chunks_exact(4)
        .filter(|p| (0..3).all(|i| (i32::from(p[i]) - i32::from(rgb[i])).abs() < 40))
        .count();
    close as f64 / f64::from(w * h)
}

/// Where the screenshots are kept.
fn keep_dir() -> PathBuf {
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("playback_gui");
    std::fs::create_dir_all(&keep).unwrap();
    keep
}

/// `viewer play` at `seek` seconds, paused, on `display`; its `frame` event.
fn play_paused(
    rec: &RecordingFile,
    display: &Xvfb,
    runtime: &Path,
    seek: &str,
) -> (Proc, serde_json::Value) {
    let mut viewer = Proc::spawn(
        "viewer-play",
        Command::new(bin("viewer"))
            .arg("play")
            .arg(&rec.file)
            .arg("--identity")
            .arg(&rec.key)
            .args(["--seek", seek, "--paused", "--json"])
            .env("DISPLAY", &display.display)
            .env("XDG_RUNTIME_DIR", runtime)
            .env_remove("WAYLAND_DISPLAY"),
    );
    let opened = viewer.wait_event("playback", T);
    assert_eq!(opened["width"], 320, "{opened}");
    assert_eq!(opened["duration_us"], 9_900_000, "{opened}");
    let frame = viewer.wait_event("frame", T);
    (viewer, frame)
}

#[test]
fn the_playback_window_shows_the_recording_where_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = red_then_blue(tmp.path(), 320, 180);
    let runtime = runtime_dir(tmp.path());
    let keep = keep_dir();
    let screen = Xvfb::start(1280, 800);

    let (mut viewer, frame) = play_paused(&rec, &screen, &runtime, "1");
    assert_eq!(frame["at_us"], 1_000_000, "{frame}");
    // The window is up; let the compositor-less X server settle the last pass.
    std::thread::sleep(Duration::from_millis(700));
    let at_1 = keep.join("at-1s.png");
    screen.screenshot(&at_1);
    let (red, blue) = (
        share_of_colour(&at_1, [255, 0, 0]),
        share_of_colour(&at_1, [0, 0, 255]),
    );
    assert!(
        red > 0.3 && blue < 0.01,
        "at 1 s the picture should be red: {:.1} % red, {:.1} % blue ({})",
        red * 100.0,
        blue * 100.0,
        at_1.display()
    );
    viewer.signal("TERM");
    viewer.wait_exit(T);

    let (mut viewer, frame) = play_paused(&rec, &screen, &runtime, "8");
    assert_eq!(frame["at_us"], 8_000_000, "{frame}");
    std::thread::sleep(Duration::from_millis(700));
    let at_8 = keep.join("at-8s.png");
    screen.screenshot(&at_8);
    let (red, blue) = (
        share_of_colour(&at_8, [255, 0, 0]),
        share_of_colour(&at_8, [0, 0, 255]),
    );
    assert!(
        blue > 0.3 && red < 0.01,
        "at 8 s the picture should be blue: {:.1} % red, {:.1} % blue ({})",
        red * 100.0,
        blue * 100.0,
        at_8.display()
    );
    viewer.signal("TERM");
    viewer.wait_exit(T);
}

#[test]
fn a_wrong_key_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = red_then_blue(tmp.path(), 64, 48);
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let wrong = red_then_blue(&other, 64, 48).key;
    let (status, stdout, stderr) = run(
        Command::new(bin("viewer"))
            .arg("play")
            .arg(&rec.file)
            .arg("--identity")
            .arg(&wrong)
            .arg("--json")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY"),
        None,
    );
    assert!(!status.success());
    assert_eq!(status.code(), Some(1), "an error, not a crash: {stderr}");
    assert!(stderr.contains("cannot decrypt"), "{stderr}");
    let event: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(event["event"], "error", "{stdout}");
}
