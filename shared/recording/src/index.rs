//! The trailer index (the Index record): where the keyframes and picture format changes are,
//! the operator's input, and totals, so that opening a recording needs no scan.
//!
//! ```text
//! flags u8 (bit 0: the input events are listed)
//! duration_us u64 | records u64 | video_packets u64 | video_bytes u64
//! n u32, n × keyframe { at_us u64 | offset u64 | seq u64 }
//! n u32, n × config   { at_us u64 | offset u64 | width u32 | height u32 }
//! n u32, n × input    { at_us u64 | len u32 | InputEvent JSON }
//! ```
//! All integers little-endian; offsets are plaintext offsets of the records.

use sightline_core::messages::InputEvent;

use crate::error::RecordingError;
use crate::format::{Bytes, MAX_RECORD_LEN};

/// Where a keyframe is: decoding can start at this record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyframeEntry {
    /// Microseconds since the recording started.
    pub at_us: u64,
    /// Plaintext offset of the keyframe's VideoPacket record (for `Recording::items_from`).
    pub offset: u64,
    /// The packet's sequence number.
    pub seq: u64,
}

/// Where the picture format changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Microseconds since the recording started.
    pub at_us: u64,
    /// Plaintext offset of the VideoConfig record.
    pub offset: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// What the index holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Index {
    pub duration_us: u64,
    pub records: u64,
    pub video_packets: u64,
    pub video_bytes: u64,
    pub keyframes: Vec<KeyframeEntry>,
    pub configs: Vec<ConfigEntry>,
    /// `None`: too many to list within the record limit; a reader collects them by scanning.
    pub inputs: Option<Vec<(u64, InputEvent)>>,
}

const FLAG_INPUTS: u8 = 1;
const FIXED: usize = 1 + 4 * 8 + 3 * 4;

fn count(n: usize) -> Result<u32, RecordingError> {
    u32::try_from(n).map_err(|_| RecordingError::Encode {
        what: "the index",
        why: "too many entries".into(),
    })
}

impl Index {
    /// The Index record's payload. `inputs` are the input events already encoded as JSON; they
    /// are left out (flag bit 0 clear) when listing them would pass the record limit.
    pub fn encode(&self, inputs: &[(u64, Vec<u8>)]) -> Result<Vec<u8>, RecordingError> {
        let fixed = FIXED + self.keyframes.len() * 24 + self.configs.len() * 24;
        let input_bytes: usize = inputs.iter().map(|(_, j)| 12 + j.len()).sum();
        let list_inputs = fixed + input_bytes <= MAX_RECORD_LEN as usize;
        let mut p = Vec::with_capacity(fixed + if list_inputs { input_bytes } else { 0 });
        p.push(if list_inputs { FLAG_INPUTS } else { 0 });
        for v in [
            self.duration_us,
            self.records,
            self.video_packets,
            self.video_bytes,
        ] {
            p.extend_from_slice(&v.to_le_bytes());
        }
        p.extend_from_slice(&count(self.keyframes.len())?.to_le_bytes());
        for k in &self.keyframes {
            for v in [k.at_us, k.offset, k.seq] {
                p.extend_from_slice(&v.to_le_bytes());
            }
        }
        p.extend_from_slice(&count(self.configs.len())?.to_le_bytes());
        for c in &self.configs {
            p.extend_from_slice(&c.at_us.to_le_bytes());
            p.extend_from_slice(&c.offset.to_le_bytes());
            p.extend_from_slice(&c.width.to_le_bytes());
            p.extend_from_slice(&c.height.to_le_bytes());
        }
        let listed: &[(u64, Vec<u8>)] = if list_inputs { inputs } else { &[] };
        p.extend_from_slice(&count(listed.len())?.to_le_bytes());
        for (at, json) in listed {
            p.extend_from_slice(&at.to_le_bytes());
            p.extend_from_slice(&count(json.len())?.to_le_bytes());
            p.extend_from_slice(json);
        }
        Ok(p)
    }

    /// Parses an Index payload (the record at plaintext `offset`).
    pub fn decode(payload: &[u8], offset: u64) -> Result<Index, RecordingError> {
        let mut b = Bytes::new(payload, offset);
        let flags = b.u8()?;
        let (duration_us, records, video_packets, video_bytes) =
            (b.u64()?, b.u64()?, b.u64()?, b.u64()?);
        let n = entries(&mut b, 24)?;
        let mut keyframes = Vec::with_capacity(n);
        for _ in 0..n {
            keyframes.push(KeyframeEntry {
                at_us: b.u64()?,
                offset: b.u64()?,
                seq: b.u64()?,
            });
        }
        let n = entries(&mut b, 24)?;
        let mut configs = Vec::with_capacity(n);
        for _ in 0..n {
            configs.push(ConfigEntry {
                at_us: b.u64()?,
                offset: b.u64()?,
                width: b.u32()?,
                height: b.u32()?,
            });
        }
        let n = entries(&mut b, 12)?;
        let mut inputs = Vec::with_capacity(n);
        for _ in 0..n {
            let at = b.u64()?;
            let len = b.u32()? as usize;
            let json = b.take(len)?;
            let ev: InputEvent = serde_json::from_slice(json)
                .map_err(|e| b.bad(format!("index: input event: {e}")))?;
            inputs.push((at, ev));
        }
        b.end()?;
        if keyframes.windows(2).any(|w| w[1].offset <= w[0].offset) {
            return Err(b.bad("index: keyframe offsets are not increasing"));
        }
        Ok(Index {
            duration_us,
            records,
            video_packets,
            video_bytes,
            keyframes,
            configs,
            inputs: (flags & FLAG_INPUTS != 0).then_some(inputs),
        })
    }
}

/// Reads an entry count and checks that that many entries of at least `min` bytes fit in what
/// is left, before anything is allocated for them.
fn entries(b: &mut Bytes<'_>, min: usize) -> Result<usize, RecordingError> {
    let n = b.u32()? as usize;
    if n.saturating_mul(min) > b.remaining() {
        return Err(b.bad(format!("index: {n} entries do not fit in the record")));
    }
    Ok(n)
}
