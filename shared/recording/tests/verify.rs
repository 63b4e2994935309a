//! Verification: an untouched recording holds; every way of tampering with it that the brief
//! lists fails, with a reason that says what happened.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sightline_core::identity::Fingerprint;
use sightline_recording::{verify, VerifyReport};

fn check(s: &Session, file: &std::path::Path) -> VerifyReport {
    let r = verify(file, s.ids(), None).unwrap();
    println!("{r}\n");
    r
}

fn problems(r: &VerifyReport) -> String {
    let mut all = r.problems.join("\n");
    for w in r.windows.iter().filter(|w| !w.holds) {
        all.push('\n');
        all.push_str(w.reason.as_deref().unwrap_or(""));
    }
    all
}

#[test]
fn an_untouched_recording_holds() {
    let s = record(&Opts::default());
    let r = verify(&s.file, s.ids(), Some(agent().public().fingerprint())).unwrap();
    println!("{r}");
    assert!(r.ok(), "{r}");
    assert!(r.complete);
    assert_eq!(r.video_items, 41);
    // Checkpoints after 15 and 30 packets, and the final one.
    assert_eq!(r.windows.len(), 3);
    assert_eq!(
        r.windows.iter().map(|w| w.items).collect::<Vec<_>>(),
        [16, 15, 10]
    );
    assert!(r
        .windows
        .iter()
        .all(|w| w.holds && w.expected_items == Some(w.items)));
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.events[0].action.as_deref(), Some("session.media_key"));
    assert!(r
        .to_string()
        .contains(&agent().public().fingerprint().to_string()));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["meta"]["agent_fingerprint"],
        agent().public().fingerprint().to_string()
    );
    assert_eq!(json["windows"][0]["holds"], true);

    let other = Fingerprint([9; 32]);
    let r = verify(&s.file, s.ids(), Some(other)).unwrap();
    assert!(!r.ok());
    assert!(problems(&r).contains("not the expected"), "{r}");
}

fn cipher_case(edit: impl FnOnce(&mut Vec<u8>, usize), want: &str) {
    let s = record(&Opts::default());
    let mut c = std::fs::read(&s.file).unwrap();
    let start = payload_start(&c);
    assert!(
        c.len() > start + 5 * CHUNK,
        "the test needs several chunks: {}",
        c.len()
    );
    edit(&mut c, start);
    let r = check(&s, &write(&s, "edited.slrec", &c));
    assert!(!r.ok());
    assert!(problems(&r).contains(want), "wanted {want:?} in:\n{r}");
}

#[test]
fn one_flipped_ciphertext_byte_fails() {
    cipher_case(|c, start| c[start + 2 * CHUNK + 1000] ^= 0x20, "altered");
}

#[test]
fn a_dropped_ciphertext_chunk_fails() {
    cipher_case(
        |c, start| drop(c.drain(start + 2 * CHUNK..start + 3 * CHUNK)),
        "altered",
    );
}

#[test]
fn two_swapped_ciphertext_chunks_fail() {
    cipher_case(
        |c, start| {
            let a = c[start + CHUNK..start + 2 * CHUNK].to_vec();
            let b = c[start + 2 * CHUNK..start + 3 * CHUNK].to_vec();
            c[start + CHUNK..start + 2 * CHUNK].copy_from_slice(&b);
            c[start + 2 * CHUNK..start + 3 * CHUNK].copy_from_slice(&a);
        },
        "altered",
    );
}

#[test]
fn a_truncated_file_fails() {
    cipher_case(|c, start| c.truncate(start + 4 * CHUNK), "truncated");
    cipher_case(|c, start| c.truncate(start + 4 * CHUNK + 100), "altered");
}

/// Decrypts, edits the plaintext records, re-encrypts to the same auditor (anyone with the
/// public key can), and verifies.
fn replaced(edit: impl FnOnce(&mut Vec<Rec>, &mut Vec<u8>), opts: Opts) -> VerifyReport {
    let s = record(&opts);
    let plain = decrypt(&std::fs::read(&s.file).unwrap(), &s.identity);
    let (mut recs, mut footer) = parse(&plain);
    edit(&mut recs, &mut footer);
    let forged = encrypt(&unparse(&recs, &footer), &s.identity.to_public());
    check(&s, &write(&s, "forged.slrec", &forged))
}

