//! The `av1C` record and temporal delimiter stripping, on a sequence header written bit by bit
//! (field values chosen so that each one lands somewhere checkable).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::av1::{av1c, strip_temporal_delimiters};

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    fn put(&mut self, n: u32, v: u32) {
        for i in (0..n).rev() {
            if self.bits.is_multiple_of(8) {
                self.bytes.push(0);
            }
            let bit = ((v >> i) & 1) as u8;
            let last = self.bytes.len() - 1;
            self.bytes[last] |= bit << (7 - self.bits % 8);
            self.bits += 1;
        }
    }
}

/// A 640x360 8-bit 4:2:0 sequence header, level 8 (so the tier bit is present, set), chroma
/// sample position 1.
fn sequence_header() -> Vec<u8> {
    let mut b = BitWriter::default();
    for (n, v) in [
        (3, 0),     // seq_profile
        (1, 0),     // still_picture
        (1, 0),     // reduced_still_picture_header
        (1, 0),     // timing_info_present_flag
        (1, 0),     // initial_display_delay_present_flag
        (5, 0),     // operating_points_cnt_minus_1
        (12, 0),    // operating_point_idc[0]
        (5, 8),     // seq_level_idx[0]
        (1, 1),     // seq_tier[0]
        (4, 9),     // frame_width_bits_minus_1
        (4, 8),     // frame_height_bits_minus_1
        (10, 639),  // max_frame_width_minus_1
        (9, 359),   // max_frame_height_minus_1
        (1, 0),     // frame_id_numbers_present_flag
        (3, 0b011), // 128x128 superblock, filter intra, intra edge filter
        (4, 0),     // interintra, masked compound, warped motion, dual filter
        (1, 1),     // enable_order_hint
        (2, 0),     // jnt_comp, ref_frame_mvs
        (1, 1),     // seq_choose_screen_content_tools
        (1, 1),     // seq_choose_integer_mv
        (3, 6),     // order_hint_bits_minus_1
        (3, 0b011), // superres, cdef, restoration
        (1, 0),     // high_bitdepth
        (1, 0),     // mono_chrome
        (1, 0),     // color_description_present_flag
        (1, 0),     // color_range
        (2, 1),     // chroma_sample_position
        (1, 0),     // separate_uv_delta_q
        (1, 0),     // film_grain_params_present
    ] {
        b.put(n, v);
    }
    b.put(1, 1); // trailing bits
    b.bytes
}

#[test]
fn av1c_from_a_sequence_header() {
    let seq = sequence_header();
    let mut tu = vec![0x12, 0x00]; // temporal delimiter
    tu.push(0x0a); // sequence header, with size
    tu.push(seq.len() as u8);
    tu.extend_from_slice(&seq);
    tu.extend_from_slice(&[0x32, 0x03, 1, 2, 3]); // a frame OBU
    let c = av1c(&tu).unwrap();
    assert_eq!(c[..4], [0x81, 0x08, 0x8d, 0x00]);
    assert_eq!(c[4..6], [0x0a, seq.len() as u8]);
    assert_eq!(c[6..], seq[..]);

    let stripped = strip_temporal_delimiters(&tu).unwrap();
    assert_eq!(stripped[..], tu[2..]);

    // A sequence header without a size field (the last OBU) gets one in av1C.
    let mut last = vec![0x08];
    last.extend_from_slice(&seq);
    assert_eq!(av1c(&last).unwrap(), c);
}

#[test]
fn malformed_temporal_units_are_errors() {
    for bad in [
        &[0x80][..],             // forbidden bit
        &[0x0a, 0x05, 0x00][..], // OBU longer than the data
        &[0x0a, 0xff, 0xff][..], // size cut short
        &[0x32, 0x01, 0x00][..], // no sequence header
        &[0x0a, 0x01, 0x00][..], // sequence header cut short
    ] {
        assert!(av1c(bad).is_err(), "{bad:?}");
    }
    assert!(strip_temporal_delimiters(&[0x0e]).is_err());
}
