//! GUI check under Xvfb: the customer's window (`agent --gui`, which a double-click opens) on
//! the preconfigured agent. The customer types only the code into the window and answers with
//! its keys; the operator's viewer sees the session start, the screen arrive and the session
//! end. Screenshots of each step are kept in target/screenshots/agent-window-*.png.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_tests::*;
use std::path::PathBuf;
use std::time::Duration;

const TITLE: &str = "Sightline remote support";

fn shots() -> PathBuf {
    let dir = bin("agent")
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_customer_types_the_code_into_the_window_and_answers_there() {
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let exe = relay.bundle_agent(&tmp.path().join("support"), &relay.addr);
    let mut viewer = relay.viewer(&tmp.path().join("viewer"));
    let code = viewer.session_code();

    let mut x = Xvfb::start(1024, 768);
    let data = tmp.path().join("agent");
    let window = x.app_window(
        exe.to_str().unwrap(),
        &["--gui", "--data-dir", data.to_str().unwrap()],
        TITLE,
    );
    let shots = shots();
    x.run("xdotool", &["windowfocus", "--sync", &window]);
    // Give egui a frame to draw the field it focuses.
    std::thread::sleep(Duration::from_millis(500));
    x.screenshot(&shots.join("agent-window-1-code.png"));
    let grouped = format!("{} {} {}", &code[..3], &code[3..6], &code[6..]);
    x.run("xdotool", &["type", "--delay", "60", &grouped]);
    x.run("xdotool", &["key", "Return"]);

    let a = viewer.wait_event("connected", SLOW);
    assert!(a["sas"].is_string());
    // The question is in the window now; wait for it to be drawn, then answer with Y.
    std::thread::sleep(Duration::from_secs(1));
    x.screenshot(&shots.join("agent-window-2-question.png"));
    x.run("xdotool", &["key", "y"]);
    let frame = viewer.wait_event("frame", SLOW);
    assert_eq!(frame["width"], 1024);
    std::thread::sleep(Duration::from_millis(500));
    x.screenshot(&shots.join("agent-window-3-sharing.png"));

    // E in the window ends the session for both.
    x.run("xdotool", &["windowfocus", "--sync", &window]);
    x.run("xdotool", &["key", "e"]);
    let closed = viewer.wait_event("closed", SLOW);
    assert_eq!(closed["normal"], true, "{closed}");
    std::thread::sleep(Duration::from_millis(500));
    x.screenshot(&shots.join("agent-window-4-ended.png"));
    // The window stays, telling how it ended, until the customer closes it.
    assert!(x.find_window(TITLE, Duration::from_secs(1)).is_some());
}
