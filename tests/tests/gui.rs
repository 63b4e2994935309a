//! Integration, GUI: the operator's window under Xvfb (wgpu on Mesa's software Vulkan), logged
//! in and connected, shows the customer's screen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_media::convert::load_png_rgba;
use sightline_tests::*;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

/// Share of pixels close to `rgb`.
fn share_of_colour(png: &std::path::Path, rgb: [u8; 3]) -> f64 {
    let (rgba, w, h) = load_png_rgba(png).unwrap();
    let close = rgba
        .chunks_exact(4)
        .filter(|p| (0..3).all(|i| (i32::from(p[i]) - i32::from(rgb[i])).abs() < 40))
        .count();
    close as f64 / f64::from(w * h)
}

#[test]
fn the_viewer_window_shows_the_remote_screen() {
    // The customer's screen: a big magenta window.
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
    // The operator's screen, with nothing magenta on it before the session.
    let operator = Xvfb::start(1280, 800);
    let tmp = tempfile::tempdir().unwrap();
    let before = tmp.path().join("before.png");
    operator.screenshot(&before);
    assert!(share_of_colour(&before, [255, 0, 255]) < 0.001);

    let mut relay = Relay::new(None);
    relay.start();
    let mut viewer = Proc::spawn(
        "viewer-gui",
        Command::new(bin("viewer"))
            .arg("--data-dir")
            .arg(tmp.path().join("viewer"))
            .args([
                "--relay",
                &relay.addr,
                "--relay-key",
                &relay.fingerprint,
                "--user",
                "alice",
                "--password-stdin",
                "--json",
            ])
            .env("DISPLAY", &operator.display)
            .env("XDG_RUNTIME_DIR", runtime_dir(tmp.path()))
            .env_remove("WAYLAND_DISPLAY"),
    );
    viewer.send_lines(&[PASSWORD, &relay.totp("alice")]);
    let code = viewer.wait_event("code", T)["code"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(Duration::from_millis(700));
    let waiting = tmp.path().join("waiting.png");
    operator.screenshot(&waiting);

    let mut agent = relay.agent_on(
        &tmp.path().join("agent"),
        &relay.fingerprint.clone(),
        &code,
        Some(&customer.display),
    );
    agent.wait_event("connected", T);
    viewer.wait_event("first_frame", T);
    std::thread::sleep(Duration::from_secs(2));
    let live = tmp.path().join("live.png");
    operator.screenshot(&live);
    let magenta = share_of_colour(&live, [255, 0, 255]);
    // Keep the screenshots for people to look at.
    let keep = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gui");
    std::fs::create_dir_all(&keep).unwrap();
    for f in ["before.png", "waiting.png", "live.png"] {
        std::fs::copy(tmp.path().join(f), keep.join(f)).unwrap();
    }
    assert!(magenta > 0.2, "the viewer window shows too little of the remote screen: {:.1} % magenta (screenshots in {})", magenta * 100.0, keep.display());

    // Killing the window's process ends the session on the customer's side too.
    viewer.signal("KILL");
    // After the 30 s in which the viewer could have come back.
    agent.wait_event("closed", SLOW);
}

#[test]
fn the_window_signs_in_with_the_identity_provider_in_the_system_browser() {
    use sightline_tests::oidc::{
        browser_script, default_config, relay_with_table, OidcProvider, CAROL,
    };
    // A help desk's shortcut: the relay, its key and the provider prefilled; the operator
    // presses Enter on "Sign in with corp", the system browser ($BROWSER: headless Chromium
    // signing Carol in at the real provider's page) comes back, and the window gets a code.
    let provider = OidcProvider::start(&default_config());
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay_with_table(&provider, tmp.path(), "", "auto_provision = true");
    let operator = Xvfb::start(1280, 800);
    let mut viewer = Proc::spawn(
        "viewer-gui",
        Command::new(bin("viewer"))
            .arg("--data-dir")
            .arg(tmp.path().join("viewer"))
            .args([
                "--relay",
                &relay.addr,
                "--relay-key",
                &relay.fingerprint,
                "--sign-in-with",
                "corp",
                "--json",
            ])
            .env("DISPLAY", &operator.display)
            .env("XDG_RUNTIME_DIR", runtime_dir(tmp.path()))
            .env_remove("WAYLAND_DISPLAY")
            .env("BROWSER", browser_script(tmp.path()))
            .env("SL_OUT", tmp.path().join("browser.out"))
            .env("SL_USER", CAROL.username)
            .env("SL_PASSWORD", CAROL.password),
    );
    let Some(window) = operator.find_window("Sightline viewer", T) else {
        panic!("no viewer window: {}", viewer.stderr());
    };
    std::thread::sleep(Duration::from_secs(2));
    let form = tmp.path().join("sign-in-form.png");
    operator.screenshot(&form);
    operator.run("xdotool", &["windowfocus", "--sync", &window]);
    operator.run("xdotool", &["key", "Return"]);

    let opened = viewer.wait_event("oidc_browser", T);
    assert_eq!(opened["opened"], true, "{opened}");
    let login = viewer.wait_event("login", T);
    assert_eq!(login["operator"], "carol", "{login}");
    viewer.wait_event("code", T);
    std::thread::sleep(Duration::from_millis(700));
    let waiting = tmp.path().join("signed-in-waiting.png");
    operator.screenshot(&waiting);
    let keep = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gui");
    std::fs::create_dir_all(&keep).unwrap();
    for f in ["sign-in-form.png", "signed-in-waiting.png"] {
        std::fs::copy(tmp.path().join(f), keep.join(f)).unwrap();
    }
    viewer.signal("KILL");
}
