//! Colour conversion between captured BGRA and the encoder's planar YUV 4:2:0, and back to RGBA
//! for saving pictures. Everything uses BT.709 limited range and the `yuv` crate's SIMD paths;
//! the matrix and range live here once, in `MATRIX` and `RANGE`.

use yuv::{
    BufferStoreMut, YuvConversionMode, YuvError, YuvPlanarImage, YuvPlanarImageMut, YuvRange,
    YuvStandardMatrix,
};

use crate::frame::{check_plane, BgraFrame, FrameError, Yuv420Frame};

pub use crate::png_file::{load_png_rgba, save_png, PngError};

/// The colour matrix of every YUV picture in Sightline (also signalled in the AV1 stream).
pub(crate) const MATRIX: YuvStandardMatrix = YuvStandardMatrix::Bt709;
/// The sample range of every YUV picture in Sightline (also signalled in the AV1 stream).
pub(crate) const RANGE: YuvRange = YuvRange::Limited;

/// Why a conversion was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The source or destination picture does not match its declared geometry.
    #[error("bad picture: {0}")]
    Frame(#[from] FrameError),
    /// A dimension or stride does not fit the conversion library's 32-bit arithmetic.
    #[error("picture too large to convert")]
    TooLarge,
    /// The conversion library rejected the buffers.
    #[error("colour conversion failed: {0}")]
    Yuv(#[from] YuvError),
}

fn to_u32(n: usize) -> Result<u32, ConvertError> {
    u32::try_from(n).map_err(|_| ConvertError::TooLarge)
}

/// Converts a captured BGRA picture into a new, tightly packed YUV 4:2:0 picture.
pub fn bgra_to_yuv420(src: &BgraFrame) -> Result<Yuv420Frame, ConvertError> {
    let mut dst = Yuv420Frame::new_black(0, 0);
    bgra_to_yuv420_into(src, &mut dst)?;
    Ok(dst)
}

/// Converts `src` into `dst`, reusing `dst`'s plane allocations. `dst` takes `src`'s size and
/// tight strides (`y_stride = width`, `uv_stride = width.div_ceil(2)`), whatever it held before.
///
/// Odd sizes are fine: the last chroma column and row cover one luma column or row. Alpha is
/// ignored.
pub fn bgra_to_yuv420_into(src: &BgraFrame, dst: &mut Yuv420Frame) -> Result<(), ConvertError> {
    src.check()?;
    let stride = to_u32(src.stride)?;
    dst.reshape_tight(src.width, src.height);
    let (y_stride, uv_stride) = (to_u32(dst.y_stride)?, to_u32(dst.uv_stride)?);
    let mut planar = YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(&mut dst.y),
        y_stride,
        u_plane: BufferStoreMut::Borrowed(&mut dst.u),
        u_stride: uv_stride,
        v_plane: BufferStoreMut::Borrowed(&mut dst.v),
        v_stride: uv_stride,
        width: src.width,
        height: src.height,
    };
    yuv::bgra_to_yuv420(
        &mut planar,
        &src.data,
        stride,
        RANGE,
        MATRIX,
        YuvConversionMode::Balanced,
    )?;
    Ok(())
}

/// Converts a YUV 4:2:0 picture to tightly packed RGBA (`width * 4` bytes a row, alpha 255).
/// Meant for saving pictures and comparing them, not for display.
pub fn yuv420_to_rgba(src: &Yuv420Frame) -> Result<Vec<u8>, ConvertError> {
    src.check()?;
    let row_bytes = (src.width as usize)
        .checked_mul(4)
        .ok_or(ConvertError::TooLarge)?;
    let len = row_bytes
        .checked_mul(src.height as usize)
        .ok_or(ConvertError::TooLarge)?;
    let planar = YuvPlanarImage {
        y_plane: &src.y,
        y_stride: to_u32(src.y_stride)?,
        u_plane: &src.u,
        u_stride: to_u32(src.uv_stride)?,
        v_plane: &src.v,
        v_stride: to_u32(src.uv_stride)?,
        width: src.width,
        height: src.height,
    };
    let mut rgba = vec![0u8; len];
    yuv::yuv420_to_rgba(&planar, &mut rgba, to_u32(row_bytes)?, RANGE, MATRIX)?;
    Ok(rgba)
}

