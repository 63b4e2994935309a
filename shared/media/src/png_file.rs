//! Reading and writing PNG files as tightly packed 8-bit RGBA, for screenshots in tests and
//! debugging. Reading accepts what ImageMagick's `import`/`convert` write: RGB or RGBA, and also
//! the grey, palette and 16-bit variants it picks for simple pictures.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use png::{BitDepth, ColorType, Transformations};

use crate::convert::check_rgba;
use crate::frame::FrameError;

/// Largest decoded picture accepted, in bytes (an 8K RGBA screenshot is about 130 MiB).
const MAX_DECODED_BYTES: usize = 512 << 20;

/// Why a PNG could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    /// The RGBA buffer does not match the given size.
    #[error("bad RGBA buffer: {0}")]
    Frame(#[from] FrameError),
    /// Opening or creating the file failed.
    #[error("PNG file: {0}")]
    Io(#[from] std::io::Error),
    /// Writing the PNG stream failed.
    #[error("PNG encoding: {0}")]
    Encode(#[from] png::EncodingError),
    /// The file is not a PNG we can read.
    #[error("PNG decoding: {0}")]
    Decode(#[from] png::DecodingError),
    /// The PNG decodes to a pixel format other than 8-bit grey, grey+alpha, RGB or RGBA.
    #[error("unsupported PNG pixel format {0:?} {1:?}")]
    Unsupported(ColorType, BitDepth),
}

/// Writes `width` x `height` tightly packed RGBA pixels to `path` as an 8-bit RGBA PNG.
pub fn save_png(
    rgba: &[u8],
    width: u32,
    height: u32,
    path: impl AsRef<Path>,
) -> Result<(), PngError> {
    check_rgba(rgba, width, height)?;
    let len = width as usize * height as usize * 4;
    let file = BufWriter::new(File::create(path.as_ref())?);
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(ColorType::Rgba);
    encoder.set_depth(BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgba[..len])?;
    writer.finish()?;
    Ok(())
}

/// Reads a PNG into tightly packed 8-bit RGBA; returns the pixels, width and height. Missing
/// alpha becomes 255; 16-bit samples are reduced to 8 bits; palettes are expanded.
pub fn load_png_rgba(path: impl AsRef<Path>) -> Result<(Vec<u8>, u32, u32), PngError> {
    let file = BufReader::new(File::open(path.as_ref())?);
    let mut decoder = png::Decoder::new_with_limits(
        file,
        png::Limits {
            bytes: MAX_DECODED_BYTES,
        },
    );
    decoder.set_transformations(Transformations::normalize_to_color8());
    let mut reader = decoder.read_info()?;
    let (color, depth) = reader.output_color_type();
    if depth != BitDepth::Eight {
        return Err(PngError::Unsupported(color, depth));
    }
    let size = reader
        .output_buffer_size()
        .ok_or(PngError::Frame(FrameError::Overflow))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf)?;
    let (width, height) = (info.width, info.height);
    let pixels = width as usize * height as usize;
    let src = buf.get(..info.buffer_size()).unwrap_or(&buf);
    let rgba = match color {
        ColorType::Rgba => src.to_vec(),
        ColorType::Rgb => expand(src, 3, pixels, |p| [p[0], p[1], p[2], 255]),
        ColorType::Grayscale => expand(src, 1, pixels, |p| [p[0], p[0], p[0], 255]),
        ColorType::GrayscaleAlpha => expand(src, 2, pixels, |p| [p[0], p[0], p[0], p[1]]),
        ColorType::Indexed => return Err(PngError::Unsupported(color, depth)),
    };
    check_rgba(&rgba, width, height)?;
    Ok((rgba, width, height))
}

fn expand(src: &[u8], channels: usize, pixels: usize, f: impl Fn(&[u8]) -> [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pixels.saturating_mul(4));
    for p in src.chunks_exact(channels).take(pixels) {
        out.extend_from_slice(&f(p));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, color: ColorType, depth: BitDepth, w: u32, h: u32, data: &[u8]) {
        let mut enc = png::Encoder::new(BufWriter::new(File::create(path).unwrap()), w, h);
        enc.set_color(color);
        enc.set_depth(depth);
        let mut wr = enc.write_header().unwrap();
        wr.write_image_data(data).unwrap();
        wr.finish().unwrap();
    }

    #[test]
    fn rgba_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        let rgba: Vec<u8> = (0..3 * 2 * 4).map(|i| (i * 10) as u8).collect();
        save_png(&rgba, 3, 2, &path).unwrap();
        assert_eq!(load_png_rgba(&path).unwrap(), (rgba, 3, 2));
    }

    #[test]
    fn rgb_grey_and_16_bit_files_load_as_rgba() {
        let dir = tempfile::tempdir().unwrap();
        let rgb = dir.path().join("rgb.png");
        write_png(
            &rgb,
            ColorType::Rgb,
            BitDepth::Eight,
            2,
            1,
            &[1, 2, 3, 4, 5, 6],
        );
        assert_eq!(
            load_png_rgba(&rgb).unwrap(),
            (vec![1, 2, 3, 255, 4, 5, 6, 255], 2, 1)
        );
        let grey = dir.path().join("grey.png");
        write_png(&grey, ColorType::Grayscale, BitDepth::Eight, 2, 1, &[7, 9]);
        assert_eq!(
            load_png_rgba(&grey).unwrap(),
            (vec![7, 7, 7, 255, 9, 9, 9, 255], 2, 1)
        );
        let deep = dir.path().join("deep.png");
        write_png(
            &deep,
            ColorType::Rgb,
            BitDepth::Sixteen,
            1,
            1,
            &[0xab, 0, 0xcd, 0, 0xef, 0],
        );
        assert_eq!(
            load_png_rgba(&deep).unwrap(),
            (vec![0xab, 0xcd, 0xef, 255], 1, 1)
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.png");
        assert!(matches!(
            save_png(&[0; 15], 2, 2, &path),
            Err(PngError::Frame(_))
        ));
        assert!(matches!(
            save_png(&[], 0, 0, &path),
            Err(PngError::Frame(_))
        ));
        std::fs::write(&path, b"not a png at all").unwrap();
        assert!(matches!(load_png_rgba(&path), Err(PngError::Decode(_))));
        assert!(matches!(
            load_png_rgba(dir.path().join("missing.png")),
            Err(PngError::Io(_))
        ));
    }
}
