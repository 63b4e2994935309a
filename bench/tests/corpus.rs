//! The corpus format: lossless round trips through `ClipWriter` and `ClipReader`, the recorded
//! clips in `assets/corpus`, and damaged files.

// Helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use png::Compression;
use sightline_bench::corpus::{
    self, probe, Clip, ClipReader, ClipWriter, CorpusError, CorpusFrame, Rect,
};
use sightline_media::BgraFrame;

const W: u32 = 37;
const H: u32 = 23;

/// A deterministic pseudo-random byte stream (xorshift).
struct Noise(u64);

impl Noise {
    fn byte(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 24) as u8
    }
}

/// A `W` x `H` picture with padded rows (stride > width * 4) and junk in the fourth bytes, as
/// an X server hands them out.
fn noise_frame(noise: &mut Noise) -> BgraFrame {
    let stride = W as usize * 4 + 12;
    let data = (0..stride * H as usize).map(|_| noise.byte()).collect();
    BgraFrame {
        width: W,
        height: H,
        stride,
        data,
    }
}

fn pixel(frame: &BgraFrame, x: u32, y: u32) -> [u8; 3] {
    let at = y as usize * frame.stride + x as usize * 4;
    [frame.data[at], frame.data[at + 1], frame.data[at + 2]]
}

fn set_pixel(frame: &mut BgraFrame, x: u32, y: u32, bgr: [u8; 3]) {
    let at = y as usize * frame.stride + x as usize * 4;
    frame.data[at..at + 3].copy_from_slice(&bgr);
}

/// Changes every pixel of `rect` to new noise (making sure each one differs).
fn repaint(frame: &mut BgraFrame, rect: Rect, noise: &mut Noise) {
    for y in rect.y..rect.y + rect.height {
        for x in rect.x..rect.x + rect.width {
            let old = pixel(frame, x, y);
            let mut new = [noise.byte(), noise.byte(), noise.byte()];
            if new == old {
                new[0] = old[0].wrapping_add(1);
            }
            set_pixel(frame, x, y, new);
        }
    }
}

fn rect(x: u32, y: u32, width: u32, height: u32) -> Rect {
    Rect {
        x,
        y,
        width,
        height,
    }
}

/// What the test expects back for each frame pushed.
struct Expected {
    at_ms: u32,
    frame: BgraFrame,
    damage: Option<Rect>,
}

/// A sequence covering every kind of frame: small changes, nothing, one pixel at (0, 0) (the
/// rectangle an unchanged frame stores), corners, the fourth byte alone, the whole picture.
fn sequence() -> Vec<Expected> {
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let mut frame = noise_frame(&mut noise);
    let mut out = vec![Expected {
        at_ms: 0,
        frame: frame.clone(),
        damage: Some(Rect::full(W, H)),
    }];
    let mut at_ms = 0;
    let steps: Vec<(u32, Option<Rect>)> = vec![
        (33, Some(rect(3, 4, 5, 2))),
        (34, None),
        (33, Some(rect(0, 0, 1, 1))),
        (0, None), // same timestamp twice
        (33, Some(rect(W - 1, H - 1, 1, 1))),
        (1500, Some(Rect::full(W, H))),
        (17, Some(rect(0, 10, W, 1))),
        (40, Some(rect(20, 0, 1, H))),
        (33, None),
        (65_535, Some(rect(10, 10, 3, 3))), // the longest delay a frame can have
        (33, None),
    ];
    for (step, change) in steps {
        at_ms += step;
        if let Some(r) = change {
            repaint(&mut frame, r, &mut noise);
        }
        // Junk in the fourth bytes must not count as a change.
        for a in frame.data.iter_mut().skip(3).step_by(4) {
            *a = noise.byte();
        }
        out.push(Expected {
            at_ms,
            frame: frame.clone(),
            damage: change,
        });
    }
    out
}

fn write_clip(path: &Path, expected: &[Expected]) -> corpus::ClipInfo {
    let mut writer = ClipWriter::create(path, W, H, Compression::Fast).unwrap();
    for e in expected {
        // Timestamps may start anywhere; the clip counts from the first.
        let damage = writer.push(e.at_ms + 1000, &e.frame).unwrap();
        assert_eq!(damage, e.damage, "damage reported at {} ms", e.at_ms);
    }
    writer.finish().unwrap()
}

fn assert_same_picture(got: &BgraFrame, want: &BgraFrame, what: &str) {
    assert_eq!((got.width, got.height), (want.width, want.height), "{what}");
    assert_eq!(got.stride, got.width as usize * 4, "{what}: tight rows");
    for y in 0..want.height {
        for x in 0..want.width {
            let at = y as usize * got.stride + x as usize * 4;
            assert_eq!(
                &got.data[at..at + 4],
                &[
                    pixel(want, x, y)[0],
                    pixel(want, x, y)[1],
                    pixel(want, x, y)[2],
                    255
                ],
                "{what}: pixel ({x}, {y})"
            );
        }
    }
}

