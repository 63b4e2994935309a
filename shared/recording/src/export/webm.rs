//! WebM through libwebm's muxer (the `webm` crate): one AV1 video track (`V_AV1`) whose
//! `CodecPrivate` is the `av1C` record built from the first keyframe's sequence header, and
//! each temporal unit, without its temporal delimiter, as a SimpleBlock.

use std::path::Path;

use ::webm::mux::{SegmentBuilder, VideoCodecId, Writer};

use super::{av1, each_frame, first_keyframe, ExportSummary};
use crate::error::RecordingError;

fn mux_err(what: &str) -> impl Fn(::webm::mux::Error) -> RecordingError + '_ {
    move |e| RecordingError::Export(format!("WebM muxer: {what}: {e:?}"))
}

/// Writes the recording's video to `out` as WebM.
pub fn webm(rec: &crate::Recording, out: &Path) -> Result<ExportSummary, RecordingError> {
    let (keyframe, width, height) = first_keyframe(rec)?;
    let codec_private = av1::av1c(&keyframe)?;
    let file = std::fs::File::create(out).map_err(|e| RecordingError::file(out, e))?;
    let writer = Writer::new(std::io::BufWriter::new(file));
    let builder = SegmentBuilder::new(writer)
        .map_err(mux_err("segment"))?
        .set_writing_app(concat!("sightline-recording ", env!("CARGO_PKG_VERSION")))
        .map_err(mux_err("writing app"))?;
    let (builder, track) = builder
        .add_video_track(width, height, VideoCodecId::AV1, None)
        .map_err(mux_err("video track"))?;
    let mut segment = builder
        .set_codec_private(track, &codec_private)
        .map_err(mux_err("codec private"))?
        .build();
    let summary = each_frame(rec, 1000, |f| {
        let data = av1::strip_temporal_delimiters(f.data)?;
        segment
            .add_frame(track, &data, f.ts_us * 1000, f.keyframe)
            .map_err(mux_err("frame"))
    })?;
    let writer = segment
        .finalize(None)
        .map_err(|_| RecordingError::Export("WebM muxer: finalizing the segment failed".into()))?;
    let mut inner = writer.into_inner();
    std::io::Write::flush(&mut inner).map_err(|e| RecordingError::file(out, e))?;
    Ok(summary)
}
