//! Integration: one whole session through the real relay, viewer and agent binaries leaves its
//! whole story in the relay's audit log, in order: the code issued and redeemed, the pairing
//! (with the agent's proven key), the permissions, the session's media key and every question and answer inside the
//! end-to-end session (signed by the agent, handed in by the viewer), control taken back, and
//! the session's end; `relay audit verify` then passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_tests::*;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);
/// The relay parks a session 30 s after its connections end before it records the end.
const END_RECORDED: Duration = Duration::from_secs(75);

fn audit(relay: &Relay) -> Vec<serde_json::Value> {
    let (st, out, err) = relay.cli(&["audit", "--jsonl"], None);
    assert!(st.success(), "relay audit --jsonl: {err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_whole_session_is_on_the_audit_log_in_order_and_the_log_verifies() {
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut viewer = relay.viewer_args(&tmp.path().join("viewer"), &["--request-control"]);
    let digits = viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let mut agent = relay.agent(&tmp.path().join("agent"), &digits);
    agent.wait_event("sharing", SLOW);
    agent.allow_control(T);
    viewer.wait_event_where("control", "granted", true.into(), T);
    // The customer takes control back, then ends the session.
    agent.write_line("r");
    viewer.wait_event_where("control", "revoked", true.into(), T);
    agent.write_line("e");
    viewer.wait_event("closed", T);
    agent.wait_exit(T);
    viewer.wait_exit(T);

    let session = {
        let log = audit(&relay);
        let paired = log
            .iter()
            .find(|e| e["action"] == "session.paired")
            .unwrap();
        paired["session"].as_str().unwrap().to_string()
    };
    let deadline = Instant::now() + END_RECORDED;
    let entries = loop {
        let of_session: Vec<serde_json::Value> = audit(&relay)
            .into_iter()
            .filter(|e| e["session"] == session.as_str())
            .collect();
        if of_session.iter().any(|e| e["action"] == "session.ended") {
            break of_session;
        }
        assert!(
            Instant::now() < deadline,
            "no session.ended: {of_session:#?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "code.issued",
            "code.redeemed",
            "session.paired",
            "session.permissions",
            "session.media_key",
            "consent.asked",
            "consent.given",
            "consent.asked",
            "consent.given",
            "control.revoked",
            "session.ended",
        ],
        "{entries:#?}"
    );
    let detail = |i: usize| entries[i]["detail"].as_str().unwrap().to_string();
    assert!(detail(2).contains("agent key "), "{}", detail(2));
    assert!(!detail(2).contains("not proven"), "{}", detail(2));
    assert!(
        detail(4).starts_with("#2: media checkpoint key "),
        "{}",
        detail(4)
    );
    assert!(detail(5).contains("viewing") && detail(7).contains("control"));
    assert!(detail(9).contains("by the customer"), "{}", detail(9));
    // The agent's entries carry its numbering, 1 to 7 without a gap.
    for (i, n) in (3..=9).zip(1..) {
        assert!(detail(i).starts_with(&format!("#{n}:")), "{}", detail(i));
    }
    let (st, out, err) = relay.cli(&["audit", "verify"], None);
    assert!(st.success(), "verify failed: {out} {err}");
    assert!(out.starts_with("ok: "), "{out}");
}