fn check_frames(reader: &mut ClipReader, expected: &[Expected]) {
    for (i, e) in expected.iter().enumerate() {
        let got = reader.next_frame().unwrap().expect("a frame");
        assert_eq!(got.index as usize, i);
        assert_eq!(got.at_ms, e.at_ms, "time of frame {i}");
        assert_eq!(got.changed, e.damage.is_some(), "changed flag of frame {i}");
        assert_eq!(got.damage, e.damage, "damage of frame {i}");
        assert_same_picture(&got.bgra, &e.frame, &format!("frame {i}"));
    }
    assert!(reader.next_frame().unwrap().is_none());
    assert!(reader.next_frame().unwrap().is_none(), "stays at the end");
}

#[test]
fn round_trip_is_lossless() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synthetic-37x23.png");
    let expected = sequence();
    let info = write_clip(&path, &expected);
    assert!(!dir.path().join("synthetic-37x23.png.partial").exists());

    assert_eq!(info.name, "synthetic-37x23");
    assert_eq!((info.width, info.height), (W, H));
    assert_eq!(info.frames as usize, expected.len());
    // The last frame is shown as long as the interval before it.
    let last = expected.last().unwrap().at_ms;
    assert_eq!(info.duration_ms, last + 33);
    assert_eq!(probe(&path).unwrap(), info);

    let mut reader = ClipReader::open(&path).unwrap();
    assert_eq!((reader.width(), reader.height()), (W, H));
    assert_eq!(reader.frame_count() as usize, expected.len());
    check_frames(&mut reader, &expected);
    reader.rewind().unwrap();
    check_frames(&mut reader, &expected);

    let clip = Clip::load(&path).unwrap();
    assert_eq!(clip.frames.len(), expected.len());
    for (got, want) in clip.frames.iter().zip(&expected) {
        assert_same_picture(&got.bgra, &want.frame, "loaded clip");
    }
}

#[test]
fn reader_reuses_its_canvas_when_frames_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.png");
    write_clip(&path, &sequence());
    let mut reader = ClipReader::open(&path).unwrap();
    let first = reader.next_frame().unwrap().unwrap();
    let ptr = first.bgra.data.as_ptr();
    drop(first);
    let second: CorpusFrame = reader.next_frame().unwrap().unwrap();
    assert_eq!(
        second.bgra.data.as_ptr(),
        ptr,
        "no copy when the caller let go"
    );
    let third = reader.next_frame().unwrap().unwrap();
    assert_ne!(second.bgra.data.as_ptr(), third.bgra.data.as_ptr());
}

#[test]
fn one_frame_clip_and_single_pixel_picture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dot.png");
    let frame = BgraFrame {
        width: 1,
        height: 1,
        stride: 4,
        data: vec![1, 2, 3, 0],
    };
    let mut writer = ClipWriter::create(&path, 1, 1, Compression::High).unwrap();
    writer.push(0, &frame).unwrap();
    let info = writer.finish().unwrap();
    assert_eq!((info.frames, info.duration_ms), (1, 33));
    let clip = Clip::load(&path).unwrap();
    assert_eq!(clip.frames[0].bgra.data, vec![1, 2, 3, 255]);
}

#[test]
fn writer_rejects_bad_input_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.png");
    let mut noise = Noise(7);
    let frame = noise_frame(&mut noise);

    let mut writer = ClipWriter::create(&path, W, H, Compression::Fast).unwrap();
    let small = BgraFrame {
        width: W - 1,
        height: H,
        stride: W as usize * 4,
        data: vec![0; W as usize * 4 * H as usize],
    };
    assert!(matches!(
        writer.push(0, &small),
        Err(CorpusError::FrameSize { .. })
    ));
    let short = BgraFrame {
        data: vec![0; 10],
        ..frame.clone()
    };
    assert!(matches!(writer.push(0, &short), Err(CorpusError::Frame(_))));
    writer.push(100, &frame).unwrap();
    assert!(matches!(
        writer.push(99, &frame),
        Err(CorpusError::Time { .. })
    ));
    assert!(matches!(
        writer.push(100 + 65_536, &frame),
        Err(CorpusError::Time { .. })
    ));
    // Still usable after a rejected frame.
    writer.push(133, &frame).unwrap();
    drop(writer);
    assert!(!path.exists());
    assert!(
        !dir.path().join("bad.png.partial").exists(),
        "dropped writer cleans up"
    );

    let empty = ClipWriter::create(&path, W, H, Compression::Fast).unwrap();
    assert!(empty.finish().is_err(), "a clip needs a frame");
    assert!(!path.exists());
}

