//! Tampering with a log in every way `verify` must notice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::store::audit::chain::{self, Fields, GENESIS};
use crate::store::audit::{self, checkpoint, Checkpointer};
use ed25519_dalek::SigningKey;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[5; 32])
}

/// Ten entries with a checkpoint after every four: ids 1-4, checkpoint 5, 6-9, checkpoint 10,
/// 11-12.
fn log() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Database::create(&dir.path().join("relay.db")).unwrap();
    db.sign_audit_checkpoints(Checkpointer {
        key: key(),
        every: 4,
    });
    for i in 0..10u64 {
        audit::record(
            &db,
            100 + i,
            "cli",
            "user.add",
            Some(&format!("u{i}")),
            None,
        )
        .unwrap();
    }
    (dir, db)
}

fn check(db: &Database) -> Result<Summary, Bad> {
    verify_db(db, Some(&key().verifying_key()), None).unwrap()
}

fn sql(db: &Database, s: &str) {
    db.conn().execute_batch(s).unwrap();
}

#[test]
fn an_untouched_log_passes() {
    let (_dir, db) = log();
    let s = check(&db).unwrap();
    assert_eq!(s.entries, 12);
    assert_eq!(s.last_checkpoint.map(|c| c.0), Some(10));
}

#[test]
fn a_changed_entry_is_named() {
    let (_dir, db) = log();
    sql(&db, "UPDATE audit SET detail = 'x' WHERE id = 7");
    assert_eq!(check(&db).unwrap_err().entry, 7);
}

#[test]
fn a_deleted_entry_is_named_as_missing() {
    let (_dir, db) = log();
    sql(&db, "DELETE FROM audit WHERE id = 3");
    let b = check(&db).unwrap_err();
    assert_eq!(b.entry, 3, "{b}");
    assert!(b.what.contains("skips from #2 to #4"), "{b}");
}

#[test]
fn an_inserted_entry_is_named() {
    let (_dir, db) = log();
    sql(
        &db,
        "UPDATE audit SET id = id + 1000 WHERE id >= 6;
         UPDATE audit SET id = id - 999 WHERE id >= 1000;
         INSERT INTO audit (id, at, actor, action, hash) VALUES (6, 1, 'cli', 'user.add', '00');",
    );
    assert_eq!(check(&db).unwrap_err().entry, 6);
}

#[test]
fn swapped_entries_are_named() {
    let (_dir, db) = log();
    sql(
        &db,
        "UPDATE audit SET id = 100 WHERE id = 2;
         UPDATE audit SET id = 2 WHERE id = 3;
         UPDATE audit SET id = 3 WHERE id = 100;",
    );
    assert_eq!(check(&db).unwrap_err().entry, 2);
}

#[test]
fn a_rewritten_chain_fails_at_the_next_checkpoint() {
    let (_dir, db) = log();
    // Change entry 2 and recompute every later hash, as someone without the audit key can.
    sql(&db, "UPDATE audit SET subject = 'mallory' WHERE id = 2");
    type Stored = (i64, i64, String, String, Option<String>, Option<String>);
    let rows: Vec<Stored> = db
        .conn()
        .prepare("SELECT id, at, actor, action, subject, detail FROM audit ORDER BY id")
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut prev = GENESIS;
    for (id, at, actor, action, subject, detail) in &rows {
        let f = Fields {
            id: *id,
            at: *at,
            actor,
            action,
            subject: subject.as_deref(),
            detail: detail.as_deref(),
            session: None,
        };
        prev = chain::entry_hash(&prev, &f);
        db.conn()
            .execute(
                "UPDATE audit SET hash = ?1 WHERE id = ?2",
                rusqlite::params![hex::encode(prev), id],
            )
            .unwrap();
    }
    let b = check(&db).unwrap_err();
    assert_eq!(b.entry, 5, "{b}");
    assert!(b.what.contains("changed after it was signed"), "{b}");
}

#[test]
fn checkpoints_need_the_right_key() {
    let (_dir, db) = log();
    let other = SigningKey::from_bytes(&[6; 32]).verifying_key();
    let b = verify_db(&db, Some(&other), None).unwrap().unwrap_err();
    assert_eq!(b.entry, 5);
    assert!(b.what.contains("another key"), "{b}");
    assert_eq!(verify_db(&db, None, None).unwrap().unwrap_err().entry, 5);
}

#[test]
fn truncation_past_an_anchor_is_named() {
    let (_dir, db) = log();
    let cp = audit::recent(&db, 100).unwrap().remove(9);
    assert_eq!(cp.action, checkpoint::ACTION);
    let line = audit::export::line(&cp).to_json();
    let anchor = Anchor::parse(&line).unwrap();
    let with = |db: &Database| verify_db(db, Some(&key().verifying_key()), Some(anchor)).unwrap();
    assert!(with(&db).is_ok());
    // Cutting the tail after the anchor is invisible, cutting the anchor itself is not.
    sql(&db, "DELETE FROM audit WHERE id > 10");
    assert!(with(&db).is_ok());
    assert!(check(&db).is_ok());
    sql(&db, "DELETE FROM audit WHERE id > 7");
    let b = with(&db).unwrap_err();
    assert_eq!(b.entry, 10, "{b}");
    assert!(b.what.contains("truncated"), "{b}");
    assert!(check(&db).is_ok());
}

#[test]
fn junk_rows_and_anchors_are_bad_not_panics() {
    let (_dir, db) = log();
    sql(&db, "UPDATE audit SET actor = x'00ff' WHERE id = 4");
    assert_eq!(check(&db).unwrap_err().entry, 4);
    sql(&db, "UPDATE audit SET hash = NULL WHERE id = 2");
    assert_eq!(check(&db).unwrap_err().entry, 2);
    for junk in [
        "",
        "{}",
        "[]",
        "{\"id\":1,\"hash\":\"00\"}",
        "{\"id\":\"1\",\"hash\":1}",
    ] {
        assert!(Anchor::parse(junk).is_err(), "{junk}");
    }
}
