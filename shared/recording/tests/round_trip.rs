//! Writing and reading back: the ciphertext handed out in pieces is one age file that the
//! crate and Debian's `age` both decrypt; the items come back as pushed; the index finds every
//! keyframe and seeking lands on it; an unfinished recording is read by scanning; damaged or
//! hostile plaintext gives errors, never panics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sightline_recording::{parse_identity_file, Item, Recording, RecordingError, MAGIC};
use std::process::Command;

fn all_items(rec: &Recording) -> Vec<(u64, Item)> {
    rec.items().unwrap().map(|i| i.unwrap()).collect()
}

#[test]
fn items_come_back_as_pushed_and_age_decrypts_the_file() {
    let s = record(&Opts::default());
    assert!(
        s.pieces.len() > 3,
        "ciphertext came in pieces: {:?}",
        s.pieces
    );
    let rec = Recording::open(&s.file, s.ids()).unwrap();
    assert!(rec.complete && rec.stopped.is_none());
    assert_eq!(rec.size, Some((W, H)));
    assert_eq!(rec.meta.operator, "alice");
    assert_eq!(rec.meta.session_id, SESSION);
    assert_eq!(rec.meta.agent_fingerprint, agent().public().fingerprint());
    assert_eq!(rec.keyframes.len(), 2);
    assert_eq!((rec.keyframes[0].seq, rec.keyframes[1].seq), (0, 20));
    assert_eq!(rec.video_packets, 40);
    assert_eq!(rec.video_bytes, s.video_bytes);
    assert_eq!(rec.inputs.len(), 14);
    assert_eq!(rec.duration_us, s.pushed.last().unwrap().0);

    let items = all_items(&rec);
    assert!(matches!(&items[0], (0, Item::Meta(m)) if m.relay == "relay.example.com:7615"));
    assert_eq!(
        items[1..],
        s.pushed[..],
        "items differ from what was pushed"
    );

    // Debian's age with the key file age-keygen wrote.
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&s.key_file)
        .arg(&s.file)
        .output()
        .expect("the age tool (Debian package `age`, installed by ./dev)");
    assert!(
        out.status.success(),
        "age -d: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.starts_with(MAGIC));
    let cipher = std::fs::read(&s.file).unwrap();
    assert_eq!(out.stdout, decrypt(&cipher, &s.identity));
    // After the records pushed: End, Index, and the 24-byte footer.
    let (recs, footer) = parse(&out.stdout);
    assert_eq!(footer.len(), 24);
    let tail: Vec<u8> = recs.iter().rev().take(2).map(|r| r.kind).collect();
    assert_eq!(tail, [10, 9]);
    let tail_len: usize = recs
        .iter()
        .rev()
        .take(2)
        .map(|r| 13 + r.payload.len())
        .sum();
    assert_eq!(
        out.stdout.len() as u64,
        s.plaintext_bytes + tail_len as u64 + 24
    );
}

#[test]
fn seeking_lands_on_the_keyframe() {
    let s = record(&Opts::default());
    let rec = Recording::open(&s.file, s.ids()).unwrap();
    let second = rec.keyframes[1];
    assert_eq!(rec.keyframe_at_or_before(0).unwrap().seq, 0);
    assert_eq!(rec.keyframe_at_or_before(second.at_us - 1).unwrap().seq, 0);
    assert_eq!(rec.keyframe_at_or_before(second.at_us).unwrap().seq, 20);
    assert_eq!(rec.keyframe_at_or_before(u64::MAX).unwrap().seq, 20);
    let mut items = rec.items_from(second.offset).unwrap();
    let (at, first) = items.next().unwrap().unwrap();
    assert_eq!(at, second.at_us);
    assert!(matches!(
        first,
        Item::Packet {
            seq: 20,
            keyframe: true,
            ..
        }
    ));
    let rest: Vec<_> = items.map(|i| i.unwrap()).collect();
    let want = s
        .pushed
        .iter()
        .position(|(t, _)| *t == second.at_us)
        .unwrap();
    assert_eq!(rest[..], s.pushed[want + 1..]);
    // Past the end is an error, not a misread.
    assert!(rec.items_from(u64::MAX).is_err());
}