/// Opens `bytes` as a clip and reads every frame; returns the first error. Must not panic.
fn read_all(dir: &Path, bytes: &[u8]) -> Result<u32, CorpusError> {
    let path = dir.join("damaged.png");
    std::fs::write(&path, bytes).unwrap();
    // The index must fail or agree, never panic.
    let _ = probe(&path);
    let mut reader = ClipReader::open(&path)?;
    let mut n = 0;
    while reader.next_frame()?.is_some() {
        n += 1;
    }
    Ok(n)
}

#[test]
fn damaged_files_give_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.png");
    let expected = sequence();
    write_clip(&path, &expected);
    let good = std::fs::read(&path).unwrap();
    assert_eq!(
        read_all(dir.path(), &good).unwrap() as usize,
        expected.len()
    );

    // Truncation anywhere fails (the last 12 bytes are IEND; a file cut inside IEND may
    // still hold every frame, so stop before it).
    for cut in (0..good.len() - 12).step_by(3) {
        assert!(
            read_all(dir.path(), &good[..cut]).is_err(),
            "truncated to {cut} bytes"
        );
    }
    // Flipped bits fail the chunk checksums; none may panic. (IEND is never read: the reader
    // stops after the last frame the acTL chunk declares.)
    for at in (0..good.len() - 12).step_by(7) {
        let mut bad = good.clone();
        bad[at] ^= 0x5A;
        assert!(read_all(dir.path(), &bad).is_err(), "byte {at} flipped");
    }
    assert!(read_all(dir.path(), b"not a png at all").is_err());
    assert!(read_all(dir.path(), b"").is_err());
}

#[test]
fn still_pngs_are_not_clips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("still.png");
    let file = std::fs::File::create(&path).unwrap();
    let mut encoder = png::Encoder::new(file, 2, 2);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&[0; 12]).unwrap();
    writer.finish().unwrap();
    assert!(matches!(
        ClipReader::open(&path),
        Err(CorpusError::Format { .. })
    ));
    assert!(matches!(probe(&path), Err(CorpusError::Format { .. })));
}

const SCENARIOS: [&str; 5] = ["scroll", "typing", "drag", "video", "idle"];
const SIZES: [(u32, u32); 2] = [(1280, 720), (1920, 1080)];

#[test]
fn recorded_corpus_is_complete() {
    let clips = corpus::list().unwrap();
    for scenario in SCENARIOS {
        for (w, h) in SIZES {
            let name = format!("{scenario}-{w}x{h}");
            let info = clips
                .iter()
                .find(|c| c.name == name)
                .unwrap_or_else(|| panic!("{name}.png is missing: run assets/corpus/record.sh"));
            assert_eq!((info.width, info.height), (w, h), "{name}");
            assert!(info.frames >= 30, "{name}: {} frames", info.frames);
            assert!(info.duration_ms >= 1000, "{name}: {} ms", info.duration_ms);
        }
    }
    let total: u64 = clips.iter().map(|c| c.file_bytes).sum();
    assert!(total < 30_000_000, "the corpus is {total} bytes");
}

/// Streams one recorded clip; returns how many frames after the first changed.
fn changed_frames(name: &str) -> u32 {
    let path = corpus::corpus_dir().join(format!("{name}.png"));
    let mut reader = ClipReader::open(&path).unwrap();
    let (w, h) = (reader.width(), reader.height());
    let mut changed = 0;
    let mut previous_ms = None;
    while let Some(frame) = reader.next_frame().unwrap() {
        assert_eq!((frame.bgra.width, frame.bgra.height), (w, h));
        if let Some(previous) = previous_ms {
            let gap = frame.at_ms - previous;
            assert!(gap < 500, "{name}: {gap} ms between frames");
            if frame.changed {
                changed += 1;
            }
        }
        previous_ms = Some(frame.at_ms);
        if let Some(d) = frame.damage {
            assert!(d.x + d.width <= w && d.y + d.height <= h, "{name}: {d:?}");
        }
    }
    changed
}

#[test]
fn idle_clips_never_change() {
    for (w, h) in SIZES {
        assert_eq!(changed_frames(&format!("idle-{w}x{h}")), 0);
    }
}

#[test]
fn active_clips_change() {
    for scenario in ["scroll", "typing", "drag", "video"] {
        for (w, h) in SIZES {
            let name = format!("{scenario}-{w}x{h}");
            let changed = changed_frames(&name);
            assert!(changed >= 10, "{name}: only {changed} frames changed");
        }
    }
}
