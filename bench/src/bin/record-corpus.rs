//! `record-corpus`: captures the display in `$DISPLAY` with the agent's own capture (X11 with
//! MIT-SHM) at a fixed rate for a few seconds and writes a corpus clip
//! (`sightline_bench::corpus`). `assets/corpus/record.sh` drives it.
//!
//! Capturing and encoding are separate phases: the pictures stay in memory while capturing
//! (unchanged captures share one buffer) so that PNG compression cannot delay the captures or
//! take the CPU from the applications being recorded.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use sightline_agent::capture;
use sightline_bench::corpus::ClipWriter;
use sightline_media::BgraFrame;

/// Record the screen of $DISPLAY into a lossless corpus clip (animated PNG).
#[derive(Debug, Parser)]
#[command(name = "record-corpus")]
struct Args {
    /// The clip to write, e.g. `assets/corpus/scroll-1280x720.png`.
    #[arg(long)]
    out: PathBuf,
    /// How long to record, in seconds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Captures per second.
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    /// PNG compression effort.
    #[arg(long, value_enum, default_value_t = Effort::High)]
    compression: Effort,
}

/// How hard the PNG encoder works.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Effort {
    /// Quick, larger files.
    Fast,
    /// The encoder's default.
    Balanced,
    /// Smallest files, slowest.
    High,
}

impl From<Effort> for png::Compression {
    fn from(effort: Effort) -> Self {
        match effort {
            Effort::Fast => png::Compression::Fast,
            Effort::Balanced => png::Compression::Balanced,
            Effort::High => png::Compression::High,
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let within = |value: f64, max: f64| value > 0.0 && value <= max;
    if !within(args.fps, 1000.0) || !within(args.seconds, 600.0) {
        bail!("--fps must be in (0, 1000] and --seconds in (0, 600]");
    }
    let count = (args.seconds * args.fps).round().max(1.0) as u32;
    let period = Duration::from_secs_f64(1.0 / args.fps);

    let mut capturer = capture::open(None).context("opening the screen (is DISPLAY set?)")?;
    let monitor = capturer.monitor().clone();
    let shots = record(capturer.as_mut(), count, period)?;

    let mut writer = ClipWriter::create(
        &args.out,
        monitor.width,
        monitor.height,
        args.compression.into(),
    )?;
    let mut changed = 0u32;
    for (at_ms, frame) in &shots {
        if writer.push(*at_ms, frame)?.is_some() {
            changed += 1;
        }
    }
    let info = writer.finish()?;
    let late = late_frames(&shots, period);
    println!(
        "{}: {}x{}, {} frames ({} changed after the first), {} ms, {} bytes, {} captures late by more than half a period",
        info.path.display(),
        info.width,
        info.height,
        info.frames,
        changed.saturating_sub(1),
        info.duration_ms,
        info.file_bytes,
        late,
    );
    Ok(())
}

/// Captures `count` pictures `period` apart; each with its time in ms since the first.
fn record(
    capturer: &mut dyn capture::Capturer,
    count: u32,
    period: Duration,
) -> Result<Vec<(u32, Arc<BgraFrame>)>> {
    let mut shots = Vec::with_capacity(count as usize);
    let start = Instant::now();
    for i in 0..count {
        let due = start + period * i;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let at_ms = u32::try_from(start.elapsed().as_millis()).context("recording too long")?;
        let captured = capturer.capture().with_context(|| format!("capture {i}"))?;
        shots.push((at_ms, captured.frame));
    }
    Ok(shots)
}

/// How many captures came more than half a period after their slot.
fn late_frames(shots: &[(u32, Arc<BgraFrame>)], period: Duration) -> usize {
    let period_ms = period.as_secs_f64() * 1000.0;
    shots
        .iter()
        .enumerate()
        .filter(|(i, (at, _))| f64::from(*at) - *i as f64 * period_ms > period_ms / 2.0)
        .count()
}
