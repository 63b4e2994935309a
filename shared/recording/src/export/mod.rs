//! Exporting a recording for people without Sightline: the video as WebM (Matroska, codec
//! `V_AV1`) or IVF (`AV01`), packets copied as recorded (no re-encoding), and the operator's
//! input as JSON lines.
//!
//! - Video starts at the first keyframe (packets before it cannot be decoded and are counted
//!   in [`ExportSummary::skipped`]).
//! - Timestamps come from the records' `at_us` (when the viewer received each packet), counted
//!   from the first keyframe and made strictly increasing (1 ms apart at least in WebM, whose
//!   timecodes are milliseconds; 1 µs in IVF).
//! - The picture size in the file's header is the first one. A size change mid-recording is
//!   kept in the stream (its keyframe carries a new sequence header, which decoders follow)
//!   and listed in [`ExportSummary::size_changes`]; players may scale those pictures to the
//!   first size.

mod av1;
#[cfg(test)]
mod av1_tests;
mod ivf;
mod webm;

pub use self::ivf::ivf;
pub use self::webm::webm;

use std::io::Write;
use std::path::Path;

use crate::error::RecordingError;
use crate::item::Item;
use crate::reader::Recording;

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Video frames written.
    pub frames: u64,
    /// Packets before the first keyframe, left out.
    pub skipped: u64,
    /// The picture size in the file's header.
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// Later size changes: (microseconds since the recording started, width, height).
    pub size_changes: Vec<(u64, u32, u32)>,
    /// Timestamp of the last frame, microseconds from the first.
    pub duration_us: u64,
}

/// One frame for a muxer.
pub(crate) struct Frame<'a> {
    /// Microseconds from the first keyframe, strictly increasing.
    pub ts_us: u64,
    pub keyframe: bool,
    pub data: &'a [u8],
}

/// The first keyframe's data and the picture size then.
pub(crate) fn first_keyframe(rec: &Recording) -> Result<(Vec<u8>, u32, u32), RecordingError> {
    let (w, h) = rec
        .size
        .ok_or_else(|| RecordingError::Export("the recording holds no video".into()))?;
    let kf = rec
        .keyframes
        .first()
        .ok_or_else(|| RecordingError::Export("the recording holds no keyframe".into()))?;
    match rec.items_from(kf.offset)?.next() {
        Some(Ok((_, Item::Packet { data, .. }))) => Ok((data, w, h)),
        Some(Err(e)) => Err(e),
        _ => Err(RecordingError::Export(
            "the index's first keyframe is not a video packet".into(),
        )),
    }
}

/// Feeds every frame from the first keyframe on to `put`, spacing timestamps at least
/// `min_step_us` apart; the summary.
pub(crate) fn each_frame(
    rec: &Recording,
    min_step_us: u64,
    mut put: impl FnMut(Frame<'_>) -> Result<(), RecordingError>,
) -> Result<ExportSummary, RecordingError> {
    let mut s = ExportSummary::default();
    let mut size: Option<(u32, u32)> = None;
    let mut first_at: Option<u64> = None;
    let mut last_ts: Option<u64> = None;
    for item in rec.items()? {
        match item? {
            (at, Item::Config { width, height }) => {
                match size {
                    None => (s.width, s.height) = (width, height),
                    Some(prev) if prev != (width, height) => {
                        s.size_changes.push((at, width, height))
                    }
                    Some(_) => {}
                }
                size = Some((width, height));
            }
            (at, Item::Packet { keyframe, data, .. }) => {
                let start = match first_at {
                    Some(t) => t,
                    None if keyframe => *first_at.insert(at),
                    None => {
                        s.skipped += 1;
                        continue;
                    }
                };
                let mut ts = at.saturating_sub(start);
                if let Some(prev) = last_ts {
                    ts = ts.max(prev + min_step_us);
                }
                last_ts = Some(ts);
                put(Frame {
                    ts_us: ts,
                    keyframe,
                    data: &data,
                })?;
                s.frames += 1;
                s.duration_us = ts;
            }
            _ => {}
        }
    }
    if s.frames == 0 {
        return Err(RecordingError::Export(
            "the recording holds no decodable video".into(),
        ));
    }
    Ok(s)
}

/// Writes the operator's input as JSON lines: `{"at_us":…,"time":"12.345 s","event":{…}}`,
/// one per event, in order; how many.
pub fn input_log(rec: &Recording, out: &Path) -> Result<u64, RecordingError> {
    let file = std::fs::File::create(out).map_err(|e| RecordingError::file(out, e))?;
    let mut w = std::io::BufWriter::new(file);
    for (at, ev) in &rec.inputs {
        let line = serde_json::json!({
            "at_us": at,
            "time": crate::verify::secs(*at),
            "event": ev,
        });
        writeln!(w, "{line}").map_err(|e| RecordingError::file(out, e))?;
    }
    w.flush().map_err(|e| RecordingError::file(out, e))?;
    Ok(rec.inputs.len() as u64)
}
