//! Micro-benchmarks of the media hot path, on synthetic screen-like pictures
//! ([`sightline_media::pattern`]: panels and rows of thin glyphs, the content a remote-support
//! codec must keep sharp):
//!
//! - BGRA → YUV 4:2:0 conversion at 1280x720 and 1920x1080;
//! - AV1 encode of one changed picture, per backend, in steady state: the encoder is primed
//!   first (rav1e holds about four pictures back), then every call submits a picture that
//!   differs from the one before and takes whatever packets come out. `small` changes two text
//!   rows (typing), `full` all the text (a page of new text);
//! - dav1d decode of a key frame and of a 16-picture run (key frame + 15 inter frames).
//!
//! `cargo bench -p sightline-media --bench pipeline -- --warm-up-time 1 --measurement-time 2`
#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture stops the run

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sightline_media::encode::{EncodeError, EncoderSettings, VideoEncoder};
use sightline_media::pattern::screen_like_bgra;
use sightline_media::{bgra_to_yuv420, bgra_to_yuv420_into, Av1Decoder, BgraFrame, Yuv420Frame};
use std::hint::black_box;
use std::time::Duration;

/// Builds an encoder of one backend.
type Constructor = fn(EncoderSettings) -> Result<Box<dyn VideoEncoder>, EncodeError>;

/// The encoder backends to measure; one line per backend.
const BACKENDS: &[(&str, Constructor)] = &[
    ("rav1e", sightline_media::encode::rav1e_encoder),
    #[cfg(feature = "aom")]
    ("aom", sightline_media::encode::aom_encoder),
];

/// Distinct pictures cycled through, so that every encoded picture differs from the last.
const VARIANTS: u32 = 8;
/// Pictures submitted before measuring.
const PRIME: usize = 8;
/// Text row pitch of the pattern (glyph cell 12 px + 2 px gap).
const ROW_PX: usize = 14;

fn sizes() -> [(u32, u32); 2] {
    [(1280, 720), (1920, 1080)]
}

/// `base` with rows `y0..y0 + rows` taken from `other`.
fn with_band(base: &BgraFrame, other: &BgraFrame, y0: usize, rows: usize) -> BgraFrame {
    let mut out = base.clone();
    let start = (y0 * base.stride).min(out.data.len());
    let end = ((y0 + rows) * base.stride).min(out.data.len());
    out.data[start..end].copy_from_slice(&other.data[start..end]);
    out
}

/// Pictures in YUV, each differing from the previous one (cyclically) by `kind`.
fn changing_pictures(w: u32, h: u32, kind: &str) -> Vec<Yuv420Frame> {
    let stride = w as usize * 4;
    let base = screen_like_bgra(w, h, stride, 1);
    (0..VARIANTS)
        .map(|k| {
            let other = screen_like_bgra(w, h, stride, 100 + k);
            let picture = match kind {
                // Two text rows, a different pair each time, in the text area.
                "small" => {
                    let y0 = h as usize / 12 + 4 + (k as usize * 3) * ROW_PX;
                    with_band(&base, &other, y0, 2 * ROW_PX)
                }
                _ => other,
            };
            bgra_to_yuv420(&picture).unwrap()
        })
        .collect()
}

fn convert(c: &mut Criterion) {
    let mut group = c.benchmark_group("bgra_to_yuv420");
    for (w, h) in sizes() {
        let src = screen_like_bgra(w, h, w as usize * 4, 1);
        let mut dst = Yuv420Frame::new_black(w, h);
        group.throughput(Throughput::Elements(u64::from(w) * u64::from(h)));
        group.bench_function(format!("{w}x{h}"), |b| {
            b.iter(|| bgra_to_yuv420_into(black_box(&src), &mut dst).unwrap())
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_changed_picture");
    group.sample_size(10);
    let cases = [
        (1280, 720, "small"),
        (1280, 720, "full"),
        (1920, 1080, "small"),
    ];
    for &(name, make) in BACKENDS {
        for (w, h, kind) in cases {
            let pictures = changing_pictures(w, h, kind);
            let mut encoder = make(EncoderSettings::new(w, h)).unwrap();
            let mut n = 0usize;
            let mut next = |enc: &mut Box<dyn VideoEncoder>| {
                let out = enc
                    .encode(&pictures[n % pictures.len()], n as u64, false)
                    .unwrap();
                n += 1;
                out
            };
            for _ in 0..PRIME {
                next(&mut encoder);
            }
            group.bench_function(format!("{name}/{w}x{h}/{kind}"), |b| {
                b.iter(|| black_box(next(&mut encoder)))
            });
        }
    }
    group.finish();
}

/// A key frame and the 15 inter frames after it, from rav1e at `w` x `h`.
fn packets(w: u32, h: u32) -> Vec<Vec<u8>> {
    let pictures = changing_pictures(w, h, "small");
    let mut encoder = sightline_media::rav1e_encoder(EncoderSettings::new(w, h)).unwrap();
    let mut out = Vec::new();
    let mut n = 0u64;
    // Packets come out about four pictures late: keep submitting until 16 are out.
    while out.len() < 16 {
        let picture = &pictures[n as usize % pictures.len()];
        out.extend(encoder.encode(picture, n, false).unwrap());
        n += 1;
    }
    assert!(out[0].keyframe, "the first packet is a key frame");
    out.into_iter().take(16).map(|p| p.data).collect()
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.sample_size(20);
    let (w, h) = (1280, 720);
    let run = packets(w, h);
    let mut decoder = Av1Decoder::new(0).unwrap();
    group.bench_function(format!("{w}x{h}/keyframe"), |b| {
        b.iter(|| black_box(decoder.decode(black_box(&run[0])).unwrap()))
    });
    group.throughput(Throughput::Elements(run.len() as u64));
    group.bench_function(format!("{w}x{h}/run_of_16"), |b| {
        b.iter(|| {
            for p in &run {
                black_box(decoder.decode(p).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = convert, encode, decode
}
criterion_main!(benches);
