//! Session recordings (issue 17) on the corpus: (a) how much larger a recording is than the AV1
//! it holds, (b) seeking in an hour of 1080p (open, then the time to the first decoded picture
//! from a random point), (c) what recording costs the viewer (CPU of `Writer::push` and
//! `take_ciphertext` per second of stream, as a share of one core).
//!
//! The stream is the scroll-1920x1080 clip (full-screen text scrolling) encoded by the agent's
//! fastest encoder with its starting bitrate target, 4 Mbit/s, into one 10-second GOP, repeated
//! to an hour with seq, capture and record times rewritten. Two recordings of it are written:
//! the video with what the agent sends beside it (media key event, a checkpoint every 5 s: the
//! figure for (a)), and a busy one that adds a moving pointer (a Cursor record every picture)
//! and the operator's wheel (an Input record every third picture), on which (b) and (c) are
//! measured and whose size is reported too.

mod stream;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use serde::Serialize;
use sightline_media::Av1Decoder;
use sightline_recording::age::x25519::Identity;
use sightline_recording::{Item, Recording};

use crate::corpus;
use crate::pipeline::Stage;

/// What to measure.
#[derive(Debug, Clone)]
pub struct RecordingBenchOptions {
    /// The clip (default: scroll-1920x1080 from the corpus).
    pub clip: PathBuf,
    /// Length of the long recording, seconds.
    pub seconds: u64,
    /// Random seek targets.
    pub seeks: usize,
    /// The encoder's bitrate.
    pub bitrate_kbps: u32,
}

impl Default for RecordingBenchOptions {
    fn default() -> Self {
        Self {
            clip: corpus::corpus_dir().join("scroll-1920x1080.png"),
            seconds: 3600,
            seeks: 20,
            bitrate_kbps: 4000,
        }
    }
}

impl RecordingBenchOptions {
    /// Five minutes and five seeks: a smoke test of the harness.
    pub fn quick() -> Self {
        Self {
            seconds: 300,
            seeks: 5,
            ..Self::default()
        }
    }
}

/// The figures.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingReport {
    pub clip: String,
    pub encoder: String,
    pub width: u32,
    pub height: u32,
    pub bitrate_kbps: u32,
    /// Seconds of stream recorded.
    pub stream_seconds: u64,
    pub packets: u64,
    pub keyframes: usize,
    /// AV1 bytes recorded.
    pub video_bytes: u64,
    /// The bitrate the encoder reached on this clip, kbit/s.
    pub video_kbps: f64,
    /// The recording of the video and what the agent sends with it (ciphertext bytes).
    pub file_bytes: u64,
    /// (file − AV1) / AV1, percent.
    pub overhead_pct: f64,
    /// The busy recording (pointer every picture, wheel every third).
    pub busy_file_bytes: u64,
    /// (busy file − AV1) / AV1, percent.
    pub busy_overhead_pct: f64,
    /// `Recording::open` (footer and index; the file in the page cache).
    pub open: Stage,
    /// From a random point to the first decoded picture (the keyframe before it).
    pub seek_first_picture: Stage,
    /// From a random point to the picture at that point (decoding from the keyframe on).
    pub seek_exact_picture: Stage,
    /// CPU seconds in `push`/`take_ciphertext` (and `new`/`finish`), busy recording.
    pub record_cpu_seconds: f64,
    /// Those seconds per second of stream, percent of one core.
    pub record_cpu_pct: f64,
    /// Wall time to write the whole recording (encryption and the file writes).
    pub write_seconds: f64,
}

