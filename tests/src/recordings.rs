//! Session recordings made in the test, for `viewer play`: real AV1 (libaom) written with
//! `sightline_recording::Writer` and encrypted to a fresh age key, with no session behind them.

use sightline_core::messages::{InputEvent, Message, VideoCodec};
use sightline_media::encode::Backend;
use sightline_media::{bgra_to_yuv420, BgraFrame, EncoderSettings, Yuv420Frame};
use sightline_recording::age::secrecy::ExposeSecret;
use sightline_recording::age::x25519::Identity;
use sightline_recording::{Meta, Record, Writer};
use std::path::{Path, PathBuf};

/// Microseconds between pictures (10 a second).
pub const FRAME_US: u64 = 100_000;

/// A recording file and the age key file that opens it.
#[derive(Debug)]
pub struct RecordingFile {
    pub file: PathBuf,
    pub key: PathBuf,
}

fn solid(width: u32, height: u32, rgb: [u8; 3]) -> Yuv420Frame {
    let px = [rgb[2], rgb[1], rgb[0], 255];
    let data = px
        .iter()
        .copied()
        .cycle()
        .take((width * height * 4) as usize)
        .collect();
    bgra_to_yuv420(&BgraFrame {
        width,
        height,
        stride: width as usize * 4,
        data,
    })
    .unwrap()
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
        software: "sightline-tests".into(),
    }
}

/// 10 s of a `width` x `height` screen at 10 pictures a second: solid red for the first 5 s,
/// solid blue after, a keyframe every 2 s, the pointer moving across, the operator's pointer
/// moving the other way, a key pressed each second and "hello" typed at 7.5 s; written to
/// `dir` with a new key.
pub fn red_then_blue(dir: &Path, width: u32, height: u32) -> RecordingFile {
    let identity = Identity::generate();
    let key = dir.join("key.txt");
    let secret = identity.to_string();
    std::fs::write(&key, format!("{}\n", secret.expose_secret())).unwrap();
    let mut w = Writer::new(&[identity.to_public()], &meta()).unwrap();
    let config = Message::VideoConfig {
        codec: VideoCodec::Av1,
        width,
        height,
    };
    w.push(0, Record::Agent(&config)).unwrap();
    let mut enc = Backend::fastest()
        .encoder(EncoderSettings {
            threads: 1,
            fps: 10,
            ..EncoderSettings::new(width, height)
        })
        .unwrap();
    let red = solid(width, height, [255, 0, 0]);
    let blue = solid(width, height, [0, 0, 255]);
    let mut bytes = w.take_ciphertext();
    for i in 0..100u64 {
        let at = i * FRAME_US;
        let picture = if i < 50 { &red } else { &blue };
        for p in enc.encode(picture, at, i % 20 == 0).unwrap() {
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
        // The operator's pointer, moving the other way.
        let moved = InputEvent::PointerMove {
            x: 1.0 - i as f32 / 100.0,
            y: 0.25,
        };
        w.push(at, Record::Input(&moved)).unwrap();
        if i % 10 == 5 {
            let key = InputEvent::Key {
                key: "KeyA".into(),
                pressed: true,
            };
            w.push(at, Record::Input(&key)).unwrap();
        }
        if i == 75 {
            let text = InputEvent::Text {
                text: "hello".into(),
            };
            w.push(at, Record::Input(&text)).unwrap();
        }
        bytes.extend(w.take_ciphertext());
    }
    bytes.extend(w.finish("the operator ended the session").unwrap());
    let file = dir.join("session.slrec");
    std::fs::write(&file, bytes).unwrap();
    RecordingFile { file, key }
}
