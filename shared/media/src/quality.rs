//! Picture quality measures for tests and benchmarks: PSNR over one 8-bit plane, and the luma of
//! an RGBA screenshot computed exactly as the encoder path computes it, so a screenshot can be
//! compared with a decoded frame's Y plane.

use yuv::{BufferStoreMut, YuvGrayImageMut};

use crate::convert::{check_rgba, MATRIX, RANGE};
use crate::frame::check_plane;

/// PSNR reported for identical planes, instead of infinity, so results can be printed, averaged
/// and compared without special cases.
pub const PSNR_IDENTICAL: f64 = 99.0;

/// Peak signal-to-noise ratio in dB between two `width` x `height` 8-bit planes whose rows are
/// `stride_a` and `stride_b` bytes apart.
///
/// Identical planes give [`PSNR_IDENTICAL`] (99 dB). Buffers too short for the geometry, strides
/// shorter than `width`, or an empty plane give 0.0, the worst score, so a quality check on bad
/// input fails rather than passes.
pub fn psnr(a: &[u8], b: &[u8], width: u32, height: u32, stride_a: usize, stride_b: usize) -> f64 {
    let (w, h) = (width as usize, height as usize);
    if w == 0
        || h == 0
        || check_plane("a", a.len(), stride_a, w, h).is_err()
        || check_plane("b", b.len(), stride_b, w, h).is_err()
    {
        return 0.0;
    }
    let mut sse: u64 = 0;
    for (row_a, row_b) in a.chunks(stride_a).zip(b.chunks(stride_b)).take(h) {
        let row: u64 = row_a[..w]
            .iter()
            .zip(&row_b[..w])
            .map(|(&x, &y)| {
                let d = u64::from(x.abs_diff(y));
                d * d
            })
            .sum();
        sse += row;
    }
    if sse == 0 {
        return PSNR_IDENTICAL;
    }
    let mse = sse as f64 / (w * h) as f64;
    (10.0 * (255.0 * 255.0 / mse).log10()).min(PSNR_IDENTICAL)
}

/// BT.709 limited-range luma of `width` x `height` tightly packed RGBA pixels (alpha ignored),
/// one byte a pixel, rows `width` bytes apart.
///
/// Uses the same conversion library, matrix, range and precision as
/// [`bgra_to_yuv420`](crate::convert::bgra_to_yuv420). A buffer that does not match the size gives
/// an empty vector (which [`psnr`] scores 0.0).
pub fn luma_from_rgba(rgba: &[u8], width: u32, height: u32) -> Vec<u8> {
    if check_rgba(rgba, width, height).is_err() {
        return Vec::new();
    }
    let mut y = vec![0u8; width as usize * height as usize];
    let mut gray = YuvGrayImageMut {
        y_plane: BufferStoreMut::Borrowed(&mut y),
        y_stride: width,
        width,
        height,
    };
    match width
        .checked_mul(4)
        .map(|stride| yuv::rgba_to_yuv400(&mut gray, rgba, stride, RANGE, MATRIX))
    {
        Some(Ok(())) => y,
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::bgra_to_yuv420;
    use crate::pattern::screen_like_bgra;

    #[test]
    fn identical_planes_score_the_cap() {
        let a = [10u8, 20, 99, 30, 40, 99];
        let b = [10u8, 20, 30, 40];
        assert_eq!(psnr(&a, &b, 2, 2, 3, 2), PSNR_IDENTICAL);
    }

    #[test]
    fn known_error_gives_known_psnr() {
        // Every sample off by 1: MSE 1, PSNR = 20 log10(255).
        let a = vec![100u8; 64];
        let b = vec![101u8; 64];
        let p = psnr(&a, &b, 8, 8, 8, 8);
        assert!((p - 48.1308).abs() < 1e-3, "{p}");
        // Padding beyond the width is ignored.
        let mut c = vec![101u8; 8 * 9];
        c.iter_mut().skip(8).step_by(9).for_each(|x| *x = 0);
        assert!((psnr(&a, &c, 8, 8, 8, 9) - p).abs() < 1e-9);
    }

    #[test]
    fn bad_geometry_scores_zero() {
        assert_eq!(psnr(&[0; 10], &[0; 16], 4, 4, 4, 4), 0.0);
        assert_eq!(psnr(&[0; 16], &[0; 16], 4, 4, 2, 4), 0.0);
        assert_eq!(psnr(&[], &[], 0, 0, 0, 0), 0.0);
        assert!(luma_from_rgba(&[0; 15], 2, 2).is_empty());
    }

    #[test]
    fn luma_matches_encoder_path() {
        let bgra = screen_like_bgra(37, 23, 0, 3);
        let yuv = bgra_to_yuv420(&bgra).unwrap();
        let rgba: Vec<u8> = bgra
            .data
            .chunks_exact(4)
            .flat_map(|p| [p[2], p[1], p[0], p[3]])
            .collect();
        let luma = luma_from_rgba(&rgba, 37, 23);
        let diff = luma.iter().zip(&yuv.y).map(|(a, b)| a.abs_diff(*b)).max();
        assert_eq!(diff, Some(0));
    }
}
