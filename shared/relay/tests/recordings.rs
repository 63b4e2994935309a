//! Session recordings on the relay, with the relay library on loopback, the real client and the
//! real `relay` binary: an upload interrupted and resumed loses and doubles no byte, holes and
//! pieces after the last are refused, `relay recordings get` gives back exactly what was sent
//! and the audit log's segment hashes match it; a session not recorded takes no pieces; an
//! optional recording may stay silent; a required one that stops (or never starts) ends the
//! session within 15 s, closing both sides and telling each why; retention deletes old
//! recordings and signs what it deleted; the policy and per-operator settings decide who is
//! recorded, and an operator's own setting can only make it stricter.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/live.rs"]
mod live;

use common::{relay, stdout};
use live::{closed_within, pair_as, PairedUp};
use sha2::{Digest, Sha256};
use sightline_core::cert::RecordingMode;
use sightline_core::frame;
use sightline_core::identity::{Fingerprint, PrivateIdentity};
use sightline_core::relay_proto::{RelayErrorKind, MAX_RECORDING_CHUNK, RECORDING_STALL_SECS};
use sightline_net::relay_client::Uplink;
use sightline_net::stream::{BoxIo, FramedStream};
use sightline_net::ClientError;
use sightline_relay::accounts::password::PasswordPolicy;
use sightline_relay::accounts::users::{self, Changes, NewUser};
use sightline_relay::net::recording_watch::STALLED;
use sightline_relay::policy::Policy;
use sightline_relay::store::audit::{self, Checkpointer};
use sightline_relay::store::db::Database;
use sightline_relay::store::paths::DataDir;
use sightline_relay::store::recordings::{self, file, Segment};
use sightline_relay::store::retention::{Cuts, Pass, Retention, DAY_SECS};
use std::path::Path;
use std::time::{Duration, Instant};

/// How soon after its upload stops a required session must be over.
const PROMISED: Duration = Duration::from_secs(15);

fn recipient() -> String {
    age::x25519::Identity::generate().to_public().to_string()
}

fn policy(mode: RecordingMode) -> Policy {
    let mut p = Policy::default();
    p.recording.mode = mode;
    p.recording.recipients = vec![recipient()];
    p
}

/// The running relay signs audit checkpoints, as `relay serve` does.
fn signing(dir: &Path) -> impl FnOnce(&mut Database) + '_ {
    move |db| {
        let (key, _) = audit::key::load_or_create(&DataDir::new(dir)).unwrap();
        db.sign_audit_checkpoints(Checkpointer { key, every: 8 });
    }
}

/// alice's own recording mode becomes `mode`.
fn alice_records(mode: RecordingMode) -> impl FnOnce(&mut Database) {
    move |db| {
        let changes = Changes {
            recording: Some(Some(mode)),
            ..Changes::default()
        };
        users::update(db, "alice", &changes, 1).unwrap();
    }
}

async fn attach(addr: &str, pin: Fingerprint, p: &PairedUp, key: &PrivateIdentity) -> Uplink {
    let c = live::connect(addr, pin).await;
    Box::pin(c.attach(p.session_id, p.grant.certificate.clone(), key))
        .await
        .unwrap()
}

