//! Export: ffprobe sees AV1 of the right size in the WebM and the IVF, ffmpeg decodes every
//! frame without an error, and its last picture is the one sightline_media's dav1d decoder
//! makes from the same packets; the input log has one JSON line per event.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sightline_core::messages::{Message, VideoCodec};
use sightline_media::encode::Backend;
use sightline_media::pattern::screen_like_bgra;
use sightline_media::{bgra_to_yuv420, psnr, Av1Decoder, EncoderSettings};
use sightline_recording::{export, Record, Recording, Writer};
use std::path::Path;
use std::process::Command;

fn ffprobe(file: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_streams", "-of", "json"])
        .arg(file)
        .output()
        .expect("ffprobe (Debian package `ffmpeg`, installed by ./dev)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Decodes `file` with ffmpeg to raw I420; the pictures' bytes.
fn ffmpeg_decode(file: &Path) -> Vec<u8> {
    let raw = file.with_extension("yuv");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(file)
        .args([
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-fps_mode",
            "passthrough",
        ])
        .arg(&raw)
        .output()
        .expect("ffmpeg (Debian package `ffmpeg`, installed by ./dev)");
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "ffmpeg reported: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(raw).unwrap()
}

fn check_export(file: &Path, frames: usize) {
    let probe = ffprobe(file);
    let stream = &probe["streams"][0];
    assert_eq!(stream["codec_name"], "av1", "{probe}");
    assert_eq!(
        (stream["width"].as_u64(), stream["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert_eq!(
        (&stream["profile"], &stream["pix_fmt"]),
        (&"Main".into(), &"yuv420p".into())
    );
    let raw = ffmpeg_decode(file);
    let picture = (W * H * 3 / 2) as usize;
    assert_eq!(raw.len(), frames * picture, "ffmpeg decoded every frame");
    let last_y = &raw[raw.len() - picture..][..(W * H) as usize];

    let mut dec = Av1Decoder::new(1).unwrap();
    let mut last = None;
    for p in packets().iter().take(frames) {
        last = dec.decode(&p.data).unwrap().or(last);
    }
    let ours = last.unwrap();
    let db = psnr(last_y, &ours.y, W, H, W as usize, ours.y_stride);
    println!("{}: last picture vs dav1d: {db:.1} dB", file.display());
    assert!(db >= 40.0, "{db} dB");
}

#[test]
fn webm_and_ivf_decode_to_the_same_pictures() {
    let s = record(&Opts::default());
    let rec = Recording::open(&s.file, s.ids()).unwrap();
    let webm = s.dir.path().join("out.webm");
    let summary = export::webm(&rec, &webm).unwrap();
    assert_eq!((summary.frames, summary.skipped), (40, 0));
    assert_eq!((summary.width, summary.height), (W, H));
    assert!(summary.size_changes.is_empty());
    check_export(&webm, 40);

    let ivf = s.dir.path().join("out.ivf");
    let summary = export::ivf(&rec, &ivf).unwrap();
    assert_eq!(summary.frames, 40);
    check_export(&ivf, 40);
    let bytes = std::fs::read(&ivf).unwrap();
    assert_eq!(&bytes[..4], b"DKIF");
    assert_eq!(&bytes[8..12], b"AV01");
    assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 40);
}

#[test]
fn input_log_has_a_line_per_event() {
    let s = record(&Opts::default());
    let rec = Recording::open(&s.file, s.ids()).unwrap();
    let out = s.dir.path().join("input.jsonl");
    assert_eq!(export::input_log(&rec, &out).unwrap(), 14);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 14);
    assert_eq!(lines[1]["at_us"], 20 + 3 * FRAME_US + 3);
    assert_eq!(lines[1]["time"], "0.100 s");
    assert!(
        lines[1]["event"]["PointerMove"]["x"].is_number(),
        "{}",
        lines[1]
    );

    // Input left out of the recording: an empty log.
    let s = record(&Opts {
        frames: 3,
        include_input: false,
        ..Opts::default()
    });
    let rec = Recording::open(&s.file, s.ids()).unwrap();
    assert_eq!(export::input_log(&rec, &out).unwrap(), 0);
}

#[test]
fn a_size_change_is_kept_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (_, id) = auditor(dir.path());
    let mut w = Writer::new(&[id.to_public()], &meta(false)).unwrap();
    let mut cipher = w.take_ciphertext();
    let mut at = 0;
    let mut push = |w: &mut Writer, msg: Message| {
        at += FRAME_US;
        w.push(at, Record::Agent(&msg)).unwrap();
        at
    };
    push(
        &mut w,
        Message::VideoConfig {
            codec: VideoCodec::Av1,
            width: W,
            height: H,
        },
    );
    // A delta frame before any keyframe cannot be exported.
    push(&mut w, packet(99, &packets()[1]));
    for (i, p) in packets().iter().take(5).enumerate() {
        push(&mut w, packet(i as u64, p));
    }
    let changed_at = push(
        &mut w,
        Message::VideoConfig {
            codec: VideoCodec::Av1,
            width: 320,
            height: 180,
        },
    );
    let mut enc = Backend::fastest()
        .encoder(EncoderSettings {
            threads: 2,
            ..EncoderSettings::new(320, 180)
        })
        .unwrap();
    for i in 0..5u32 {
        let pic = bgra_to_yuv420(&screen_like_bgra(320, 180, 320 * 4, i)).unwrap();
        for p in enc.encode(&pic, u64::from(i), i == 0).unwrap() {
            push(&mut w, packet(10 + u64::from(i), &p));
        }
    }
    cipher.extend(w.finish("ended by operator").unwrap());
    let file = dir.path().join("resized.slrec");
    std::fs::write(&file, cipher).unwrap();
    let rec = Recording::open(&file, &[id]).unwrap();
    assert_eq!(rec.configs.len(), 2);
    let summary = export::webm(&rec, &dir.path().join("resized.webm")).unwrap();
    assert_eq!((summary.frames, summary.skipped), (10, 1));
    assert_eq!((summary.width, summary.height), (W, H));
    assert_eq!(summary.size_changes, vec![(changed_at, 320, 180)]);
    let probe = ffprobe(&dir.path().join("resized.webm"));
    assert_eq!(probe["streams"][0]["codec_name"], "av1");
}

fn packet(seq: u64, p: &sightline_media::EncodedPacket) -> Message {
    Message::VideoPacket {
        seq,
        capture_us: seq,
        keyframe: p.keyframe,
        data: p.data.clone(),
    }
}