fn packet_positions(recs: &[Rec]) -> Vec<usize> {
    recs.iter()
        .enumerate()
        .filter(|(_, r)| r.kind == 3)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn a_re_encrypted_recording_with_an_edited_packet_fails_on_the_hash() {
    let r = replaced(
        |recs, _| {
            let i = packet_positions(recs)[20];
            let last = recs[i].payload.len() - 1;
            recs[i].payload[last] ^= 1;
        },
        Opts::default(),
    );
    assert!(!r.ok());
    let failing: Vec<_> = r.windows.iter().filter(|w| !w.holds).collect();
    assert_eq!(failing.len(), 1, "only the edited window fails:\n{r}");
    assert_eq!(failing[0].checkpoint, Some(2));
    assert!(
        failing[0].reason.as_deref().unwrap().contains("edited"),
        "{r}"
    );
    // The windows before and after still hold: each is judged on its own.
    assert!(r.windows[0].holds && r.windows[2].holds, "{r}");
}

#[test]
fn a_re_encrypted_recording_with_a_packet_removed_fails() {
    let r = replaced(
        |recs, _| {
            let i = packet_positions(recs)[3];
            recs.remove(i);
        },
        Opts::default(),
    );
    assert!(!r.ok());
    assert!(problems(&r).contains("1 video item(s) missing"), "{r}");
    assert!(r.windows[1].holds && r.windows[2].holds, "{r}");
}

#[test]
fn a_packet_added_fails() {
    let r = replaced(
        |recs, _| {
            let i = packet_positions(recs)[35];
            let copy = recs[i].clone();
            recs.insert(i, copy);
        },
        Opts::default(),
    );
    assert!(problems(&r).contains("did not send: added"), "{r}");
}

#[test]
fn without_the_final_checkpoint_it_fails() {
    let r = replaced(
        |recs, _| {
            let last_cp = recs.iter().rposition(|r| r.kind == 7).unwrap();
            recs.remove(last_cp);
        },
        Opts::default(),
    );
    assert!(!r.ok());
    let p = problems(&r);
    assert!(p.contains("no final checkpoint"), "{r}");
    assert!(p.contains("after the last checkpoint"), "{r}");

    // The same when the viewer never received it (no editing).
    let s = record(&Opts {
        final_checkpoint: false,
        ..Opts::default()
    });
    let r = check(&s, &s.file);
    assert!(
        !r.ok() && problems(&r).contains("no final checkpoint"),
        "{r}"
    );
}

#[test]
fn a_recording_cut_at_the_end_and_re_encrypted_fails() {
    let r = replaced(
        |recs, footer| {
            recs.truncate(recs.len() - 30);
            footer.clear();
        },
        Opts::default(),
    );
    assert!(!r.ok());
    let p = problems(&r);
    assert!(
        p.contains("without its index") && p.contains("no final checkpoint"),
        "{r}"
    );
}

#[test]
fn forged_events_and_checkpoints_fail() {
    // A checkpoint re-signed with another media key, and a media key event the agent did not
    // sign.
    let r = replaced(
        |recs, _| {
            let cp = recs.iter().position(|r| r.kind == 7).unwrap();
            let sig_at = recs[cp].payload.len() - 10;
            recs[cp].payload[sig_at] ^= 1;
            let ev = recs.iter().position(|r| r.kind == 6).unwrap();
            let mut forged = recs[ev].clone();
            let n = forged.payload.len() - 5;
            forged.payload[n] ^= 1;
            recs.insert(ev + 1, forged);
        },
        Opts::default(),
    );
    assert!(!r.ok());
    assert!(r.events.iter().any(|e| !e.ok), "{r}");
    assert!(
        problems(&r).contains("not signed by the session's media key"),
        "{r}"
    );
}

#[test]
fn without_a_media_key_the_video_cannot_be_checked() {
    let r = replaced(
        |recs, _| {
            let ev = recs.iter().position(|r| r.kind == 6).unwrap();
            recs.remove(ev);
        },
        Opts::default(),
    );
    assert!(!r.ok());
    assert!(problems(&r).contains("no agent-signed media key"), "{r}");
}
