//! Rough encode speed of the rav1e backend on the synthetic screen, for reports; not a
//! benchmark with statistics. Run optimised:
//! `cargo run --release -p sightline-media --example encode_speed [threads]`.

use std::time::Instant;

use sightline_media::pattern::screen_like_bgra;
use sightline_media::{bgra_to_yuv420, rav1e_encoder, EncoderSettings};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(0);
    for (w, h) in [(640u32, 360u32), (1280, 720), (1920, 1080)] {
        let pics = [1, 2].map(|seed| bgra_to_yuv420(&screen_like_bgra(w, h, 0, seed)));
        let [a, b] = pics;
        let (a, b) = (a?, b?);
        for (label, changing) in [("text changing every frame", true), ("still screen", false)] {
            let mut enc = rav1e_encoder(EncoderSettings {
                threads,
                ..EncoderSettings::new(w, h)
            })?;
            let n = 20u64;
            let mut bytes = 0;
            let mut times = Vec::new();
            for i in 0..n {
                let pic = if changing && i % 2 == 1 { &b } else { &a };
                let start = Instant::now();
                let out = enc.encode(pic, i, false)?;
                times.push(start.elapsed().as_secs_f64() * 1000.0);
                bytes += out.iter().map(|p| p.data.len()).sum::<usize>();
            }
            // The first pictures include the key frame and encoder start-up; report the rest.
            let mut steady = times.split_off(5);
            steady.sort_by(f64::total_cmp);
            let median = steady.get(steady.len() / 2).copied().unwrap_or(0.0);
            println!(
                "{w}x{h} {label}: median {median:.1} ms/frame, first 5 {:.0} ms total, {} bytes in {n} frames",
                times.iter().sum::<f64>(),
                bytes
            );
        }
    }
    Ok(())
}
