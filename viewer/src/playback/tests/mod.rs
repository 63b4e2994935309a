//! The playback engine on real recordings ([`sample`]): seeking, pacing, pausing, the end,
//! truncated and damaged files, bad keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sample;
mod window;

use super::clock::{PlayClock, Speed};
use super::engine::{Command, PlaybackThread, Start};
use super::mailbox::{Mailbox, Shown, Status};
use super::{run, Options, PlaybackError};
use sample::{open, record, sample};
use sightline_media::Yuv420Frame;
use sightline_recording::age::secrecy::ExposeSecret;
use sightline_recording::age::x25519::Identity;
use sightline_recording::{Recording, RecordingError};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

/// A playback thread over `rec` and its mailbox.
fn play(rec: Arc<Recording>, start: Start) -> (PlaybackThread, Arc<Mailbox>) {
    let status = Status {
        clock: PlayClock::stopped(0, Speed::Normal, Instant::now()),
        ended: false,
        problem: None,
        end_reason: None,
        pointer: None,
        shape: None,
    };
    let mailbox = Arc::new(Mailbox::new(status, Box::new(|| {})));
    let thread = PlaybackThread::spawn(rec, start, mailbox.clone()).unwrap();
    (thread, mailbox)
}

fn paused_at(at_us: u64) -> Start {
    Start {
        at_us,
        playing: false,
        speed: Speed::Normal,
    }
}