#[test]
fn a_recording_the_viewer_never_finished_is_read_by_scanning() {
    let s = record(&Opts {
        finish: false,
        final_checkpoint: false,
        ..Opts::default()
    });
    let rec = Recording::open(&s.file, s.ids()).unwrap();
    assert!(!rec.complete);
    assert!(
        rec.stopped.as_deref().unwrap_or("").contains("truncated"),
        "{:?}",
        rec.stopped
    );
    // Everything up to the last whole 64 KiB chunk is there.
    let items = all_items(&rec);
    assert!(items.len() > 20);
    assert_eq!(items[1..], s.pushed[..items.len() - 1]);
    assert_eq!(rec.keyframes.len(), 2);
    let kf = rec.keyframes[1];
    let (_, first) = rec.items_from(kf.offset).unwrap().next().unwrap().unwrap();
    assert!(matches!(first, Item::Packet { seq: 20, .. }));
}

#[test]
fn padding_pushes_everything_into_the_ciphertext() {
    let dir = tempfile::tempdir().unwrap();
    let (_, id) = auditor(dir.path());
    let mut w = sightline_recording::Writer::new(&[id.to_public()], &meta(true)).unwrap();
    let mut cipher = w.take_ciphertext();
    let ev = sightline_core::messages::InputEvent::Text {
        text: "hello".into(),
    };
    w.push(5, sightline_recording::Record::Input(&ev)).unwrap();
    assert!(
        w.take_ciphertext().is_empty(),
        "age holds back a partial chunk"
    );
    w.pad_to_chunk().unwrap();
    cipher.extend(w.take_ciphertext());
    assert_eq!(w.plaintext_bytes(), 64 * 1024 + 1);
    // An input that ends exactly on the next chunk boundary: age holds the full chunk back
    // until more follows, and the smallest padding record lets it out.
    let json_overhead = r#"{"Text":{"text":""}}"#.len() as u64;
    let text_len = 2 * 64 * 1024 - w.plaintext_bytes() - 13 - json_overhead;
    let long = sightline_core::messages::InputEvent::Text {
        text: "x".repeat(text_len as usize),
    };
    w.push(6, sightline_recording::Record::Input(&long))
        .unwrap();
    assert_eq!(w.plaintext_bytes(), 2 * 64 * 1024);
    assert!(w.take_ciphertext().is_empty());
    w.pad_to_chunk().unwrap();
    assert_eq!(w.plaintext_bytes(), 2 * 64 * 1024 + 13);
    cipher.extend(w.take_ciphertext());
    // The crash: nothing more arrives. The inputs are readable.
    let file = dir.path().join("crashed.slrec");
    std::fs::write(&file, &cipher).unwrap();
    let rec = Recording::open(&file, &[id]).unwrap();
    assert!(!rec.complete);
    assert_eq!(rec.inputs, vec![(5, ev), (6, long)]);
}

#[test]
fn unknown_record_kinds_are_skipped() {
    let s = record(&Opts {
        frames: 5,
        ..Opts::default()
    });
    let plain = decrypt(&std::fs::read(&s.file).unwrap(), &s.identity);
    let (mut recs, _) = parse(&plain);
    recs.insert(
        2,
        Rec {
            kind: 200,
            at: 10,
            payload: b"from a newer viewer".to_vec(),
        },
    );
    // Without a footer: read by scanning.
    let file = write(
        &s,
        "newer.slrec",
        &encrypt(&unparse(&recs, &[]), &s.identity.to_public()),
    );
    let rec = Recording::open(&file, s.ids()).unwrap();
    assert!(!rec.complete);
    assert_eq!(all_items(&rec)[1..], s.pushed[..]);
}