fn refused(r: Result<u64, ClientError>) -> (RelayErrorKind, String) {
    match r {
        Err(ClientError::Refused { kind, message, .. }) => (kind, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Bytes still go from the operator to the agent.
async fn flows(op: &mut FramedStream<BoxIo>, agent: &mut FramedStream<BoxIo>) {
    op.write_all(&frame::encode(&[5u8; 32]).unwrap())
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), agent.read_message()).await;
    assert_eq!(got.unwrap().unwrap(), Some(vec![5u8; 32]));
}

fn audit_of(dir: &Path, session: &str) -> Vec<audit::Entry> {
    let db = Database::open(&dir.join("relay.db")).unwrap();
    audit::recent(&db, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.session.as_deref() == Some(session))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_upload_goes_on_without_a_lost_or_doubled_byte() {
    let (ca, peers) = live::keys(1).await;
    let key = &peers[0];
    let pin = ca.public().fingerprint();
    let dir = tempfile::tempdir().unwrap();
    let pol = policy(RecordingMode::Optional);
    let running = live::start_with(dir.path(), &ca, pol.clone(), signing(dir.path())).await;
    let addr = running.addr.as_str();
    let p = pair_as(addr, pin, key, None).await;
    let rule = &p.grant.body.recording;
    assert_eq!(rule.mode, RecordingMode::Optional);
    assert_eq!(rule.recipients, pol.recording.recipients);
    assert!(rule.include_input);

    let data: Vec<u8> = (0..5 * MAX_RECORDING_CHUNK + 1234)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let pieces: Vec<(u64, &[u8])> = data
        .chunks(MAX_RECORDING_CHUNK)
        .enumerate()
        .map(|(i, c)| ((i * MAX_RECORDING_CHUNK) as u64, c))
        .collect();
    let max = MAX_RECORDING_CHUNK as u64;

    let mut up = attach(addr, pin, &p, key).await;
    assert_eq!(up.recording_stored, 0);
    for (offset, piece) in &pieces[..2] {
        let stored = up.send_recording(*offset, piece, false).await.unwrap();
        assert_eq!(stored, offset + piece.len() as u64);
    }
    // Too long for one message: the client says so and sends nothing.
    let big = vec![0u8; MAX_RECORDING_CHUNK + 1];
    assert!(matches!(
        up.send_recording(2 * max, &big, false).await,
        Err(ClientError::TooLarge { .. })
    ));
    // The connection drops mid-way; a new one learns where to go on.
    drop(up);
    let mut up = attach(addr, pin, &p, key).await;
    assert_eq!(up.recording_stored, 2 * max);
    // A piece already stored is acknowledged again; a keepalive too.
    let (offset, piece) = pieces[1];
    assert_eq!(
        up.send_recording(offset, piece, false).await.unwrap(),
        2 * max
    );
    assert_eq!(
        up.send_recording(2 * max, &[], false).await.unwrap(),
        2 * max
    );
    // A piece that would leave a hole is refused, and the connection closed.
    let (offset, piece) = pieces[3];
    let (kind, why) = refused(up.send_recording(offset, piece, false).await);
    assert_eq!(kind, RelayErrorKind::BadRequest);
    assert!(why.contains("hole"), "{why}");
    // ... and so is one that overlaps the end without matching it.
    let mut up = attach(addr, pin, &p, key).await;
    assert_eq!(up.recording_stored, 2 * max);
    let (_, why) = refused(up.send_recording(2 * max - 10, pieces[2].1, false).await);
    assert!(why.contains("never rewritten"), "{why}");

    let mut up = attach(addr, pin, &p, key).await;
    assert_eq!(up.recording_stored, 2 * max);
    let n = pieces.len();
    for (i, (offset, piece)) in pieces.iter().enumerate().skip(2) {
        let stored = up.send_recording(*offset, piece, i + 1 == n).await.unwrap();
        assert_eq!(stored, offset + piece.len() as u64);
    }
    let size = data.len() as u64;
    // Complete: a keepalive is fine, but no bytes follow, not even ones already stored.
    assert_eq!(up.send_recording(size, &[], false).await.unwrap(), size);
    let (_, why) = refused(up.send_recording(size, b"more", false).await);
    assert!(why.contains("complete"), "{why}");
    let up = attach(addr, pin, &p, key).await;
    assert_eq!(up.recording_stored, size);

    // The list shows it complete with the whole file's SHA-256.
    let session = hex::encode(p.session_id);
    let whole = hex::encode(Sha256::digest(&data));
    let out = relay(dir.path(), &["recordings", "list", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let item = &listed[0];
    assert_eq!(item["session"], session.as_str());
    assert_eq!(item["operator"], "alice");
    assert_eq!(item["complete"], true);
    assert_eq!(item["bytes"], size);
    assert_eq!(item["sha256"], whole.as_str());
    let text = stdout(&relay(dir.path(), &["recordings", "list"]));
    assert!(text.contains(&session) && text.contains(&whole), "{text}");

    // Fetched by a unique prefix: byte for byte what was sent; never over an existing file.
    let fetched = dir.path().join("fetched.age");
    let fetched_arg = fetched.to_str().unwrap();
    let out = relay(
        dir.path(),
        &["recordings", "get", &session[..8], "--out", fetched_arg],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(&fetched).unwrap(), data);
    let again = relay(
        dir.path(),
        &["recordings", "get", &session, "--out", fetched_arg],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    for (id, says) in [("ffffffff", "no recording"), ("abc", "not a session id")] {
        let out = relay(dir.path(), &["recordings", "get", id, "--out", "x.age"]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{id}: {err}");
    }
    // The file is private, in a private directory.
    use std::os::unix::fs::PermissionsExt;
    let stored = DataDir::new(dir.path()).recording(&session);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&stored), 0o600);
    assert_eq!(mode(stored.parent().unwrap()), 0o700);

    // The audit log vouches for every byte, a segment at a time, and still verifies.
    let log = audit_of(dir.path(), &session);
    let count = |action: &str| log.iter().filter(|e| e.action == action).count();
    assert_eq!(count("recording.started"), 1);
    assert_eq!(count("recording.completed"), 1);
    let mut segments: Vec<Segment> = log
        .iter()
        .filter(|e| e.action == "recording.chunk")
        .map(|e| serde_json::from_str(e.detail.as_deref().unwrap()).unwrap())
        .collect();
    assert!(segments.len() >= 2, "{segments:?}");
    segments.sort_by_key(|s| s.segment);
    let mut at = 0u64;
    for (i, s) in segments.iter().enumerate() {
        assert_eq!((s.segment as usize, s.offset), (i, at), "{segments:?}");
        let bytes = &data[s.offset as usize..(s.offset + s.length) as usize];
        assert_eq!(s.sha256, hex::encode(Sha256::digest(bytes)));
        at += s.length;
    }
    assert_eq!(at, size, "the segments cover the whole file");
    let completed = log
        .iter()
        .find(|e| e.action == "recording.completed")
        .unwrap();
    assert!(completed.detail.as_deref().unwrap().contains(&whole));
    let out = relay(dir.path(), &["audit", "verify"]);
    assert!(out.status.success(), "{out:?}");
    drop(up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrecorded_session_takes_no_pieces_and_an_optional_one_may_stay_silent() {
    let (ca, peers) = live::keys(1).await;
    let key = &peers[0];
    let pin = ca.public().fingerprint();
    let dir = tempfile::tempdir().unwrap();
    // The help desk records nobody by default; it has auditors' keys for those who are.
    let running = live::start_with(dir.path(), &ca, policy(RecordingMode::Off), |_| {}).await;
    let addr = running.addr.as_str();
    let p = pair_as(addr, pin, key, None).await;
    assert_eq!(p.grant.body.recording.mode, RecordingMode::Off);
    assert!(p.grant.body.recording.recipients.is_empty());
    let mut up = attach(addr, pin, &p, key).await;
    assert_eq!(up.recording_stored, 0);
    let (kind, why) = refused(up.send_recording(0, b"ciphertext", false).await);
    assert_eq!(kind, RelayErrorKind::BadRequest);
    assert!(why.contains("not recorded"), "{why}");
    let db = Database::open(&dir.path().join("relay.db")).unwrap();
    assert!(recordings::list(&db).unwrap().is_empty());
    drop(db);

    // alice's own setting makes her sessions recorded at her choice: optional. She uploads
    // nothing, and the session runs on past the time a required one would have ended.
    {
        let mut db = Database::open(&dir.path().join("relay.db")).unwrap();
        alice_records(RecordingMode::Optional)(&mut db);
    }
    let mut p = pair_as(addr, pin, key, None).await;
    assert_eq!(p.grant.body.recording.mode, RecordingMode::Optional);
    assert_eq!(p.grant.body.recording.recipients.len(), 1);
    tokio::time::sleep(Duration::from_secs(RECORDING_STALL_SECS + 2)).await;
    flows(&mut p.operator, &mut p.agent).await;
    let session = hex::encode(p.session_id);
    assert!(!audit_of(dir.path(), &session)
        .iter()
        .any(|e| e.action == "recording.stalled"));
}

/// A resume by the side holding `token` is refused with the reason the relay ended the
/// session.
async fn resume_refused(addr: &str, pin: Fingerprint, p: &PairedUp, token: [u8; 32]) {
    let c = live::connect(addr, pin).await;
    match Box::pin(c.resume(p.session_id, token, Duration::from_secs(5))).await {
        Err(ClientError::Refused { kind, message, .. }) => {
            assert_eq!(kind, RelayErrorKind::SessionEnded);
            assert!(message.contains(STALLED), "{message}");
        }
        other => panic!("expected a refused resume, got {other:?}"),
    }
}

/// The session's record (by the real `relay sessions --json`) ended abnormally because its
/// recording stopped, and the audit log says so.
async fn recorded_as_stalled(dir: &Path, session: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let record = loop {
        let out = relay(dir, &["sessions", "--json"]);
        assert!(out.status.success(), "{out:?}");
        let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let record = all
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == session)
            .unwrap()
            .clone();
        // Written just after both sides were told.
        if !record["ended_at"].is_null() || Instant::now() > deadline {
            break record;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(record["abnormal"], true, "{record}");
    assert!(
        record["end_reason"].as_str().unwrap().contains(STALLED),
        "{record}"
    );
    let log = audit_of(dir, session);
    assert!(
        log.iter().any(|e| e.action == "recording.stalled"),
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_recording_that_stops_ends_the_session_within_15_s() {
    let (ca, peers) = live::keys(1).await;
    let key = &peers[0];
    let pin = ca.public().fingerprint();
    let dir = tempfile::tempdir().unwrap();
    // alice's own "optional" cannot loosen the help desk's "required".
    let running = live::start_with(
        dir.path(),
        &ca,
        policy(RecordingMode::Required),
        alice_records(RecordingMode::Optional),
    )
    .await;
    let addr = running.addr.as_str();
    let mut p = pair_as(addr, pin, key, None).await;
    assert_eq!(p.grant.body.recording.mode, RecordingMode::Required);

    // Keepalives and a piece keep it going well past the stall time...
    let mut up = attach(addr, pin, &p, key).await;
    up.send_recording(0, b"first bytes", false).await.unwrap();
    let until = Instant::now() + Duration::from_secs(RECORDING_STALL_SECS + 2);
    let mut stopped = Instant::now();
    while Instant::now() < until {
        up.send_recording(11, &[], false).await.unwrap();
        stopped = Instant::now();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    flows(&mut p.operator, &mut p.agent).await;
    // ... then the upload stops: both forwarded connections are closed.
    closed_within(&mut p.operator, PROMISED).await;
    closed_within(&mut p.agent, PROMISED.saturating_sub(stopped.elapsed())).await;
    let took = stopped.elapsed();
    assert!(took < PROMISED, "ended {took:?} after the upload stopped");
    assert!(
        took >= Duration::from_secs(RECORDING_STALL_SECS - 1),
        "ended {took:?} after the upload stopped: too soon"
    );
    // The attached connection was told why.
    let (kind, why) = refused(up.send_recording(11, &[], false).await);
    assert_eq!(kind, RelayErrorKind::SessionEnded);
    assert!(why.contains(STALLED), "{why}");
    // Both sides coming back are told why too.
    resume_refused(addr, pin, &p, p.tokens.0).await;
    resume_refused(addr, pin, &p, p.tokens.1).await;
    let session = hex::encode(p.session_id);
    recorded_as_stalled(dir.path(), &session).await;
    // What arrived is kept, and vouched for.
    let log = audit_of(dir.path(), &session);
    assert!(
        log.iter().any(|e| e.action == "recording.chunk"),
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_recording_that_never_starts_ends_the_session_within_15_s() {
    let (ca, peers) = live::keys(1).await;
    let key = &peers[0];
    let pin = ca.public().fingerprint();
    let dir = tempfile::tempdir().unwrap();
    let running = live::start_with(dir.path(), &ca, policy(RecordingMode::Required), |_| {}).await;
    let addr = running.addr.as_str();
    let mut p = pair_as(addr, pin, key, None).await;
    let paired = Instant::now();
    closed_within(&mut p.agent, PROMISED).await;
    closed_within(&mut p.operator, PROMISED.saturating_sub(paired.elapsed())).await;
    let took = paired.elapsed();
    assert!(took < PROMISED, "ended {took:?} after pairing");
    resume_refused(addr, pin, &p, p.tokens.1).await;
    recorded_as_stalled(dir.path(), &hex::encode(p.session_id)).await;
}

#[test]
fn old_recordings_are_deleted_with_their_files_and_the_deletion_is_signed() {
    const NOW: u64 = 1_800_000_000;
    const OLD: u64 = NOW - 100 * DAY_SECS;
    const RECENT: u64 = NOW - DAY_SECS;
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    let (key, _) = audit::key::load_or_create(&data).unwrap();
    let mut db = Database::create(&data.database()).unwrap();
    db.sign_audit_checkpoints(Checkpointer { key, every: 4 });
    // Old audit entries too: the pass prunes them behind a prune checkpoint.
    for _ in 0..6 {
        audit::record(
            &db,
            NOW - 400 * DAY_SECS,
            "cli",
            "user.add",
            Some("a"),
            None,
        )
        .unwrap();
    }
    let (done, unfinished, fresh) = (
        "11111111111111111111111111111111",
        "22222222222222222222222222222222",
        "33333333333333333333333333333333",
    );
    for (id, at) in [(done, OLD), (unfinished, OLD), (fresh, RECENT)] {
        let path = data.recording(id);
        let (mut f, _) = file::open_append(&path).unwrap();
        file::append(&mut f, &path, id.as_bytes()).unwrap();
        recordings::started(&db, id, "alice", at).unwrap();
        let s = Segment {
            segment: 0,
            offset: 0,
            length: 32,
            sha256: hex::encode(Sha256::digest(id.as_bytes())),
        };
        recordings::segment(&db, id, "alice", &s, at).unwrap();
    }
    let whole = hex::encode(Sha256::digest(done.as_bytes()));
    recordings::completed(&db, done, "alice", 32, &whole, OLD).unwrap();

    let cuts = Cuts::at(&Retention::default(), NOW, DAY_SECS);
    let report = Pass::new(cuts, NOW).finish(&db).unwrap();
    assert_eq!(report.recordings, 2, "{report:?}");
    assert!(report.audit_prune.is_some(), "{report:?}");
    assert!(!data.recording(done).exists() && !data.recording(unfinished).exists());
    assert!(data.recording(fresh).exists());
    let left: Vec<String> = recordings::list(&db)
        .unwrap()
        .into_iter()
        .map(|r| r.session)
        .collect();
    assert_eq!(left, [fresh]);
    // What was deleted is on record, and a signed checkpoint covers the record.
    let log = audit::recent(&db, 100).unwrap();
    let deleted: Vec<&audit::Entry> = log
        .iter()
        .filter(|e| e.action == "recording.deleted")
        .collect();
    assert_eq!(deleted.len(), 2);
    assert!(deleted.iter().any(
        |e| e.session.as_deref() == Some(done) && e.detail.as_deref().unwrap().contains(&whole)
    ));
    let last_deleted = deleted.iter().map(|e| e.id).max().unwrap();
    assert!(log
        .iter()
        .any(|e| e.action == "audit.checkpoint" && e.id > last_deleted));
    drop(db);
    let out = relay(dir.path(), &["audit", "verify"]);
    assert!(out.status.success(), "{out:?}");

    // The inventory counts what is left.
    let out = relay(dir.path(), &["data", "inventory", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let items: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let index = items.iter().find(|i| i["table"] == "recordings").unwrap();
    assert_eq!(
        (
            &index["count"],
            &index["bytes"],
            &index["oldest"],
            &index["days"]
        ),
        (&1.into(), &32.into(), &RECENT.into(), &90.into())
    );
    let files = items.iter().find(|i| i["file"] == "recordings").unwrap();
    assert_eq!((&files["count"], &files["bytes"]), (&1.into(), &32.into()));
}

#[test]
fn the_policy_and_an_operators_own_setting_decide_who_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut db = Database::create(&dir.path().join("relay.db")).unwrap();
        let alice = NewUser {
            two_factor: false,
            ..NewUser::operator("alice", live::PASSWORD, 1)
        };
        users::add(&mut db, alice, &PasswordPolicy::DEFAULT).unwrap();
    }
    let write_policy = |text: &str| std::fs::write(dir.path().join("policy.toml"), text).unwrap();
    let set = |mode: &str| relay(dir.path(), &["user", "set", "alice", "--recording", mode]);
    let failed_with = |out: std::process::Output, says: &str| {
        assert!(!out.status.success(), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    };
    let show = || -> serde_json::Value {
        let out = relay(dir.path(), &["user", "show", "alice", "--json"]);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };

    // A mode that records needs recipients; each must be an age recipient.
    write_policy("[recording]\nmode = \"required\"\n");
    failed_with(set("required"), "recording.mode");
    write_policy("[recording]\nmode = \"optional\"\nrecipients = [\"age1notakey\"]\n");
    failed_with(set("required"), "not an age X25519 recipient");
    // With nobody to record for, an operator cannot be made to record.
    write_policy("");
    failed_with(set("required"), "no recording recipients");
    failed_with(set("sometimes"), "use off, optional or required");

    // With recipients, an operator's own setting makes it stricter...
    let key = recipient();
    write_policy(&format!("[recording]\nrecipients = [\"{key}\"]\n"));
    assert!(set("required").status.success());
    let v = show();
    assert_eq!(v["recording"], "required");
    assert_eq!(v["effective_recording"], "required");
    let out = relay(dir.path(), &["user", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["recording"], "required");
    assert!(stdout(&relay(dir.path(), &["user", "list"])).contains("required"));
    // ... but never looser than the policy.
    write_policy(&format!(
        "[recording]\nmode = \"required\"\nrecipients = [\"{key}\"]\n"
    ));
    let out = set("optional");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already required"));
    let v = show();
    assert_eq!(v["recording"], "optional");
    assert_eq!(v["effective_recording"], "required");
    assert!(set("off").status.success());
    assert_eq!(show()["recording"], "policy");
    assert_eq!(show()["effective_recording"], "required");
}
