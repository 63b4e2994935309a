//! Reading a recording from end to end without its index (the viewer stopped before writing
//! it), building the index the records would have had.

use std::io::Read;

use sightline_core::messages::InputEvent;

use crate::error::RecordingError;
use crate::format::{kind, Bytes};
use crate::index::{ConfigEntry, Index, KeyframeEntry};
use crate::item::{self, Item};
use crate::records::{Raw, RecordReader};

/// What a scan found.
pub(crate) struct Scan {
    pub index: Index,
    /// Where the last good record ends.
    pub end: u64,
    /// The error that stopped it, if any.
    pub stopped: Option<RecordingError>,
}

/// Reads records until the end, the Index, or an error, and builds the index they would have.
pub(crate) fn scan<R: Read>(mut rr: RecordReader<R>) -> Scan {
    let mut index = Index {
        // The Meta record, read before the scan starts.
        records: 1,
        ..Index::default()
    };
    let mut inputs = Vec::new();
    let mut end = rr.pos();
    let stopped = loop {
        let raw = match rr.next() {
            Ok(Some(raw)) if raw.header.kind != kind::INDEX => raw,
            Ok(_) => break None,
            Err(e) => break Some(e),
        };
        let at = raw.header.at_us;
        if let Err(e) = index_record(&mut index, &mut inputs, raw) {
            break Some(e);
        }
        index.records += 1;
        index.duration_us = index.duration_us.max(at);
        end = rr.pos();
    };
    index.inputs = Some(inputs);
    Scan {
        index,
        end,
        stopped,
    }
}

/// Adds what the index keeps of one record.
fn index_record(
    index: &mut Index,
    inputs: &mut Vec<(u64, InputEvent)>,
    raw: Raw,
) -> Result<(), RecordingError> {
    let (at_us, offset) = (raw.header.at_us, raw.offset);
    let mut b = Bytes::new(&raw.payload, offset);
    match raw.header.kind {
        kind::VIDEO_CONFIG => {
            let (width, height) = (b.u32()?, b.u32()?);
            index.configs.push(ConfigEntry {
                at_us,
                offset,
                width,
                height,
            });
        }
        kind::VIDEO_PACKET => {
            let (seq, _capture_us, keyframe) = (b.u64()?, b.u64()?, b.flag()?);
            index.video_packets += 1;
            index.video_bytes += b.remaining() as u64;
            if keyframe {
                index.keyframes.push(KeyframeEntry { at_us, offset, seq });
            }
        }
        kind::INPUT => {
            if let Some(Item::Input(ev)) = item::decode(kind::INPUT, raw.payload, offset)? {
                inputs.push((at_us, ev));
            }
        }
        _ => {}
    }
    Ok(())
}