#[test]
fn wrong_keys_and_foreign_files_are_clear_errors() {
    let s = record(&Opts {
        frames: 3,
        ..Opts::default()
    });
    let other = sightline_recording::age::x25519::Identity::generate();
    let err = Recording::open(&s.file, &[other]).unwrap_err();
    assert!(matches!(err, RecordingError::Decrypt(_)), "{err}");
    assert!(
        err.to_string().contains("none of the given identities"),
        "{err}"
    );
    let not_age = write(&s, "junk.slrec", b"hello, I am not an age file\n");
    assert!(matches!(
        Recording::open(&not_age, s.ids()),
        Err(RecordingError::Decrypt(_))
    ));
    let other_plain = write(
        &s,
        "other.age",
        &encrypt(b"just some text", &s.identity.to_public()),
    );
    assert!(matches!(
        Recording::open(&other_plain, s.ids()),
        Err(RecordingError::NotARecording)
    ));
    let v2 = write(
        &s,
        "v2.age",
        &encrypt(b"sightline recording v2\nfuture", &s.identity.to_public()),
    );
    assert!(matches!(
        Recording::open(&v2, s.ids()),
        Err(RecordingError::UnsupportedVersion(v)) if v == "2"
    ));
    assert_eq!(parse_identity_file(&s.key_file).unwrap().len(), 1);
}

/// Tiny deterministic generator for the corruption loop.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn corrupted_plaintext_gives_errors_not_panics() {
    let s = record(&Opts {
        frames: 6,
        checkpoint_every: 2,
        ..Opts::default()
    });
    let plain = decrypt(&std::fs::read(&s.file).unwrap(), &s.identity);
    let to = s.identity.to_public();
    let ids = [s.identity.clone()];
    let mut rng = Lcg(99);
    let (mut opened, mut failed) = (0, 0);
    for round in 0..150 {
        let mut p = plain.clone();
        match round % 5 {
            // A few random bytes anywhere (headers, lengths, JSON, postcard, the index).
            0 | 1 => {
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(p.len());
                    p[i] = rng.next() as u8;
                }
            }
            // Cut anywhere.
            2 => p.truncate(rng.below(p.len())),
            // A length field set to something large.
            3 => {
                let (recs, _) = parse(&plain);
                let mut pos = MAGIC.len();
                for r in recs.iter().take(rng.below(recs.len())) {
                    pos += 13 + r.payload.len();
                }
                let len = [0xffff_ffffu32, 16 << 20, 17 << 20, rng.next() as u32][rng.below(4)];
                p[pos + 9..pos + 13].copy_from_slice(&len.to_le_bytes());
            }
            // The footer's offsets.
            _ => {
                let n = p.len();
                let i = n - 1 - rng.below(16);
                p[i] ^= 1 << rng.below(8);
            }
        }
        let file = write(&s, "fuzz.slrec", &encrypt(&p, &to));
        match Recording::open(&file, &ids) {
            Ok(rec) => {
                opened += 1;
                for item in rec.items().unwrap() {
                    if item.is_err() {
                        break;
                    }
                }
                for k in &rec.keyframes {
                    if let Ok(items) = rec.items_from(k.offset) {
                        items.take(3).for_each(drop);
                    }
                }
                let _ = rec.items_from(rng.next());
            }
            Err(_) => failed += 1,
        }
        let _ = sightline_recording::verify(&file, &ids, None);
        let out = s.dir.path().join("fuzz.ivf");
        if let Ok(rec) = Recording::open(&file, &ids) {
            let _ = sightline_recording::export::ivf(&rec, &out);
            let _ = sightline_recording::export::webm(&rec, &out.with_extension("webm"));
        }
    }
    println!("corruption: {opened} opened, {failed} refused");
    assert!(opened > 0 && failed > 0);
}
