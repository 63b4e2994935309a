//! Pruning keeps `verify` passing, and every way of faking a prune fails it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::store::audit::verify::{verify_db, Summary};
use crate::store::audit::{self, Checkpointer};
use crate::store::retention::{Cuts, Pass, Report};
use ed25519_dalek::SigningKey;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[5; 32])
}

/// Entries 1-4 at 100-103, checkpoint 5, 6-9 at 104-107, checkpoint 10, 11-12 at 108-109.
fn log() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Database::create(&dir.path().join("relay.db")).unwrap();
    db.sign_audit_checkpoints(Checkpointer {
        key: key(),
        every: 4,
    });
    for i in 0..10u64 {
        audit::record(&db, 100 + i, "cli", "user.add", None, None).unwrap();
    }
    (dir, db)
}

fn prune(db: &Database, cut: u64, now: u64) -> Report {
    let cuts = Cuts {
        audit: Some(cut),
        sessions: None,
        failures: 0,
        known_addresses: None,
        certificates: None,
        recordings: None,
    };
    Pass::new(cuts, now).finish(db).unwrap()
}

fn check(db: &Database) -> Result<Summary, Bad> {
    verify_db(db, Some(&key().verifying_key()), None).unwrap()
}

fn ids(db: &Database) -> Vec<i64> {
    audit::recent(db, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

#[test]
fn prunes_up_to_the_newest_checkpoint_before_the_cut() {
    let (_dir, db) = log();
    // Entry 9 (at 107) is the first at or after the cut; checkpoint 5 is the newest before it.
    let r = prune(&db, 107, 500);
    assert_eq!(
        (r.audit, r.audit_prune, r.audit_refused),
        (5, Some(13), None)
    );
    assert_eq!(ids(&db), (6..=13).collect::<Vec<_>>());
    let s = check(&db).unwrap();
    assert_eq!((s.entries, s.pruned), (8, Some((6, 500))));
    // More entries and checkpoints after the prune still count from genesis.
    for i in 0..6u64 {
        audit::record(&db, 600 + i, "cli", "user.add", None, None).unwrap();
    }
    assert!(check(&db).is_ok());
    // A second prune moves the start again.
    let r = prune(&db, 10_000, 10_000);
    assert!(r.audit > 0 && r.audit_refused.is_none(), "{r:?}");
    let s = check(&db).unwrap();
    assert!(s.pruned.unwrap().0 > 6, "{s:?}");
    // Nothing left to prune: nothing written.
    assert_eq!(prune(&db, 10_000, 10_001).audit_prune, None);
}

#[test]
fn nothing_before_the_first_checkpoint_is_pruned() {
    let (_dir, db) = log();
    // Entry 4 (at 103) is at the cut, so checkpoint 5 after it is too new.
    let r = prune(&db, 103, 500);
    assert_eq!((r.audit, r.audit_prune), (0, None));
    assert_eq!(check(&db).unwrap().pruned, None);
}

#[test]
fn deleting_more_after_a_prune_is_named() {
    let (_dir, db) = log();
    prune(&db, 107, 500);
    db.conn()
        .execute("DELETE FROM audit WHERE id = 6", [])
        .unwrap();
    let b = check(&db).unwrap_err();
    assert_eq!(b.entry, 6, "{b}");
    assert!(
        b.what
            .contains("prune checkpoint keeps every entry from #6"),
        "{b}"
    );
}

#[test]
fn deleting_without_a_prune_checkpoint_is_named() {
    let (_dir, db) = log();
    db.conn()
        .execute("DELETE FROM audit WHERE id <= 5", [])
        .unwrap();
    let b = check(&db).unwrap_err();
    assert!(b.what.contains("the log starts at #6"), "{b}");
}

#[test]
fn forged_prune_checkpoints_are_refused() {
    let (_dir, db) = log();
    prune(&db, 107, 500);
    let original: String = db
        .conn()
        .query_row("SELECT detail FROM audit WHERE id = 13", [], |r| r.get(0))
        .unwrap();
    let cp = Checkpoint::parse(&original).unwrap();
    // Moved further by someone without the key: the signature breaks (the chain hash of the
    // edited entry too, but the prune checkpoint is checked first).
    let moved = Checkpoint {
        entry: 7,
        ..cp.clone()
    };
    // Signed by another key; an ordinary checkpoint's signature under the prune action.
    let other = Checkpoint::sign_prune(&SigningKey::from_bytes(&[6; 32]), 5, &[0; 32], 5, 1);
    let ordinary = Checkpoint::sign(&key(), cp.entry, &[0; 32], cp.count, cp.at);
    for forged in [moved, other, ordinary] {
        db.conn()
            .execute(
                "UPDATE audit SET detail = ?1 WHERE id = 13",
                [forged.to_detail()],
            )
            .unwrap();
        let b = check(&db).unwrap_err();
        assert_eq!(b.entry, 13, "{b}");
    }
}

#[test]
fn a_damaged_log_is_kept_not_pruned() {
    let (_dir, db) = log();
    db.conn()
        .execute("UPDATE audit SET subject = 'mallory' WHERE id = 2", [])
        .unwrap();
    let r = prune(&db, 107, 500);
    assert_eq!(r.audit_refused.map(|b| b.entry), Some(2));
    assert_eq!((r.audit, r.audit_prune), (0, None));
    assert_eq!(ids(&db).len(), 12);
}

#[test]
fn an_interrupted_prune_is_finished_and_verifies_meanwhile() {
    let (_dir, db) = log();
    let mut pass = Pass::new(
        Cuts {
            audit: Some(107),
            sessions: None,
            failures: 0,
            known_addresses: None,
            certificates: None,
            recordings: None,
        },
        500,
    );
    // Step until the prune checkpoint is written, before anything is deleted.
    while pass.report().audit_prune.is_none() {
        assert!(pass.step(&db).unwrap());
    }
    assert_eq!(ids(&db).len(), 13);
    assert_eq!(check(&db).unwrap().entries, 8);
    drop(pass);
    assert_eq!(delete_pruned(&db, 2).unwrap(), 2);
    assert!(check(&db).is_ok());
    assert_eq!(prune(&db, 0, 600).audit, 3);
    assert_eq!(ids(&db).first(), Some(&6));
}

#[test]
fn an_anchor_in_the_pruned_part_is_accepted_only_with_its_hash() {
    let (_dir, db) = log();
    let cp5 = audit::recent(&db, 100).unwrap().remove(4);
    let line = audit::export::line(&cp5).to_json();
    prune(&db, 107, 500);
    let anchor = verify::Anchor::parse(&line).unwrap();
    let with = |a| verify_db(&db, Some(&key().verifying_key()), Some(a)).unwrap();
    assert!(with(anchor).is_ok());
    let wrong = verify::Anchor {
        hash: [1; 32],
        ..anchor
    };
    assert_eq!(with(wrong).unwrap_err().entry, 5);
}
