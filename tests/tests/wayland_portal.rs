//! Integration, Wayland: the headless desktop of `sightline_tests::wayland` is a real
//! xdg-desktop-portal ScreenCast with real PipeWire behind it. A client written independently
//! of the agent (tests/scripts/portal_probe.py: python3-dbus and GStreamer's pipewiresrc)
//! runs the portal handshake, takes a frame from the PipeWire node it is given, and sees the
//! colour the desktop shows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_media::convert::load_png_rgba;
use sightline_tests::wayland::{group_members, WaylandDesktop, BACKGROUND};
use std::path::Path;
use std::time::{Duration, Instant};

/// Share of the pixels of a PNG within 8 of `rgb` (0xRRGGBB) in every channel.
fn share_of_colour(png: &Path, rgb: u32) -> f64 {
    let (rgba, w, h) = load_png_rgba(png).unwrap();
    let want = [(rgb >> 16) as u8, (rgb >> 8) as u8, rgb as u8];
    let close = rgba
        .chunks_exact(4)
        .filter(|p| (0..3).all(|i| p[i].abs_diff(want[i]) <= 8))
        .count();
    close as f64 / f64::from(w * h)
}

/// Probes the portal until the frame is filled with `rgb` (swaybg draws a moment after sway
/// starts it); returns the last report.
fn frame_of_colour(desktop: &WaylandDesktop, png: &Path, rgb: u32) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let report = desktop.probe_portal(png, Some(rgb));
        if report["matching"].as_f64().unwrap_or(0.0) > 0.99 {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "the cast never showed #{rgb:06x}: {report}\n{}",
            desktop.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_portal_casts_the_headless_desktop_through_pipewire() {
    let started = Instant::now();
    let desktop = WaylandDesktop::start(800, 600);
    eprintln!("desktop ready in {:?}", started.elapsed());

    // What a client is given: Wayland, its runtime directory, the private bus; no X.
    let env = desktop.env();
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    for var in [
        "WAYLAND_DISPLAY",
        "XDG_RUNTIME_DIR",
        "DBUS_SESSION_BUS_ADDRESS",
        "XDG_CURRENT_DESKTOP",
    ] {
        assert!(names.contains(&var), "{var} missing from {env:?}");
    }
    assert!(!names.contains(&"DISPLAY"), "{env:?}");
    let socket = desktop.runtime_dir().join(desktop.wayland_display());
    assert!(socket.exists(), "{} is not there", socket.display());

    let out = tempfile::tempdir().unwrap();
    let png = out.path().join("frame.png");
    let t = Instant::now();
    let report = frame_of_colour(&desktop, &png, BACKGROUND);
    eprintln!("first frame in {:?}: {report}", t.elapsed());

    // One monitor stream, the output's size, as the portal describes it...
    assert_eq!(report["available_source_types"].as_u64().unwrap() & 1, 1);
    let streams = report["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "{report}");
    assert!(streams[0]["node_id"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(
        streams[0]["size"],
        serde_json::json!([800, 600]),
        "{report}"
    );
    // ...and the frame PipeWire delivered has that size and the desktop's colour.
    assert_eq!(
        (report["width"].as_u64(), report["height"].as_u64()),
        (Some(800), Some(600))
    );
    assert_eq!(report["centre"], format!("{BACKGROUND:06x}"), "{report}");
    let share = share_of_colour(&png, BACKGROUND);
    assert!(share > 0.99, "{share} of the PNG is #{BACKGROUND:06x}");
    // The pixman renderer has no DMA-BUF: shared memory it is (unless SIGHTLINE_XDPW picked
    // a backend for a machine with a GPU).
    if std::env::var_os("SIGHTLINE_XDPW").is_none() {
        assert_eq!(report["buffer_type"], "MemFd", "{report}");
    }

    // What the desktop shows can be changed, and a new cast sees it.
    desktop.set_background(0xcc3333);
    let report = frame_of_colour(&desktop, &png, 0xcc3333);
    assert_eq!(report["centre"], "cc3333", "{report}");
    assert!(share_of_colour(&png, 0xcc3333) > 0.99);

    // Everything the desktop started goes with it.
    let group = desktop.process_group();
    let dir = desktop.dir().to_path_buf();
    drop(desktop);
    let left = group_members(group);
    assert!(left.is_empty(), "still running after drop: {left:?}");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

#[test]
fn two_desktops_side_by_side_do_not_see_each_other() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| WaylandDesktop::start(640, 480));
        let b = s.spawn(|| WaylandDesktop::start(320, 240));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.bus_address(), b.bus_address());
    assert_ne!(a.runtime_dir(), b.runtime_dir());
    b.set_background(0x22aa44);
    let out = tempfile::tempdir().unwrap();
    let ra = frame_of_colour(&a, &out.path().join("a.png"), BACKGROUND);
    let rb = frame_of_colour(&b, &out.path().join("b.png"), 0x22aa44);
    assert_eq!(
        ra["streams"][0]["size"],
        serde_json::json!([640, 480]),
        "{ra}"
    );
    assert_eq!(
        rb["streams"][0]["size"],
        serde_json::json!([320, 240]),
        "{rb}"
    );
}
