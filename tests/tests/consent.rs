//! Integration, the customer stays in charge: nothing is shared before the customer says yes,
//! a refusal or silence ends the session with the right reason on both sides, control is a
//! second yes that the customer can take back (input stops, held keys are released), the
//! on-screen indicator exists while shared (and is in the video), and the customer can end the
//! session from the terminal or with the global hotkey.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_core::messages::{CloseReason, InputEvent, Message};
use sightline_media::convert::load_png_rgba;
use sightline_net::session;
use sightline_tests::*;
use std::path::Path;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);
const INDICATOR: &str = "Sightline session indicator";

fn code_of(viewer: &mut Proc) -> String {
    viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Whether the indicator window is on `display`.
fn indicator_shown(x: &Xvfb) -> bool {
    x.run("xwininfo", &["-root", "-tree"]).contains(INDICATOR)
}

#[test]
fn nothing_is_shared_before_consent_and_a_refusal_ends_the_session() {
    let x = Xvfb::start(640, 480);
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    // The operator asked for a picture that will never exist: the session's end says why.
    let frame = tmp.path().join("frame.png");
    let frame_arg = frame.to_string_lossy().into_owned();
    let mut viewer = relay.viewer_args(&tmp.path().join("viewer"), &["--save-frame", &frame_arg]);
    let code = code_of(&mut viewer);
    let mut agent = relay.agent_asking(
        &tmp.path().join("agent"),
        &relay.fingerprint.clone(),
        &code,
        Some(&x.display),
        &[],
    );
    let asked = agent.wait_event("consent_request", SLOW);
    assert_eq!(asked["what"], "viewing");
    assert_eq!(viewer.wait_event("consent_pending", T)["what"], "viewing");
    // While the customer thinks it over: no picture, no capture, no banner.
    let quiet_until = Instant::now() + Duration::from_secs(2);
    while let Some(left) = quiet_until.checked_duration_since(Instant::now()) {
        viewer.next_line(left);
    }
    for e in ["video", "frame"] {
        assert!(
            !viewer.events().iter().any(|n| n == e),
            "{e} before consent: {:?}",
            viewer.seen
        );
    }
    assert!(!agent.events().iter().any(|n| n == "sharing"));
    assert!(!indicator_shown(&x));

    agent.write_line("n");
    let closed = viewer.wait_event("closed", T);
    assert_eq!(closed["reason"], "declined by customer", "{closed}");
    assert_eq!(closed["normal"], true);
    assert_eq!(
        agent.wait_event("closed", T)["reason"],
        "declined by customer"
    );
    let summary = agent.wait_event("summary", T);
    assert_eq!(summary["used"], serde_json::json!([]));
    assert!(viewer.events().iter().all(|n| n != "frame"));
    // After the reason, and only after it: the frame that could not be saved.
    let note = viewer.wait_event("notice", T);
    assert!(
        note["message"]
            .as_str()
            .unwrap()
            .contains("no frame was decoded"),
        "{note}"
    );
    assert!(!frame.exists());
    // The customer's no is the viewer's "refused" (4), not a failure (1); for the customer's
    // own agent it is a normal end.
    assert_eq!(viewer.wait_exit(T).code(), Some(4));
    assert!(
        !viewer.stderr().contains("viewer: error"),
        "{}",
        viewer.stderr()
    );
    assert!(agent.wait_exit(T).success());
}

#[test]
fn no_answer_ends_the_session_with_its_own_reason() {
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut viewer = relay.viewer(&tmp.path().join("viewer"));
    let code = code_of(&mut viewer);
    let mut agent = relay.agent_unanswered(
        &tmp.path().join("agent"),
        &code,
        &["--consent-timeout", "5"],
    );
    agent.wait_event("consent_request", SLOW);
    let asked = Instant::now();
    let closed = viewer.wait_event("closed", T);
    assert_eq!(closed["reason"], "customer did not answer", "{closed}");
    assert!(
        asked.elapsed() >= Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(
        agent.wait_event("closed", T)["reason"],
        "customer did not answer"
    );
    assert!(viewer.events().iter().all(|n| n != "frame"));
    assert_eq!(viewer.wait_exit(T).code(), Some(4), "refused");

    // No terminal at all (standard input closed): nobody can say yes, so it is a no.
    let mut viewer = relay.viewer(&tmp.path().join("viewer2"));
    let code = code_of(&mut viewer);
    let mut agent = relay.agent_unanswered(&tmp.path().join("agent2"), &code, &[]);
    agent.close_stdin();
    assert_eq!(
        viewer.wait_event("closed", T)["reason"],
        "declined by customer"
    );
}

fn typed_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn control_is_a_second_yes_and_the_customer_takes_it_back() {
    let mut x = Xvfb::start(1024, 768);
    let tmp = tempfile::tempdir().unwrap();
    let typed = tmp.path().join("typed.txt");
    x.typing_target(&typed);
    let mut relay = Relay::new(None);
    relay.start();

    // The operator's side is written here on the real protocol, so that it can keep sending
    // input after the customer takes control back (the real viewer stops by itself).
    let rt = test_runtime();
    let display = x.display.clone();
    let agent_dir = tmp.path().join("agent");
    rt.block_on(async {
        let (stream, session, mut agent) = modified_viewer(&relay, |digits| {
            relay.agent_on(&agent_dir, &relay.fingerprint, digits, Some(&display))
        })
        .await;
        let (to_agent, mut from_agent, pump) =
            test_peer_pump(stream, session, "test-operator", &[]);
        // Waits for the agent's next Control message, skipping video.
        async fn control(rx: &mut tokio::sync::mpsc::Receiver<Message>) -> bool {
            loop {
                match tokio::time::timeout(T, rx.recv()).await {
                    Ok(Some(Message::Control { granted })) => return granted,
                    Ok(Some(_)) => {}
                    other => panic!("no control message: {other:?}"),
                }
            }
        }
        let input = |ev: InputEvent| to_agent.send(Message::Input(ev));

        // Input before any grant goes nowhere.
        input(InputEvent::Text {
            text: "early\n".into(),
        })
        .await
        .unwrap();
        // Ask once the screen is shared (as the real viewer does: a request that arrives while
        // the customer is still being asked about viewing is declined, since nothing is shared
        // yet); the customer is asked and says yes.
        tokio::task::block_in_place(|| agent.wait_event("sharing", T));
        to_agent.send(Message::ControlRequest).await.unwrap();
        tokio::task::block_in_place(|| agent.allow_control(T));
        assert!(control(&mut from_agent).await, "control granted");
        input(InputEvent::Text {
            text: "before\n".into(),
        })
        .await
        .unwrap();
        input(InputEvent::Key {
            key: "ShiftLeft".into(),
            pressed: true,
        })
        .await
        .unwrap();
        tokio::task::block_in_place(|| {
            eventually("typed text before revocation", T, || {
                typed_text(&typed).contains("before\n")
            });
            eventually("shift held", T, || pressed_keys(&display) >= 1);
            // The customer takes control back from the terminal.
            agent.write_line("r");
        });
        assert!(!control(&mut from_agent).await, "control revoked");
        tokio::task::block_in_place(|| {
            eventually("held keys released", T, || pressed_keys(&display) == 0);
        });
        // A modified viewer keeps typing: none of it arrives.
        for _ in 0..5 {
            input(InputEvent::Text {
                text: "after\n".into(),
            })
            .await
            .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // Asking again is a new question; this time the customer says no.
        to_agent.send(Message::ControlRequest).await.unwrap();
        tokio::task::block_in_place(|| {
            agent.wait_event_where("consent_request", "what", "control".into(), T);
            agent.write_line("n");
        });
        assert!(!control(&mut from_agent).await, "control declined");
        // The customer ends the session from the terminal.
        tokio::task::block_in_place(|| agent.write_line("e"));
        let end = tokio::time::timeout(T, pump).await.unwrap().unwrap();
        assert_eq!(
            end,
            session::SessionEnd::PeerClosed(CloseReason::EndedByCustomer)
        );
        tokio::task::block_in_place(|| {
            let summary = agent.wait_event("summary", T);
            assert_eq!(summary["used"], serde_json::json!(["view", "control"]));
            assert!(agent.wait_exit(T).success());
            let log = agent.stderr();
            assert!(
                log.contains("input without the customer's grant of control dropped"),
                "{log}"
            );
        });
    });
    let text = typed_text(&typed);
    assert_eq!(
        text, "before\n",
        "only input between grant and revocation arrives"
    );
}

#[test]
fn the_indicator_is_on_screen_and_in_the_video_and_the_hotkey_ends_the_session() {
    let x = Xvfb::start(1024, 768);
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let saved = tmp.path().join("first.png");
    let saved_s = saved.to_string_lossy().into_owned();
    let mut viewer = relay.viewer_args(
        &tmp.path().join("viewer"),
        &[
            "--frames",
            "2",
            "--save-frame",
            &saved_s,
            "--request-control",
        ],
    );
    let code = code_of(&mut viewer);
    let mut agent = relay.agent_on(
        &tmp.path().join("agent"),
        &relay.fingerprint.clone(),
        &code,
        Some(&x.display),
    );
    let sharing = agent.wait_event("sharing", SLOW);
    assert_eq!(sharing["indicator"], true, "{sharing}");
    assert!(indicator_shown(&x), "no indicator window while shared");
    // The viewer asked for control; the customer allows it and the viewer is told.
    agent.allow_control(T);
    assert_eq!(
        viewer.wait_event_where("control", "granted", true.into(), T)["granted"],
        true
    );
    // The banner is in the pictures the operator gets: the top rows are its colour.
    viewer.wait_event("closed", T);
    let (rgba, w, _) = load_png_rgba(&saved).unwrap();
    let banner = sightline_agent_banner_rgb();
    let row = 4usize;
    let near = (0..w as usize)
        .filter(|&col| {
            let p = &rgba[(row * w as usize + col) * 4..][..3];
            p.iter()
                .zip(banner)
                .all(|(a, b)| (i32::from(*a) - i32::from(b)).abs() <= 40)
        })
        .count();
    assert!(
        near * 2 > w as usize,
        "the banner colour fills only {near} of {w} pixels of row {row}"
    );
    let _ = agent.wait_event("closed", T);
    // The agent ended with the viewer; its banner went with it.
    assert!(agent.wait_exit(T).success());
    eventually("indicator gone", T, || !indicator_shown(&x));

    // Another session, ended by the customer's global hotkey.
    let mut viewer = relay.viewer(&tmp.path().join("viewer2"));
    let code = code_of(&mut viewer);
    let mut agent = relay.agent_on(
        &tmp.path().join("agent"),
        &relay.fingerprint.clone(),
        &code,
        Some(&x.display),
    );
    agent.wait_event("sharing", SLOW);
    viewer.wait_event("frame", T);
    x.run("xdotool", &["key", "ctrl+alt+q"]);
    let closed = viewer.wait_event("closed", T);
    assert_eq!(closed["reason"], "ended by customer", "{closed}");
    assert_eq!(agent.wait_event("closed", T)["reason"], "ended by customer");
    assert!(agent.wait_exit(T).success());
    eventually("indicator gone", T, || !indicator_shown(&x));
}

/// The banner's colour, as the agent's indicator module defines it.
fn sightline_agent_banner_rgb() -> [u8; 3] {
    sightline_agent::indicator::BANNER_RGB
}
