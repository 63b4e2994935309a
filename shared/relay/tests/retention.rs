//! The retention policy on a real database: what is older than the limits goes, the rest
//! stays, `relay audit verify` (the real binary) passes after pruning and fails when a row is
//! then deleted or the prune checkpoint forged; `relay data inventory --json` lists every
//! table of the schema.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{relay, stdout};
use rusqlite::{params, Connection};
use sightline_relay::store::audit::{self, Checkpointer};
use sightline_relay::store::db::Database;
use sightline_relay::store::paths::DataDir;
use sightline_relay::store::retention::{Cuts, Pass, Retention, DAY_SECS};
use std::path::Path;

const NOW: u64 = 1_800_000_000;
const OLD: u64 = NOW - 400 * DAY_SECS;
const RECENT: u64 = NOW - DAY_SECS;

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// A data directory holding old and recent rows of every pruned kind; returns the database.
fn stocked(dir: &Path) -> Database {
    let data = DataDir::new(dir);
    let (key, _) = audit::key::load_or_create(&data).unwrap();
    let mut db = Database::create(&data.database()).unwrap();
    db.sign_audit_checkpoints(Checkpointer { key, every: 4 });
    // Audit: 1-4 old, checkpoint 5, 6-7 old, 8 recent, checkpoint 9, 10 recent.
    for at in [OLD, OLD, OLD, OLD, OLD, OLD, RECENT, RECENT] {
        audit::record(&db, at, "cli", "user.add", Some("alice"), None).unwrap();
    }
    db.conn()
        .execute_batch(&format!(
            "INSERT INTO users (id, name, password_hash, created_at) VALUES (1, 'alice', 'x', 0);
             INSERT INTO known_sources VALUES (1, 'ip:192.0.2.1', {OLD}), (1, 'ip:192.0.2.2', {RECENT});
             INSERT INTO failures VALUES ('login:ip:192.0.2.3', 3, {OLD}), ('login:ip:192.0.2.4', 3, {RECENT});
             INSERT INTO sessions (id, operator, operator_address, agent_address, started_at, ended_at, end_reason)
               VALUES ('old', 'alice', '192.0.2.1', '198.51.100.1', {OLD}, {OLD}, 'closed'),
                      ('new', 'alice', '192.0.2.1', '198.51.100.1', {RECENT}, {RECENT}, 'closed'),
                      ('open', 'alice', '192.0.2.1', '198.51.100.1', {OLD}, NULL, NULL);
             INSERT INTO certificates (serial, account, issuer, key, not_before, not_after, revoked_at)
               VALUES (1, 'alice', 'i', 'k', {OLD}, {OLD}, {OLD}), (2, 'alice', 'i', 'k', {RECENT}, {RECENT}, {RECENT});"
        ))
        .unwrap();
    db
}

fn pruned(dir: &Path) {
    let db = stocked(dir);
    let cuts = Cuts::at(&Retention::default(), NOW, DAY_SECS);
    let report = Pass::new(cuts, NOW).finish(&db).unwrap();
    assert_eq!(
        (
            report.sessions,
            report.failures,
            report.known_addresses,
            report.certificates,
            report.audit
        ),
        (1, 1, 1, 1, 5),
        "{report:?}"
    );
    assert!(report.audit_prune.is_some() && report.audit_refused.is_none());
}

#[test]
fn old_rows_go_recent_ones_stay_and_the_log_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    pruned(dir.path());
    let conn = Connection::open(dir.path().join("relay.db")).unwrap();
    let kept = |sql: &str| -> Vec<String> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert_eq!(kept("SELECT id FROM sessions ORDER BY id"), ["new", "open"]);
    assert_eq!(kept("SELECT key FROM failures"), ["login:ip:192.0.2.4"]);
    assert_eq!(kept("SELECT source FROM known_sources"), ["ip:192.0.2.2"]);
    assert_eq!(kept("SELECT CAST(serial AS TEXT) FROM certificates"), ["2"]);
    let first: i64 = conn
        .query_row("SELECT min(id) FROM audit", [], |r| r.get(0))
        .unwrap();
    assert_eq!(first, 6);
    assert_eq!(count(&conn, "audit"), 6);

    let out = relay(dir.path(), &["audit", "verify"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.starts_with("ok: 6 entries (entries before #6 pruned on "),
        "{text}"
    );

    // Someone deletes the first entry left: the prune checkpoint no longer covers the gap.
    conn.execute("DELETE FROM audit WHERE id = 6", []).unwrap();
    let out = relay(dir.path(), &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stdout(&out).starts_with("bad: entry #6: missing"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_forged_prune_checkpoint_fails_verify() {
    let dir = tempfile::tempdir().unwrap();
    pruned(dir.path());
    let conn = Connection::open(dir.path().join("relay.db")).unwrap();
    let (id, detail): (i64, String) = conn
        .query_row(
            "SELECT id, detail FROM audit WHERE action = 'audit.prune'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    // Claims more was pruned, to hide entry 6 and 7 as well.
    let forged = detail.replace("\"entry\":5", "\"entry\":7");
    assert_ne!(forged, detail);
    conn.execute(
        "UPDATE audit SET detail = ?1 WHERE id = ?2",
        params![forged, id],
    )
    .unwrap();
    conn.execute("DELETE FROM audit WHERE id <= 7", []).unwrap();
    let out = relay(dir.path(), &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("bad: entry #{id}: prune")),
        "{text}"
    );
}

#[test]
fn the_inventory_lists_every_table_with_its_setting() {
    let dir = tempfile::tempdir().unwrap();
    drop(stocked(dir.path()));
    std::fs::write(
        dir.path().join("policy.toml"),
        "[retention]\nsessions_days = 30\n",
    )
    .unwrap();
    let out = relay(dir.path(), &["data", "inventory", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let items: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let conn = Connection::open(dir.path().join("relay.db")).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut listed: Vec<String> = items
        .iter()
        .filter_map(|i| i["table"].as_str().map(str::to_string))
        .collect();
    listed.sort();
    assert_eq!(listed, tables, "a table without an inventory entry");
    for table in &tables {
        let item = items.iter().find(|i| i["table"] == table.as_str()).unwrap();
        assert_eq!(item["count"], count(&conn, table), "{table}");
        for field in ["what", "fields", "purpose", "kept"] {
            assert!(!item[field].as_str().unwrap().is_empty(), "{table} {field}");
        }
    }
    let sessions = items.iter().find(|i| i["table"] == "sessions").unwrap();
    assert_eq!(sessions["days"], 30);
    assert_eq!(sessions["setting"], "retention.sessions_days");
    let key = items.iter().find(|i| i["file"] == "audit.key").unwrap();
    assert_eq!(key["count"], 1);
    // The human form names every table too.
    let text = stdout(&relay(dir.path(), &["data", "inventory"]));
    for table in &tables {
        assert!(text.contains(&format!("table {table},")), "{table}");
    }
}
