//! The clip player puts exactly the recorded pixels on an X display, and the end-to-end
//! benchmark measures a real relay, viewer and agent (figures printed, never asserted: only
//! that they were measured, and that a still screen sends nothing).
//!
//! Needs the binaries: `cargo build -p sightline-agent -p sightline-viewer -p sightline-relay
//! --bins` (`cargo test` does not build them for this crate).

// Helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;

use sightline_agent::capture::x11::{X11Capturer, X11Options};
use sightline_agent::capture::Capturer;
use sightline_bench::corpus::{self, ClipReader, CorpusFrame};
use sightline_bench::e2e::{self, E2eOptions};
use sightline_bench::player::Player;
use sightline_tests::Xvfb;

/// The tests here use X displays and the CPU heavily: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn clip(name: &str) -> ClipReader {
    ClipReader::open(&corpus::corpus_dir().join(format!("{name}.png"))).unwrap()
}

/// Captures the display and checks every pixel's B, G, R against `frame` (the fourth byte is
/// undefined in an X11 capture).
fn assert_on_screen(capturer: &mut X11Capturer, frame: &CorpusFrame) {
    let shot = capturer.capture().unwrap().frame;
    let want = frame.bgra.as_ref();
    assert_eq!((shot.width, shot.height), (want.width, want.height));
    let row = want.width as usize * 4;
    for y in 0..want.height as usize {
        let got = &shot.data[y * shot.stride..][..row];
        let expected = &want.data[y * want.stride..][..row];
        if got
            .chunks_exact(4)
            .zip(expected.chunks_exact(4))
            .any(|(g, e)| g[..3] != e[..3])
        {
            let x = got
                .chunks_exact(4)
                .zip(expected.chunks_exact(4))
                .position(|(g, e)| g[..3] != e[..3])
                .unwrap();
            panic!(
                "frame {}: pixel ({x}, {y}) is {:?} on screen, {:?} in the clip",
                frame.index,
                &got[x * 4..x * 4 + 3],
                &expected[x * 4..x * 4 + 3]
            );
        }
    }
}

/// Shows the first `count` frames of `name`, checking the screen after each one in `check`.
fn play_and_compare(name: &str, count: u32, limit: Option<usize>, check: &[u32]) {
    let mut reader = clip(name);
    let x = Xvfb::start(reader.width(), reader.height());
    let mut player = Player::connect(&x.display).unwrap();
    assert_eq!(player.size(), (reader.width(), reader.height()));
    if let Some(bytes) = limit {
        player.limit_request_bytes(bytes);
        assert!(player.max_request_bytes() <= bytes);
    }
    let options = X11Options {
        display: Some(x.display.clone()),
        ..X11Options::default()
    };
    let mut capturer = X11Capturer::open(&options, None).unwrap();
    for _ in 0..count {
        let frame = reader.next_frame().unwrap().unwrap();
        player.show(&frame).unwrap();
        if check.contains(&frame.index) {
            assert_on_screen(&mut capturer, &frame);
        }
    }
}

#[test]
fn the_player_puts_the_recorded_pixels_on_the_screen() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // Typing: small damage rectangles composed over the first frame.
    play_and_compare("typing-1280x720", 40, None, &[0, 1, 2, 10, 25, 39]);
    // Scrolling: large rectangles, sent in many requests of at most 64 KiB.
    play_and_compare("scroll-1280x720", 12, Some(64 * 1024), &[0, 1, 5, 11]);
}

#[test]
fn the_player_sends_only_what_changed() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut reader = clip("idle-1280x720");
    let x = Xvfb::start(reader.width(), reader.height());
    let mut player = Player::connect(&x.display).unwrap();
    let first = reader.next_frame().unwrap().unwrap();
    player.show(&first).unwrap();
    let whole = u64::from(reader.width()) * u64::from(reader.height()) * 4;
    assert_eq!(player.sent_bytes(), whole);
    // Frames where nothing changed, and the first frame again (as when a loop starts over):
    // the screen already shows them, so nothing is sent.
    while let Some(frame) = reader.next_frame().unwrap() {
        player.show(&frame).unwrap();
    }
    player.show(&first).unwrap();
    assert_eq!(player.sent_bytes(), whole);

    // Typing: each change sends its rectangle, far less than the screen.
    let mut reader = clip("typing-1280x720");
    let x = Xvfb::start(reader.width(), reader.height());
    let mut player = Player::connect(&x.display).unwrap();
    player.show(&reader.next_frame().unwrap().unwrap()).unwrap();
    let mut changes = 0;
    for _ in 0..30 {
        let frame = reader.next_frame().unwrap().unwrap();
        changes += u64::from(frame.changed);
        player.show(&frame).unwrap();
    }
    assert!(changes > 0);
    let typed = player.sent_bytes() - whole;
    assert!(
        typed > 0 && typed < whole / 10,
        "{typed} bytes for {changes} changes"
    );
}

#[test]
fn end_to_end_latency_is_measured_and_a_still_screen_sends_nothing() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut opts = E2eOptions::quick();
    opts.clips.push("idle-1280x720".into());
    let results = e2e::run(&opts).unwrap();
    eprintln!("{}", e2e::HEADER.join(" | "));
    for row in e2e::rows(&results) {
        eprintln!("{}", row.join(" | "));
    }
    eprintln!("{}", serde_json::to_string_pretty(&results).unwrap());
    assert_eq!(results.len(), 2);

    let typing = &results[0];
    assert_eq!(
        (typing.clip.as_str(), typing.encoder.as_str()),
        ("typing-1280x720", "aom")
    );
    assert!(typing.frames > 0, "no frames decoded while typing");
    assert!(typing.latency_p50_ms.unwrap() > 0.0);
    assert!(typing.latency_max_ms >= typing.latency_p95_ms);
    assert!(typing.bytes_per_sec > 0.0 && typing.keyframe_bytes > 0);
    assert!(typing.agent_cpu > 0.0);
    assert!(typing.agent_peak_kib > 0 && typing.agent_peak_kib >= typing.agent_rss_kib);
    assert!(typing.relay_rss_kib > 0);
    assert!(typing.player.frames > 0);

    let idle = &results[1];
    assert_eq!(idle.clip, "idle-1280x720");
    assert_eq!(
        idle.frames, 0,
        "frames were sent for a still screen: {idle:?}"
    );
    assert!(idle.keyframe_bytes > 0, "the first picture is a keyframe");
    assert!(idle.player.loops > 0 || idle.seconds < 3.0);
}

/// A measurement to run by hand and read, not a check:
/// `E2E_CLIPS=typing-1920x1080 E2E_ENCODERS=aom,rav1e E2E_SECONDS=12 cargo test -p
/// sightline-bench --test e2e -- --ignored --nocapture` (those are the defaults).
#[test]
#[ignore = "a measurement of several minutes; run by hand"]
fn measure_by_hand() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let list = |var: &str, default: &str| -> Vec<String> {
        std::env::var(var)
            .unwrap_or_else(|_| default.into())
            .split(',')
            .map(str::to_string)
            .collect()
    };
    let opts = E2eOptions {
        seconds: std::env::var("E2E_SECONDS").map_or(12, |s| s.parse().unwrap()),
        encoders: list("E2E_ENCODERS", "aom,rav1e"),
        clips: list("E2E_CLIPS", "typing-1920x1080"),
    };
    let results = e2e::run(&opts).unwrap();
    eprintln!("{}", e2e::HEADER.join(" | "));
    for row in e2e::rows(&results) {
        eprintln!("{}", row.join(" | "));
    }
    eprintln!("{}", serde_json::to_string_pretty(&results).unwrap());
}
