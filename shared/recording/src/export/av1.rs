//! The little AV1 bitstream parsing that export needs: walking a temporal unit's OBUs,
//! dropping temporal delimiters (Matroska stores temporal units without them), and the `av1C`
//! configuration record that Matroska's `CodecPrivate` holds, built from the sequence header
//! (AV1 specification §5.3, §5.5; AV1-ISOBMFF §2.3).

use crate::error::RecordingError;

const OBU_SEQUENCE_HEADER: u8 = 1;
const OBU_TEMPORAL_DELIMITER: u8 = 2;

fn bad(why: &str) -> RecordingError {
    RecordingError::Export(format!("malformed AV1 data: {why}"))
}

/// One OBU of a temporal unit.
#[derive(Debug, Clone, Copy)]
struct Obu<'a> {
    kind: u8,
    /// The header byte(s): type and flags, plus the extension byte if present.
    header: &'a [u8],
    /// The OBU as it appears in the data.
    whole: &'a [u8],
    payload: &'a [u8],
}

/// Reads a LEB128 value at `data[*pos..]` (at most 8 bytes, as AV1 allows).
fn leb128(data: &[u8], pos: &mut usize) -> Result<u64, RecordingError> {
    let mut value = 0u64;
    for i in 0..8 {
        let byte = *data.get(*pos).ok_or_else(|| bad("OBU size cut short"))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(bad("OBU size longer than 8 bytes"))
}

fn leb128_bytes(mut v: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The OBUs of a temporal unit (low-overhead format: every OBU but the last has a size).
fn obus(data: &[u8]) -> Result<Vec<Obu<'_>>, RecordingError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let start = pos;
        let h = data[pos];
        if h & 0x80 != 0 {
            return Err(bad("OBU forbidden bit set"));
        }
        let kind = (h >> 3) & 0x0f;
        let has_extension = h & 0x04 != 0;
        let has_size = h & 0x02 != 0;
        pos += 1 + usize::from(has_extension);
        if pos > data.len() {
            return Err(bad("OBU header cut short"));
        }
        let header = &data[start..pos];
        let size = if has_size {
            usize::try_from(leb128(data, &mut pos)?).map_err(|_| bad("OBU size"))?
        } else {
            data.len() - pos
        };
        let end = pos.checked_add(size).filter(|e| *e <= data.len());
        let end = end.ok_or_else(|| bad("OBU longer than its temporal unit"))?;
        out.push(Obu {
            kind,
            header,
            whole: &data[start..end],
            payload: &data[pos..end],
        });
        pos = end;
    }
    Ok(out)
}

/// `data` without its temporal delimiter OBUs.
pub(crate) fn strip_temporal_delimiters(data: &[u8]) -> Result<Vec<u8>, RecordingError> {
    let mut out = Vec::with_capacity(data.len());
    for obu in obus(data)? {
        if obu.kind != OBU_TEMPORAL_DELIMITER {
            out.extend_from_slice(obu.whole);
        }
    }
    Ok(out)
}

/// MSB-first bit reader over an OBU payload.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn f(&mut self, n: u32) -> Result<u32, RecordingError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self
                .data
                .get(self.pos / 8)
                .ok_or_else(|| bad("sequence header cut short"))?;
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        Ok(v)
    }

    fn flag(&mut self) -> Result<bool, RecordingError> {
        Ok(self.f(1)? == 1)
    }

    fn uvlc(&mut self) -> Result<(), RecordingError> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros >= 32 {
                return Err(bad("uvlc too long"));
            }
        }
        self.f(zeros).map(|_| ())
    }
}

