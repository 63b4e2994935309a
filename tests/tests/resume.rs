//! Integration: a session survives a network cut between the agent and the relay (a test
//! proxy that goes silent and refuses new connections, [`sightline_tests::cutter`]): a 10 s cut
//! is resumed with the same verification code on both sides and no new consent; a cut longer
//! than the 30 s resume window ends the session on both sides with "connection lost".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_tests::cutter::Cutter;
use sightline_tests::*;
use std::time::{Duration, Instant};

/// The cut the issue asks to survive.
const CUT: Duration = Duration::from_secs(10);
/// Loss is noticed within about 8 s (6 s of silence, checked every 2 s); generous for a loaded
/// machine.
const NOTICE: Duration = Duration::from_secs(25);
/// The resume window (30 s) after the loss is noticed, plus the time to notice it, plus slack.
const WINDOW_END: Duration = Duration::from_secs(75);

/// A relay, a viewer on it, and an agent reaching it through a cutter, paired and sharing.
struct Setup {
    relay: Relay,
    _display: Xvfb,
    _tmp: tempfile::TempDir,
    cutter: Cutter,
    viewer: Proc,
    agent: Proc,
    sas: String,
}

fn paired() -> Setup {
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let display = Xvfb::start(640, 480);
    let cutter = Cutter::start(&relay.addr);
    let mut viewer = relay.viewer(&tmp.path().join("viewer"));
    let digits = viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let key = relay.fingerprint.clone();
    let mut agent = relay.agent_via(
        &cutter.addr,
        &tmp.path().join("agent"),
        &key,
        &digits,
        Some(&display.display),
        &[],
    );
    agent.write_line("y");
    let a = agent.wait_event("connected", SLOW);
    let v = viewer.wait_event("connected", SLOW);
    assert_eq!(a["sas"], v["sas"]);
    viewer.wait_event("frame", SLOW);
    let sas = v["sas"].as_str().unwrap().to_string();
    Setup {
        relay,
        _display: display,
        _tmp: tmp,
        cutter,
        viewer,
        agent,
        sas,
    }
}

fn count(p: &Proc, event: &str) -> usize {
    p.events().iter().filter(|e| *e == event).count()
}

#[test]
fn a_ten_second_cut_is_resumed_with_the_same_code_and_no_new_consent() {
    let mut s = paired();
    s.cutter.cut();
    let cut_at = Instant::now();
    let v = s.viewer.wait_event("reconnecting", NOTICE);
    let a = s.agent.wait_event("reconnecting", NOTICE);
    assert_eq!(v["within_secs"], 30);
    assert_eq!(a["within_secs"], 30);
    if let Some(left) = CUT.checked_sub(cut_at.elapsed()) {
        std::thread::sleep(left);
    }
    s.cutter.restore();

    let v = s.viewer.wait_event("reconnected", SLOW);
    let a = s.agent.wait_event("reconnected", SLOW);
    assert_eq!(v["sas"], s.sas.as_str(), "the viewer's code changed");
    assert_eq!(a["sas"], s.sas.as_str(), "the agent's code changed");
    // Pictures come again (a fresh keyframe after the resumption).
    s.viewer.wait_event("frame", SLOW);
    // No new code, no new handshake, no new question to the customer.
    assert_eq!(
        count(&s.agent, "consent_request"),
        1,
        "{:?}",
        s.agent.events()
    );
    assert_eq!(count(&s.agent, "connected"), 1);
    assert_eq!(count(&s.viewer, "connected"), 1);
    assert_eq!(count(&s.viewer, "code"), 1);
    let log = s.relay.log();
    assert!(log.contains("session interrupted"), "{log}");
    assert!(log.contains("session resumed"), "{log}");

    // The session goes on and ends as usual.
    s.agent.signal("TERM");
    let ac = s.agent.wait_event("closed", SLOW);
    assert_eq!(ac["reason"], "ended by customer");
    let vc = s.viewer.wait_event("closed", SLOW);
    assert_eq!(vc["reason"], "ended by customer");
    assert_eq!(vc["normal"], true);
    assert_eq!(s.viewer.wait_exit(SLOW).code(), Some(0));
}

#[test]
fn a_cut_longer_than_the_resume_window_ends_the_session_on_both_sides() {
    let mut s = paired();
    s.cutter.cut();
    s.viewer.wait_event("reconnecting", NOTICE);
    s.agent.wait_event("reconnecting", NOTICE);
    let v = s.viewer.wait_event("closed", WINDOW_END);
    let a = s.agent.wait_event("closed", WINDOW_END);
    for (side, c) in [("viewer", &v), ("agent", &a)] {
        assert_eq!(c["normal"], false, "{side}: {c}");
        let reason = c["reason"].as_str().unwrap();
        assert!(reason.contains("connection lost"), "{side}: {reason}");
    }
    assert!(!s.viewer.wait_exit(SLOW).success());
    s.agent.wait_exit(SLOW);
    s.cutter.restore();
    let log = s.relay.log();
    assert!(log.contains("parked session expired"), "{log}");
}
