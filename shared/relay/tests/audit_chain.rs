//! The real `relay` binary on a tampered audit log: `relay audit verify` names the first bad
//! entry (changed, deleted, inserted, swapped, truncated past an anchor) and passes an
//! untouched log; `--jsonl --since` and `--follow` export it; `relay serve` signs a
//! checkpoint when it stops.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{relay, stdout};
use rusqlite::Connection;
use sightline_relay::store::audit::{self, Checkpointer};
use sightline_relay::store::db::Database;
use sightline_relay::store::paths::DataDir;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct-horse-battery-staple-9";

/// A data directory with an audit key and ten entries, a checkpoint after every four: ids
/// 1-4, checkpoint 5, 6-9, checkpoint 10, 11-12. Returns the public key.
fn logged(dir: &Path) -> String {
    let data = DataDir::new(dir);
    let (key, _) = audit::key::load_or_create(&data).unwrap();
    let public = audit::key::public_hex(&key);
    let mut db = Database::create(&data.database()).unwrap();
    db.sign_audit_checkpoints(Checkpointer { key, every: 4 });
    for i in 0..10u64 {
        let subject = format!("user{i}");
        audit::record(
            &db,
            1_700_000_000 + i,
            "cli",
            "user.add",
            Some(&subject),
            None,
        )
        .unwrap();
    }
    public
}

/// Runs `verify` after `tamper` changed a fresh copy of the log with the `sqlite3` command
/// line, as someone with the file would; returns exit code and stdout.
fn verify_after(tamper: &str, extra: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let public = logged(dir.path());
    let edit = std::process::Command::new("sqlite3")
        .arg(dir.path().join("relay.db"))
        .arg(tamper)
        .output()
        .expect("sqlite3 (apt-get install sqlite3; ./dev installs it)");
    assert!(
        edit.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&edit.stderr)
    );
    let mut args = vec!["audit", "verify", "--key", &public];
    args.extend_from_slice(extra);
    let out = relay(dir.path(), &args);
    (out.status.code(), stdout(&out))
}

#[test]
fn verify_names_the_first_bad_entry() {
    let (code, text) = verify_after("", &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.starts_with("ok: 12 entries, last checkpoint #10 at 2023-11-14T22:13:"),
        "{text}"
    );

    let cases = [
        (
            "changed",
            "UPDATE audit SET detail = 'nothing happened' WHERE id = 7",
            "#7:",
        ),
        ("deleted", "DELETE FROM audit WHERE id = 3", "#3: missing"),
        (
            "inserted",
            "UPDATE audit SET id = id + 1000 WHERE id >= 6;
             UPDATE audit SET id = id - 999 WHERE id >= 1000;
             INSERT INTO audit (id, at, actor, action, subject, hash)
                 SELECT 6, at, actor, action, 'mallory', hash FROM audit WHERE id = 7;",
            "#6:",
        ),
        (
            "swapped",
            "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE id IN (8, 9);
             DELETE FROM audit WHERE id IN (8, 9);
             INSERT INTO audit SELECT 17 - id, at, actor, action, subject, detail, session, hash
                 FROM t;",
            "#8:",
        ),
    ];
    for (what, tamper, named) in cases {
        let (code, text) = verify_after(tamper, &[]);
        assert_eq!(code, Some(1), "{what}: {text}");
        assert!(
            text.starts_with(&format!("bad: entry {named}")),
            "{what}: {text}"
        );
    }
}