/// Runs the recording benchmark.
pub fn run(opts: &RecordingBenchOptions) -> Result<RecordingReport> {
    eprintln!("bench: recording: encoding a {}-picture GOP", stream::GOP);
    let gop = stream::encode_gop(&opts.clip, opts.bitrate_kbps)?;
    let dir = tempfile::tempdir()?;
    let auditor = Identity::generate();
    eprintln!("bench: recording: writing {} s twice", opts.seconds);
    let video_path = dir.path().join("video.slrec");
    let video = stream::write(&gop, opts.seconds, &auditor.to_public(), &video_path, false)?;
    std::fs::remove_file(&video_path)?;
    let path = dir.path().join("busy.slrec");
    let written = stream::write(&gop, opts.seconds, &auditor.to_public(), &path, true)?;
    let ids = [auditor];

    let mut opens = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let rec = Recording::open(&path, &ids)?;
        opens.push(t.elapsed());
        drop(rec);
    }
    let rec = Recording::open(&path, &ids)?;
    if !rec.complete || rec.video_packets != written.packets {
        return Err(anyhow!("the long recording does not read back whole"));
    }
    eprintln!("bench: recording: {} seeks", opts.seeks);
    let (first, exact) = seeks(&rec, opts.seeks)?;
    let stream_seconds = opts.seconds;
    let cpu = written.cpu.as_secs_f64();
    Ok(RecordingReport {
        clip: opts
            .clip
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        encoder: gop.encoder.clone(),
        width: gop.width,
        height: gop.height,
        bitrate_kbps: opts.bitrate_kbps,
        stream_seconds,
        packets: written.packets,
        keyframes: rec.keyframes.len(),
        video_bytes: video.video_bytes,
        video_kbps: video.video_bytes as f64 * 8.0 / 1000.0 / stream_seconds.max(1) as f64,
        file_bytes: video.file_bytes,
        overhead_pct: overhead(video.file_bytes, video.video_bytes),
        busy_file_bytes: written.file_bytes,
        busy_overhead_pct: overhead(written.file_bytes, written.video_bytes),
        open: Stage::of(&opens),
        seek_first_picture: Stage::of(&first),
        seek_exact_picture: Stage::of(&exact),
        record_cpu_seconds: cpu,
        record_cpu_pct: cpu * 100.0 / stream_seconds.max(1) as f64,
        write_seconds: written.wall.as_secs_f64(),
    })
}

/// How much larger `file` is than `video`, percent.
fn overhead(file: u64, video: u64) -> f64 {
    (file as f64 - video as f64) * 100.0 / video.max(1) as f64
}

/// Seeks to `n` pseudo-random points: the time to the first decoded picture and to the
/// picture at the point, per seek.
fn seeks(rec: &Recording, n: usize) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let mut dec = Av1Decoder::new(0).map_err(|e| anyhow!("dav1d: {e}"))?;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let (mut first, mut exact) = (Vec::new(), Vec::new());
    for _ in 0..n {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let target = (state >> 11) % rec.duration_us.max(1);
        dec.flush();
        let t = Instant::now();
        let kf = rec
            .keyframe_at_or_before(target)
            .ok_or_else(|| anyhow!("no keyframe"))?;
        let mut first_at = None;
        for item in rec.items_from(kf.offset)? {
            let (at, item) = item?;
            let Item::Packet { data, .. } = item else {
                continue;
            };
            if at > target && first_at.is_some() {
                break;
            }
            if dec
                .decode(&data)
                .map_err(|e| anyhow!("decode: {e}"))?
                .is_some()
            {
                first_at.get_or_insert_with(|| t.elapsed());
            }
        }
        first.push(first_at.ok_or_else(|| anyhow!("no picture after seeking"))?);
        exact.push(t.elapsed());
    }
    Ok((first, exact))
}

impl RecordingReport {
    /// Rows for the targets table: measure, value, target, met.
    pub fn rows(&self) -> Vec<(String, String, String, bool)> {
        let mb = |b: u64| b as f64 / 1e6;
        vec![
            (
                format!(
                    "recording size over the AV1 it holds ({}, {:.0} kbit/s)",
                    self.clip, self.video_kbps
                ),
                format!(
                    "{:.2} % ({:.1} MB file, {:.1} MB AV1; with a moving pointer and wheel input {:.2} %)",
                    self.overhead_pct,
                    mb(self.file_bytes),
                    mb(self.video_bytes),
                    self.busy_overhead_pct
                ),
                "≤ 2 %".into(),
                self.overhead_pct <= 2.0,
            ),
            (
                format!(
                    "seek in a {}-minute 1080p recording: first decoded picture",
                    self.stream_seconds / 60
                ),
                format!(
                    "p50 {:.1} ms, p95 {:.1} ms (open {:.1} ms; exact picture p50 {:.0} ms)",
                    self.seek_first_picture.p50_ms,
                    self.seek_first_picture.p95_ms,
                    self.open.p50_ms,
                    self.seek_exact_picture.p50_ms
                ),
                "≤ 300 ms".into(),
                self.seek_first_picture.p50_ms <= 300.0,
            ),
            (
                "recording cost in the viewer (push + encryption), 1080p scrolling, busy".into(),
                format!("{:.3} % of a core", self.record_cpu_pct),
                "≤ 5 % of a core".into(),
                self.record_cpu_pct <= 5.0,
            ),
        ]
    }
}