/// Waits for a picture of seek number `seek`.
fn picture_of(mailbox: &Mailbox, seek: u64) -> Shown {
    let deadline = Instant::now() + T;
    while Instant::now() < deadline {
        match mailbox.take_frame() {
            Some(s) if s.seek == seek => return s,
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    panic!("no picture for seek {seek}")
}

/// Waits until the status satisfies `check`.
fn status_where(mailbox: &Mailbox, check: impl Fn(&Status) -> bool) -> Status {
    let deadline = Instant::now() + T;
    while Instant::now() < deadline {
        let s = mailbox.status();
        if check(&s) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("status never reached: {:?}", mailbox.status())
}

fn mean(plane: &[u8]) -> f64 {
    plane.iter().map(|&v| f64::from(v)).sum::<f64>() / plane.len() as f64
}

/// Red has much more Cr than Cb, blue the other way round.
fn colour(p: &Yuv420Frame) -> &'static str {
    let (u, v) = (mean(&p.u), mean(&p.v));
    if v > u + 60.0 {
        "red"
    } else if u > v + 60.0 {
        "blue"
    } else {
        "other"
    }
}

#[test]
fn a_seek_shows_the_picture_at_the_target_at_once() {
    let rec = open(sample());
    assert_eq!(rec.keyframes.len(), 5, "{:?}", rec.keyframes);
    let (thread, mailbox) = play(rec, paused_at(1_000_000));
    let first = picture_of(&mailbox, 1);
    assert_eq!((first.at_us, colour(&first.picture)), (1_000_000, "red"));
    let s = status_where(&mailbox, |s| s.pointer.is_some());
    assert!(!s.clock.running());
    assert_eq!(s.clock.position(Instant::now()), 1_000_000);
    let pointer = s.pointer.expect("the pointer record at 1 s was read");
    assert!((pointer.x - 0.10).abs() < 1e-6, "{pointer:?}");

    // Between two pictures, past a keyframe (6 s): the picture before the target.
    thread.send(Command::Seek(7_050_000)).unwrap();
    let shown = picture_of(&mailbox, 2);
    assert_eq!((shown.at_us, colour(&shown.picture)), (7_000_000, "blue"));
    status_where(&mailbox, |s| s.clock.position(Instant::now()) == 7_050_000);
    // Back, into the red half, and forward within one keyframe interval.
    thread.send(Command::Seek(4_900_000)).unwrap();
    let shown = picture_of(&mailbox, 3);
    assert_eq!((shown.at_us, colour(&shown.picture)), (4_900_000, "red"));
    thread.send(Command::Seek(5_300_000)).unwrap();
    let shown = picture_of(&mailbox, 4);
    assert_eq!((shown.at_us, colour(&shown.picture)), (5_300_000, "blue"));
}

#[test]
fn seeks_past_the_end_stop_at_the_last_picture() {
    let rec = open(sample());
    let duration = rec.duration_us;
    let (thread, mailbox) = play(rec, paused_at(u64::MAX));
    let last = picture_of(&mailbox, 1);
    assert_eq!((last.at_us, colour(&last.picture)), (9_900_000, "blue"));
    let s = status_where(&mailbox, |s| s.ended);
    assert_eq!(s.clock.position(Instant::now()), duration);
    assert_eq!(
        s.end_reason.as_deref(),
        Some("the operator ended the session")
    );
    assert!(s.problem.is_none());
    // Play at the end starts again from the beginning.
    thread.send(Command::Play).unwrap();
    let again = picture_of(&mailbox, 2);
    assert_eq!((again.at_us, colour(&again.picture)), (0, "red"));
    thread.send(Command::Pause).unwrap();
}

#[test]
fn playing_is_paced_by_the_speed() {
    let rec = open(sample());
    let start = Start {
        at_us: 8_000_000,
        playing: true,
        speed: Speed::Quadruple,
    };
    let began = Instant::now();
    let (thread, mailbox) = play(rec, start);
    let first = picture_of(&mailbox, 1);
    assert_eq!(first.at_us, 8_000_000);
    let mut seen = vec![first.at_us];
    while !mailbox.status().ended {
        assert!(began.elapsed() < T, "playback never ended");
        if let Some(s) = mailbox.take_frame() {
            seen.push(s.at_us);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let took = began.elapsed();
    // 1.9 s of recording at 4×: about 0.475 s, never less.
    assert!(took >= Duration::from_millis(470), "{took:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert!(seen.len() > 3, "{seen:?}");
    let s = mailbox.status();
    assert!(!s.clock.running(), "stopped at the end");
    drop(thread);
}

#[test]
fn pause_holds_the_position_and_speed_changes_pace() {
    let rec = open(sample());
    let start = Start {
        at_us: 0,
        playing: true,
        speed: Speed::Normal,
    };
    let (thread, mailbox) = play(rec, start);
    picture_of(&mailbox, 1);
    std::thread::sleep(Duration::from_millis(300));
    thread.send(Command::Pause).unwrap();
    let s = status_where(&mailbox, |s| !s.clock.running());
    let held = s.clock.position(Instant::now());
    assert!((250_000..3_000_000).contains(&held), "{held}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(mailbox.status().clock.position(Instant::now()), held);
    thread.send(Command::Speed(Speed::Octuple)).unwrap();
    thread.send(Command::Play).unwrap();
    let s = status_where(&mailbox, |s| {
        s.clock.running() && s.clock.speed() == Speed::Octuple
    });
    assert!(s.clock.position(Instant::now()) >= held);
    status_where(&mailbox, |s| s.ended);
}

#[test]
fn a_truncated_recording_plays_to_where_it_ends() {
    let s = record(false);
    let rec = open(&s);
    assert!(!rec.complete);
    let (thread, mailbox) = play(rec, paused_at(9_000_000));
    let shown = picture_of(&mailbox, 1);
    assert_eq!(colour(&shown.picture), "blue");
    thread.send(Command::Speed(Speed::Octuple)).unwrap();
    thread.send(Command::Play).unwrap();
    let end = status_where(&mailbox, |s| s.ended);
    assert!(end.problem.is_none(), "{:?}", end.problem);

    // Cut in the middle of the file: what authenticates plays, then it stops.
    let bytes = std::fs::read(&s.file).unwrap();
    let cut = s.file.with_extension("cut");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let rec = Arc::new(Recording::open(&cut, std::slice::from_ref(&s.identity)).unwrap());
    assert!(!rec.complete && rec.duration_us < 9_000_000, "{rec:?}");
    let (_thread, mailbox) = play(rec.clone(), paused_at(u64::MAX));
    let last = picture_of(&mailbox, 1);
    assert!(last.at_us <= rec.duration_us);
    status_where(&mailbox, |s| s.ended);
}

#[test]
fn bad_files_and_keys_are_errors_not_panics() {
    let s = sample();
    let opts = |file: &Path, key: &Path| Options {
        file: file.to_path_buf(),
        identity: key.to_path_buf(),
        seek_secs: None,
        paused: true,
        json: false,
    };
    let other = tempfile::tempdir().unwrap();
    let wrong = other.path().join("other.txt");
    let id = Identity::generate();
    std::fs::write(&wrong, id.to_string().expose_secret()).unwrap();
    let err = run(opts(&s.file, &wrong)).unwrap_err();
    assert!(
        matches!(err, PlaybackError::Recording(RecordingError::Decrypt(_))),
        "{err}"
    );
    let garbage = other.path().join("garbage.slrec");
    std::fs::write(&garbage, b"age-encryption.org/v1\n-> nonsense\n").unwrap();
    let err = run(opts(&garbage, &s.key)).unwrap_err();
    assert!(matches!(err, PlaybackError::Recording(_)), "{err}");
    let err = run(opts(&s.file, &other.path().join("missing.txt"))).unwrap_err();
    assert!(err.to_string().contains("missing.txt"), "{err}");
    let mut bad_seek = opts(&s.file, &s.key);
    bad_seek.seek_secs = Some(-1.0);
    assert!(matches!(run(bad_seek), Err(PlaybackError::BadSeek(_))));
}

#[test]
fn dropping_the_handle_never_waits() {
    let rec = open(sample());
    let start = Start {
        at_us: 0,
        playing: true,
        speed: Speed::Half,
    };
    let (thread, mailbox) = play(rec, start);
    // Fill the queue without the thread reading it for a while.
    for i in 0..1000 {
        let _ = thread.send(Command::Seek(i * 10_000));
    }
    let began = Instant::now();
    drop(thread);
    assert!(began.elapsed() < Duration::from_millis(100));
    drop(mailbox);
}