#[test]
fn an_anchor_catches_truncation_and_the_key_comes_from_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    logged(dir.path());
    let export = stdout(&relay(dir.path(), &["audit", "--jsonl"]));
    let anchor_line = export
        .lines()
        .rfind(|l| l.contains("\"action\":\"audit.checkpoint\""))
        .unwrap();
    let anchor = dir.path().join("anchor.json");
    std::fs::write(&anchor, format!("{anchor_line}\n")).unwrap();
    let anchor = anchor.to_str().unwrap();
    let verify = |args: &[&str]| relay(dir.path(), &[&["audit", "verify"], args].concat());
    assert_eq!(verify(&["--anchor", anchor]).status.code(), Some(0));

    let conn = Connection::open(dir.path().join("relay.db")).unwrap();
    conn.execute("DELETE FROM audit WHERE id > 7", []).unwrap();
    drop(conn);
    // Without the anchor the shorter log looks whole (docs/security.md says so).
    assert_eq!(verify(&[]).status.code(), Some(0));
    let out = verify(&["--anchor", anchor]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("bad: entry #10: missing"),
        "{}",
        stdout(&out)
    );

    // A checkpoint checked against another key fails; a malformed key is an error.
    let other = "11".repeat(32);
    assert_eq!(verify(&["--key", "ab"]).status.code(), Some(1));
    let out = verify(&["--key", &other]);
    assert!(
        stdout(&out).starts_with("bad: entry #5:"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn jsonl_since_prints_stable_lines() {
    let dir = tempfile::tempdir().unwrap();
    logged(dir.path());
    let out = relay(dir.path(), &["audit", "--jsonl", "--since", "9"]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<i64> = lines.iter().map(|l| l["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [10, 11, 12]);
    assert_eq!(lines[0]["action"], "audit.checkpoint");
    assert_eq!(lines[1]["at"], "2023-11-14T22:13:28Z");
    assert_eq!(lines[1]["at_unix"], 1_700_000_008);
    assert_eq!(lines[1]["subject"], "user8");
    assert_eq!(lines[1]["session"], serde_json::Value::Null);
    assert_eq!(lines[1]["hash"].as_str().unwrap().len(), 64);
}

fn terminate(child: &Child) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
}

/// Waits at most `limit` for the child to exit.
fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn add_user(data: &Path, name: &str) {
    let mut add = Command::new(env!("CARGO_BIN_EXE_relay"))
        .arg("--data-dir")
        .arg(data)
        .args(["user", "add", name, "--password-stdin", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(add.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(add.wait().unwrap().success());
}

#[test]
fn follow_sees_an_entry_written_by_another_process_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    logged(dir.path());
    let mut follow = Command::new(env!("CARGO_BIN_EXE_relay"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["audit", "--jsonl", "--follow", "--since", "11"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = BufReader::new(follow.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(first.starts_with("{\"id\":12,"), "{first}");
    add_user(dir.path(), "alice");
    let next = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let next: serde_json::Value = serde_json::from_str(&next).unwrap();
    assert_eq!(
        (next["id"].as_i64(), &next["action"]),
        (Some(13), &"user.add".into())
    );
    assert_eq!(next["subject"], "alice");
    terminate(&follow);
    assert!(wait_exit(&mut follow, Duration::from_secs(10)).success());
}

#[test]
fn serve_signs_a_checkpoint_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    assert!(relay(&data, &["init", "--quiet"]).status.success());
    assert!(data.join("audit.key").exists());
    add_user(&data, "alice");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_relay"))
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on 127.0.0.1:"), "{line}");
    terminate(&serve);
    assert!(wait_exit(&mut serve, Duration::from_secs(30)).success());

    let export = stdout(&relay(&data, &["audit", "--jsonl"]));
    let last: serde_json::Value = serde_json::from_str(export.lines().last().unwrap()).unwrap();
    assert_eq!(last["action"], "audit.checkpoint");
    let key = stdout(&relay(&data, &["audit", "key"]));
    let signed: serde_json::Value = serde_json::from_str(last["detail"].as_str().unwrap()).unwrap();
    assert_eq!(signed["key"].as_str(), Some(key.trim()));
    assert_eq!(
        (signed["entry"].as_i64(), signed["count"].as_u64()),
        (Some(1), Some(1))
    );
    let out = relay(&data, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("ok: 2 entries, last checkpoint #2 at "));
}
