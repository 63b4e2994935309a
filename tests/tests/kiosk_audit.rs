//! Integration, the LAN kiosk's own audit log: one direct session on a real kiosk, stopped
//! with SIGTERM, leaves its start, the session's connection and end, its stop and a signed
//! checkpoint in order, and `agent audit verify` passes it; a changed detail, a deleted line
//! and two swapped lines each make it fail naming the entry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use sightline_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// `agent audit verify FILE --key KEY`: exit code and standard output.
fn verify(file: &Path, key: &str) -> (Option<i32>, String) {
    let (status, out, err) = run(
        Command::new(bin("agent"))
            .args(["audit", "verify"])
            .arg(file)
            .args(["--key", key]),
        None,
    );
    assert_ne!(status.code(), Some(2), "{err}");
    (status.code(), out)
}

/// Writes `lines` (each without its newline) to a copy beside `log` and verifies it.
fn verify_copy(log: &Path, name: &str, lines: &[String], key: &str) -> (Option<i32>, String) {
    let copy = log.with_file_name(name);
    std::fs::write(
        &copy,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    verify(&copy, key)
}

/// `line` with `field` of its detail (JSON text) set to `value`; hash left as it was.
fn with_detail(line: &str, field: &str, value: Value) -> String {
    let mut entry: Value = serde_json::from_str(line).unwrap();
    let mut detail: Value = serde_json::from_str(entry["detail"].as_str().unwrap()).unwrap();
    assert_ne!(detail[field], value, "{line}");
    detail[field] = value;
    entry["detail"] = detail.to_string().into();
    entry.to_string()
}

#[test]
fn a_kiosk_session_is_on_its_log_in_order_and_tampering_is_named() {
    let x = Xvfb::start(640, 480);
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let (mut kiosk, addr) = lan_kiosk(
        &tmp.path().join("kiosk"),
        &x.display,
        &["--relay-key", &relay.fingerprint.clone()],
    );
    let opened = kiosk.wait_event("audit_log", T);
    let log = Path::new(opened["path"].as_str().unwrap()).to_path_buf();
    let key = opened["key"].as_str().unwrap().to_string();

    let mut viewer = direct_session(
        Some(&relay),
        &tmp.path().join("viewer"),
        &addr,
        &["--accept-new-agent-key", "--frames", "1"],
    );
    kiosk.wait_event("connected", SLOW);
    viewer.wait_event("frame", T);
    assert_eq!(viewer.wait_event("closed", T)["normal"], true);
    assert!(viewer.wait_exit(T).success());
    kiosk.wait_event("summary", T);
    kiosk.signal("TERM");
    kiosk.wait_event("stopped", T);
    assert!(kiosk.wait_exit(T).success());

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<String> = text.lines().map(String::from).collect();
    let entries: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "kiosk.started",
            "kiosk.session.connected",
            "kiosk.session.ended",
            "kiosk.stopped",
            "audit.checkpoint",
        ],
        "{text}"
    );
    let (connected, ended) = (&entries[1], &entries[2]);
    assert_eq!(connected["subject"], "alice");
    assert!(connected["session"].is_string());
    assert_eq!(ended["session"], connected["session"]);
    let end: Value = serde_json::from_str(ended["detail"].as_str().unwrap()).unwrap();
    assert_eq!(end["normal"], true, "{end}");
    assert!(end["bytes_to_operator"].as_u64().unwrap() > 0, "{end}");

    let (code, out) = verify(&log, &key);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with("ok: 5 entries, last checkpoint #5"),
        "{out}"
    );

    let mut changed = lines.clone();
    changed[2] = with_detail(&lines[2], "normal", false.into());
    let mut deleted = lines.clone();
    deleted.remove(1);
    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    for (name, tampered, named) in [
        ("changed", changed, "#3: hash does not match"),
        ("deleted", deleted, "#2: missing"),
        ("swapped", swapped, "#2: missing"),
    ] {
        let (code, out) = verify_copy(&log, name, &tampered, &key);
        assert_eq!(code, Some(1), "{name}: {out}");
        assert!(
            out.starts_with(&format!("bad: entry {named}")),
            "{name}: {out}"
        );
    }
}