/// Checks that `rgba` holds `width` x `height` tightly packed RGBA pixels.
pub(crate) fn check_rgba(rgba: &[u8], width: u32, height: u32) -> Result<(), FrameError> {
    if width == 0 || height == 0 {
        return Err(FrameError::Empty { width, height });
    }
    let row_bytes = (width as usize)
        .checked_mul(4)
        .ok_or(FrameError::Overflow)?;
    check_plane("RGBA", rgba.len(), row_bytes, row_bytes, height as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::screen_like_bgra;

    fn bgra_to_rgba(src: &BgraFrame) -> Vec<u8> {
        let mut out = Vec::new();
        for row in src.data.chunks(src.stride).take(src.height as usize) {
            for px in row[..src.width as usize * 4].chunks_exact(4) {
                out.extend_from_slice(&[px[2], px[1], px[0], 255]);
            }
        }
        out
    }

    #[test]
    fn white_and_black_map_to_limited_range() {
        let mut data = vec![255u8; 4 * 4 * 2];
        data[..16].fill(0);
        let src = BgraFrame {
            width: 4,
            height: 2,
            stride: 16,
            data,
        };
        let yuv = bgra_to_yuv420(&src).unwrap();
        assert_eq!(&yuv.y[..4], &[16; 4]);
        assert_eq!(&yuv.y[4..], &[235; 4]);
        assert!(yuv.u.iter().chain(&yuv.v).all(|&c| c.abs_diff(128) <= 1));
    }

    #[test]
    fn odd_sized_picture_with_padded_stride_converts() {
        let src = screen_like_bgra(101, 57, 101 * 4 + 12, 1);
        let yuv = bgra_to_yuv420(&src).unwrap();
        assert_eq!((yuv.width, yuv.height), (101, 57));
        assert_eq!((yuv.y_stride, yuv.uv_stride), (101, 51));
        assert_eq!((yuv.u.len(), yuv.v.len()), (51 * 29, 51 * 29));
        let rgba = yuv420_to_rgba(&yuv).unwrap();
        assert_eq!(rgba.len(), 101 * 57 * 4);
        // The bottom-right pixel is covered by a lone chroma sample; it must still be right.
        let want = bgra_to_rgba(&src);
        let last = rgba.len() - 4;
        for c in 0..3 {
            assert!(rgba[last + c].abs_diff(want[last + c]) <= 3);
        }
    }

    #[test]
    fn into_reuses_and_reshapes_destination() {
        let mut dst = Yuv420Frame::new_black(640, 360);
        let src = screen_like_bgra(33, 17, 33 * 4, 1);
        bgra_to_yuv420_into(&src, &mut dst).unwrap();
        assert_eq!(dst.check(), Ok(()));
        assert_eq!((dst.width, dst.height, dst.y.len()), (33, 17, 33 * 17));
    }

    #[test]
    fn bad_geometry_is_an_error() {
        let mut src = screen_like_bgra(16, 16, 64, 1);
        src.data.truncate(100);
        assert!(matches!(
            bgra_to_yuv420(&src),
            Err(ConvertError::Frame(FrameError::BufferTooSmall { .. }))
        ));
        let src = BgraFrame {
            width: 16,
            height: 16,
            stride: 32,
            data: vec![0; 1024],
        };
        assert!(matches!(
            bgra_to_yuv420(&src),
            Err(ConvertError::Frame(FrameError::StrideTooSmall { .. }))
        ));
        let mut yuv = Yuv420Frame::new_black(16, 16);
        yuv.u.clear();
        assert!(yuv420_to_rgba(&yuv).is_err());
        assert!(yuv420_to_rgba(&Yuv420Frame::new_black(0, 0)).is_err());
    }

    #[test]
    fn rgba_check_rejects_short_buffers() {
        assert!(check_rgba(&[0; 16], 2, 2).is_ok());
        assert!(check_rgba(&[0; 15], 2, 2).is_err());
        assert!(check_rgba(&[], 0, 2).is_err());
    }
}
