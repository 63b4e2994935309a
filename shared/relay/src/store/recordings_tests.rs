#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;

const ID: &str = "00112233445566778899aabbccddeeff";

fn db() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(&dir.path().join("relay.db")).unwrap();
    (dir, db)
}

fn actions(db: &Database) -> Vec<String> {
    audit::recent(db, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

#[test]
fn session_ids_name_files_only_when_plain_hex() {
    assert!(is_session_id(ID));
    assert!(!is_session_id(&ID[1..]));
    assert!(!is_session_id(&ID.to_uppercase()));
    assert!(!is_session_id("../../../../etc/passwd/0123456789a"));
}

#[test]
fn a_recording_is_started_segmented_completed_and_audited() {
    let (_dir, db) = db();
    started(&db, ID, "alice", 10).unwrap();
    let s = Segment {
        segment: 0,
        offset: 0,
        length: 100,
        sha256: "ab".repeat(32),
    };
    segment(&db, ID, "alice", &s, 12).unwrap();
    let r = find(&db, ID).unwrap().unwrap();
    assert_eq!(
        (r.bytes, r.segments, r.complete, r.last_activity),
        (100, 1, false, 12)
    );
    completed(&db, ID, "alice", 100, &"cd".repeat(32), 13).unwrap();
    let r = find(&db, ID).unwrap().unwrap();
    assert!(r.complete);
    assert_eq!(r.completed_at, Some(13));
    assert_eq!(r.sha256, Some("cd".repeat(32)));
    assert_eq!(
        actions(&db),
        [
            "recording.started",
            "recording.chunk",
            "recording.completed"
        ]
    );
    let chunk = &audit::recent(&db, 100).unwrap()[1];
    let logged: Segment = serde_json::from_str(chunk.detail.as_deref().unwrap()).unwrap();
    assert_eq!(logged, s);
    assert_eq!(chunk.session.as_deref(), Some(ID));
    assert_eq!(list(&db).unwrap(), [r]);
}

#[test]
fn prefixes_and_totals() {
    let (_dir, db) = db();
    let other = "00112233ffffffffffffffffffffffff";
    started(&db, ID, "alice", 10).unwrap();
    started(&db, other, "bob", 5).unwrap();
    assert_eq!(by_prefix(&db, "00112233", 5).unwrap().len(), 2);
    assert_eq!(by_prefix(&db, "001122334", 5).unwrap()[0].session, ID);
    assert!(by_prefix(&db, "ff", 5).unwrap().is_empty());
    assert_eq!(totals(&db).unwrap(), (2, 0, Some(5)));
}

#[test]
fn old_recordings_lose_file_and_row_and_leave_a_note() {
    let (dir, db) = db();
    let data = DataDir::new(dir.path());
    let fresh = "ffeeddccbbaa99887766554433221100";
    started(&db, ID, "alice", 10).unwrap();
    completed(&db, ID, "alice", 3, &"ab".repeat(32), 20).unwrap();
    started(&db, fresh, "alice", 1000).unwrap();
    for id in [ID, fresh] {
        let (mut f, _) = file::open_append(&data.recording(id)).unwrap();
        file::append(&mut f, &data.recording(id), b"abc").unwrap();
    }
    assert_eq!(prune_batch(&db, &data, 500, 10, 2000).unwrap(), 1);
    assert!(!data.recording(ID).exists());
    assert!(data.recording(fresh).exists());
    assert!(find(&db, ID).unwrap().is_none());
    let note = audit::recent(&db, 1).unwrap().remove(0);
    assert_eq!(note.action, "recording.deleted");
    assert_eq!(note.session.as_deref(), Some(ID));
    assert!(note.detail.unwrap().contains(&"ab".repeat(32)));
    assert_eq!(prune_batch(&db, &data, 500, 10, 2000).unwrap(), 0);
}
