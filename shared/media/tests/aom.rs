//! The libaom realtime backend: one packet per picture (no hold-back), decodable by dav1d at
//! screen quality, damaged-block skipping, key frames on request, and bitrate changes in flight.

#![cfg(feature = "aom")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_media::encode::{aom_encoder, Backend};
use sightline_media::pattern::screen_like_bgra;
use sightline_media::{
    bgra_to_yuv420, psnr, Av1Decoder, EncoderSettings, VideoEncoder, Yuv420Frame,
};

const W: u32 = 640;
const H: u32 = 360;

fn encoder(kbps: u32) -> Box<dyn VideoEncoder> {
    aom_encoder(EncoderSettings {
        threads: 2,
        bitrate_kbps: Some(kbps),
        ..EncoderSettings::new(W, H)
    })
    .unwrap()
}

fn picture(seed: u32) -> Yuv420Frame {
    bgra_to_yuv420(&screen_like_bgra(W, H, W as usize * 4, seed)).unwrap()
}

fn y_psnr(a: &Yuv420Frame, b: &Yuv420Frame) -> f64 {
    psnr(&a.y, &b.y, a.width, a.height, a.y_stride, b.y_stride)
}

/// Paints a small "typed character" into a copy of `pic`.
fn with_glyph(pic: &Yuv420Frame, x: usize, y: usize) -> Yuv420Frame {
    let mut out = pic.clone();
    for dy in 0..12 {
        for dx in 0..7 {
            if (dx + dy) % 3 != 0 {
                out.y[(y + dy) * out.y_stride + x + dx] = 16;
            }
        }
    }
    out
}

#[test]
fn every_picture_comes_out_at_once_and_decodes_sharp() {
    let mut enc = encoder(4_000);
    let mut dec = Av1Decoder::new(2).unwrap();
    let base = picture(1);
    let mut pic = base.clone();
    for i in 0..12u64 {
        if i > 0 {
            pic = with_glyph(&pic, 20 + 8 * i as usize, 40);
        }
        let packets = enc.encode(&pic, 1_000 + i, i == 0).unwrap();
        assert_eq!(
            packets.len(),
            1,
            "picture {i} gave {} packets",
            packets.len()
        );
        assert_eq!(packets[0].capture_us, 1_000 + i);
        assert_eq!(packets[0].keyframe, i == 0);
        assert_eq!(enc.pending(), 0);
        let decoded = dec
            .decode(&packets[0].data)
            .unwrap()
            .expect("a picture per packet");
        assert_eq!((decoded.width, decoded.height), (W, H));
        let q = y_psnr(&pic, &decoded);
        assert!(q > 30.0, "picture {i}: {q:.1} dB");
    }
}

#[test]
fn a_small_change_costs_few_bytes_and_an_unchanged_picture_almost_none() {
    let mut enc = encoder(4_000);
    let base = picture(2);
    let key = enc.encode(&base, 1, true).unwrap();
    // Let the rate control settle on the still picture.
    let mut pic = base.clone();
    for t in 2..6 {
        enc.encode(&pic, t, false).unwrap();
    }
    pic = with_glyph(&pic, 300, 200);
    let typed = enc.encode(&pic, 10, false).unwrap();
    let same = enc.encode(&pic, 11, false).unwrap();
    let key_bytes = key[0].data.len();
    let typed_bytes = typed[0].data.len();
    let same_bytes = same.iter().map(|p| p.data.len()).sum::<usize>();
    assert!(
        typed_bytes * 20 < key_bytes,
        "glyph {typed_bytes} B vs key frame {key_bytes} B"
    );
    assert!(same_bytes < 200, "unchanged picture {same_bytes} B");
}

#[test]
fn keyframes_on_request_and_a_decoder_can_join_there() {
    let mut enc = encoder(2_000);
    let mut pic = picture(3);
    enc.encode(&pic, 1, true).unwrap();
    for t in 2..5 {
        pic = with_glyph(&pic, 10 * t as usize, 100);
        let p = enc.encode(&pic, t, false).unwrap();
        assert!(!p[0].keyframe);
    }
    let key = enc.encode(&pic, 9, true).unwrap();
    assert!(key[0].keyframe);
    let mut late = Av1Decoder::new(1).unwrap();
    let decoded = late.decode(&key[0].data).unwrap().unwrap();
    assert!(y_psnr(&pic, &decoded) > 30.0);
}

#[test]
fn bitrate_changes_while_running() {
    let mut enc = encoder(2_000);
    assert_eq!(enc.bitrate_kbps(), Some(2_000));
    let pic = picture(4);
    enc.encode(&pic, 1, true).unwrap();
    assert!(enc.set_bitrate(300));
    assert_eq!(enc.bitrate_kbps(), Some(300));
    let p = enc.encode(&picture(5), 2, false).unwrap();
    assert!(!p[0].keyframe, "a rate change must not force a key frame");
}

#[test]
fn wrong_sizes_and_settings_are_errors() {
    let mut enc = encoder(1_000);
    let small = bgra_to_yuv420(&screen_like_bgra(320, 180, 320 * 4, 1)).unwrap();
    assert!(enc.encode(&small, 1, false).is_err());
    let mut broken = picture(1);
    broken.y.truncate(100);
    assert!(enc.encode(&broken, 1, false).is_err());
    for bad in [
        EncoderSettings {
            width: 8,
            ..EncoderSettings::new(W, H)
        },
        EncoderSettings {
            fps: 0,
            ..EncoderSettings::new(W, H)
        },
        EncoderSettings {
            bitrate_kbps: Some(0),
            ..EncoderSettings::new(W, H)
        },
    ] {
        assert!(aom_encoder(bad).is_err());
    }
}

#[test]
fn the_fastest_backend_is_the_default_and_names_round_trip() {
    assert_eq!(Backend::fastest(), Backend::Aom);
    for b in Backend::ALL {
        assert_eq!(Backend::from_name(b.name()).unwrap(), *b);
    }
    assert!(Backend::from_name("x264")
        .unwrap_err()
        .contains("available: aom, rav1e"));
}

#[test]
fn odd_sizes_encode_and_decode() {
    for (w, h) in [(1001, 563), (17, 17), (1366, 768)] {
        let mut enc = aom_encoder(EncoderSettings {
            threads: 2,
            bitrate_kbps: Some(2_000),
            ..EncoderSettings::new(w, h)
        })
        .unwrap();
        let mut dec = Av1Decoder::new(1).unwrap();
        let a = bgra_to_yuv420(&screen_like_bgra(w, h, w as usize * 4, 1)).unwrap();
        let mut b = a.clone();
        b.y[0] = b.y[0].wrapping_add(40);
        for (t, pic) in [(1, &a), (2, &b), (3, &b)] {
            let p = enc.encode(pic, t, t == 1).unwrap();
            let d = dec.decode(&p[0].data).unwrap().unwrap();
            assert_eq!((d.width, d.height), (w, h));
        }
    }
}
