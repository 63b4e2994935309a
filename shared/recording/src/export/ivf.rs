//! IVF, the simplest AV1 container: a 32-byte header (`DKIF`, fourcc `AV01`, size, time base)
//! and each temporal unit behind a 12-byte frame header (size u32 LE, timestamp u64 LE).
//! Time base 1/1,000,000: timestamps are microseconds.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use super::{each_frame, ExportSummary};
use crate::error::RecordingError;

/// Writes the recording's video to `out` as IVF.
pub fn ivf(rec: &crate::Recording, out: &Path) -> Result<ExportSummary, RecordingError> {
    let io = |e| RecordingError::file(out, e);
    let file = std::fs::File::create(out).map_err(io)?;
    let mut w = std::io::BufWriter::new(file);
    let (width, height) = rec
        .size
        .ok_or_else(|| RecordingError::Export("the recording holds no video".into()))?;
    let side = |v: u32| {
        u16::try_from(v)
            .map_err(|_| RecordingError::Export(format!("{v} pixels is too large for IVF")))
    };
    let (w16, h16) = (side(width)?, side(height)?);
    w.write_all(&header(w16, h16, 0)).map_err(io)?;
    let summary = each_frame(rec, 1, |f| {
        let len = u32::try_from(f.data.len())
            .map_err(|_| RecordingError::Export("frame too large for IVF".into()))?;
        w.write_all(&len.to_le_bytes()).map_err(io)?;
        w.write_all(&f.ts_us.to_le_bytes()).map_err(io)?;
        w.write_all(f.data).map_err(io)
    })?;
    // The frame count, now known.
    let frames = u32::try_from(summary.frames).unwrap_or(u32::MAX);
    w.seek(SeekFrom::Start(0)).map_err(io)?;
    w.write_all(&header(w16, h16, frames)).map_err(io)?;
    w.flush().map_err(io)?;
    Ok(summary)
}

fn header(width: u16, height: u16, frames: u32) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..4].copy_from_slice(b"DKIF");
    h[4..6].copy_from_slice(&0u16.to_le_bytes()); // version
    h[6..8].copy_from_slice(&32u16.to_le_bytes()); // header size
    h[8..12].copy_from_slice(b"AV01");
    h[12..14].copy_from_slice(&width.to_le_bytes());
    h[14..16].copy_from_slice(&height.to_le_bytes());
    h[16..20].copy_from_slice(&1_000_000u32.to_le_bytes()); // time base denominator
    h[20..24].copy_from_slice(&1u32.to_le_bytes()); // numerator
    h[24..28].copy_from_slice(&frames.to_le_bytes());
    h
}
