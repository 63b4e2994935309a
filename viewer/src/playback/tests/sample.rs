//! The sample recording of the playback tests: AV1 from libaom through
//! `sightline_recording`'s writer, encrypted to a fresh age key. 10 s at 10 pictures a second,
//! red for the first 5 s and blue after, a keyframe every 2 s, the pointer moving right, a key
//! pressed each second and a click at the end.

use sightline_core::messages::{InputEvent, Message, MouseButton, VideoCodec};
use sightline_media::encode::Backend;
use sightline_media::{bgra_to_yuv420, BgraFrame, EncoderSettings, Yuv420Frame};
use sightline_recording::age::secrecy::ExposeSecret;
use sightline_recording::age::x25519::Identity;
use sightline_recording::{Meta, Record, Recording, Writer};
use std::path::PathBuf;
use std::sync::Arc;

pub const W: u32 = 160;
pub const H: u32 = 96;
pub const FRAME_US: u64 = 100_000;

/// A recording in a temporary directory and the key file that opens it.
pub struct Sample {
    _dir: tempfile::TempDir,
    pub file: PathBuf,
    pub key: PathBuf,
    pub identity: Identity,
}

fn solid(bgr: [u8; 3]) -> Yuv420Frame {
    let px = [bgr[0], bgr[1], bgr[2], 255];
    let data = px
        .iter()
        .copied()
        .cycle()
        .take((W * H * 4) as usize)
        .collect();
    let bgra = BgraFrame {
        width: W,
        height: H,
        stride: W as usize * 4,
        data,
    };
    bgra_to_yuv420(&bgra).unwrap()
}

fn meta() -> Meta {
    Meta {
        session_id: [0x5a; 16],
        operator: "alice".into(),
        display_name: "Alice Example".into(),
        organisation: "Example Support".into(),
        relay: "relay.example.com:7615".into(),
        agent_key_spki: vec![1, 2, 3],
        started_unix_us: 1_800_000_000_000_000,
        include_input: true,
        software: "playback test".into(),
    }
}

/// Records the red-then-blue session; `finish` false leaves the file unfinished (as a viewer
/// that crashed would).
pub fn record(finish: bool) -> Sample {
    let dir = tempfile::tempdir().unwrap();
    let identity = Identity::generate();
    let key = dir.path().join("key.txt");
    std::fs::write(&key, format!("{}\n", identity.to_string().expose_secret())).unwrap();
    let mut w = Writer::new(&[identity.to_public()], &meta()).unwrap();
    let config = Message::VideoConfig {
        codec: VideoCodec::Av1,
        width: W,
        height: H,
    };
    w.push(0, Record::Agent(&config)).unwrap();
    let mut enc = Backend::fastest()
        .encoder(EncoderSettings {
            threads: 1,
            fps: 10,
            ..EncoderSettings::new(W, H)
        })
        .unwrap();
    let (red, blue) = (solid([0, 0, 255]), solid([255, 0, 0]));
    let mut file = w.take_ciphertext();
    for i in 0..100u64 {
        let at = i * FRAME_US;
        let pic = if i < 50 { &red } else { &blue };
        for p in enc.encode(pic, at, i % 20 == 0).unwrap() {
            let packet = Message::VideoPacket {
                seq: i,
                capture_us: p.capture_us,
                keyframe: p.keyframe,
                data: p.data,
            };
            w.push(at, Record::Agent(&packet)).unwrap();
        }
        let cursor = Message::Cursor {
            x: i as f32 / 100.0,
            y: 0.5,
            visible: true,
            shape: None,
        };
        w.push(at, Record::Agent(&cursor)).unwrap();
        if i % 10 == 5 {
            let key = InputEvent::Key {
                key: "KeyA".into(),
                pressed: true,
            };
            w.push(at, Record::Input(&key)).unwrap();
        }
        if !finish && i % 10 == 9 {
            // As the viewer does now and then: what was recorded so far goes out whole.
            w.pad_to_chunk().unwrap();
        }
        file.extend(w.take_ciphertext());
    }
    let click = InputEvent::Button {
        button: MouseButton::Left,
        pressed: true,
    };
    w.push(9_950_000, Record::Input(&click)).unwrap();
    if finish {
        file.extend(w.finish("the operator ended the session").unwrap());
    } else {
        // What reached the disk before the crash: whole age chunks only.
        w.pad_to_chunk().unwrap();
        file.extend(w.take_ciphertext());
    }
    let path = dir.path().join("session.slrec");
    std::fs::write(&path, file).unwrap();
    Sample {
        _dir: dir,
        file: path,
        key,
        identity,
    }
}

/// The same finished sample for every test of this binary that only reads it.
pub fn sample() -> &'static Sample {
    static S: std::sync::OnceLock<Sample> = std::sync::OnceLock::new();
    S.get_or_init(|| record(true))
}

pub fn open(s: &Sample) -> Arc<Recording> {
    Arc::new(Recording::open(&s.file, std::slice::from_ref(&s.identity)).unwrap())
}