/// The `av1C` record for a stream whose first keyframe is `keyframe`: the fields the
/// sequence header sets, then the sequence header OBU itself (with a size field).
pub(crate) fn av1c(keyframe: &[u8]) -> Result<Vec<u8>, RecordingError> {
    let seq = obus(keyframe)?
        .into_iter()
        .find(|o| o.kind == OBU_SEQUENCE_HEADER)
        .ok_or_else(|| bad("the first keyframe has no sequence header"))?;
    let mut b = Bits {
        data: seq.payload,
        pos: 0,
    };
    let profile = b.f(3)?;
    let _still_picture = b.flag()?;
    let reduced = b.flag()?;
    let (level, tier) = if reduced {
        (b.f(5)?, 0)
    } else {
        operating_points(&mut b)?
    };
    let width_bits = b.f(4)? + 1;
    let height_bits = b.f(4)? + 1;
    b.f(width_bits)?;
    b.f(height_bits)?;
    if !reduced && b.flag()? {
        b.f(4 + 3)?; // delta_frame_id_length_minus_2, additional_frame_id_length_minus_1
    }
    b.f(3)?; // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    if !reduced {
        b.f(4)?; // interintra, masked compound, warped motion, dual filter
        let order_hint = b.flag()?;
        if order_hint {
            b.f(2)?; // enable_jnt_comp, enable_ref_frame_mvs
        }
        let force_screen_content = if b.flag()? { 2 } else { b.f(1)? };
        if force_screen_content > 0 && !b.flag()? {
            b.f(1)?; // seq_force_integer_mv
        }
        if order_hint {
            b.f(3)?;
        }
    }
    b.f(3)?; // enable_superres, enable_cdef, enable_restoration
    let c = color_config(&mut b, profile)?;
    let mut out = vec![
        0x81, // marker 1, version 1
        ((profile as u8) << 5) | (level as u8 & 0x1f),
        ((tier as u8) << 7)
            | (u8::from(c.high_bitdepth) << 6)
            | (u8::from(c.twelve_bit) << 5)
            | (u8::from(c.mono) << 4)
            | (c.sub_x << 3)
            | (c.sub_y << 2)
            | c.sample_position,
        0, // no initial_presentation_delay
    ];
    out.push(seq.header[0] | 0x02);
    out.extend_from_slice(&seq.header[1..]);
    leb128_bytes(seq.payload.len(), &mut out);
    out.extend_from_slice(seq.payload);
    Ok(out)
}

/// Operating points (§5.5.1): the first one's level and tier.
fn operating_points(b: &mut Bits<'_>) -> Result<(u32, u32), RecordingError> {
    let mut buffer_delay_bits = 0;
    let timing_info = b.flag()?;
    let mut decoder_model = false;
    if timing_info {
        b.f(32)?;
        b.f(32)?;
        if b.flag()? {
            b.uvlc()?;
        }
        decoder_model = b.flag()?;
        if decoder_model {
            buffer_delay_bits = b.f(5)? + 1;
            b.f(32)?;
            b.f(10)?; // buffer_removal_time_length_minus_1, frame_presentation_time_length_minus_1
        }
    }
    let initial_display_delay = b.flag()?;
    let count = b.f(5)? + 1;
    let mut first = None;
    for _ in 0..count {
        b.f(12)?;
        let level = b.f(5)?;
        let tier = if level > 7 { b.f(1)? } else { 0 };
        if decoder_model && b.flag()? {
            b.f(buffer_delay_bits)?;
            b.f(buffer_delay_bits)?;
            b.f(1)?;
        }
        if initial_display_delay && b.flag()? {
            b.f(4)?;
        }
        first.get_or_insert((level, tier));
    }
    first.ok_or_else(|| bad("no operating point"))
}

struct Color {
    high_bitdepth: bool,
    twelve_bit: bool,
    mono: bool,
    sub_x: u8,
    sub_y: u8,
    sample_position: u8,
}

/// color_config (§5.5.2).
fn color_config(b: &mut Bits<'_>, profile: u32) -> Result<Color, RecordingError> {
    let high_bitdepth = b.flag()?;
    let twelve_bit = profile == 2 && high_bitdepth && b.flag()?;
    let mono = profile != 1 && b.flag()?;
    let (mut primaries, mut transfer, mut matrix) = (2, 2, 2);
    if b.flag()? {
        (primaries, transfer, matrix) = (b.f(8)?, b.f(8)?, b.f(8)?);
    }
    let mut c = Color {
        high_bitdepth,
        twelve_bit,
        mono,
        sub_x: 1,
        sub_y: 1,
        sample_position: 0,
    };
    if mono {
        return Ok(c);
    }
    if primaries == 1 && transfer == 13 && matrix == 0 {
        (c.sub_x, c.sub_y) = (0, 0);
        return Ok(c);
    }
    b.f(1)?; // color_range
    match profile {
        0 => {}
        1 => (c.sub_x, c.sub_y) = (0, 0),
        _ if twelve_bit => {
            c.sub_x = b.f(1)? as u8;
            c.sub_y = if c.sub_x == 1 { b.f(1)? as u8 } else { 0 };
        }
        _ => (c.sub_x, c.sub_y) = (1, 0),
    }
    if c.sub_x == 1 && c.sub_y == 1 {
        c.sample_position = b.f(2)? as u8;
    }
    Ok(c)
}
