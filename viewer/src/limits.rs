//! What the viewer accepts from the agent. The agent runs on a machine the operator does not
//! control, so every size it announces and every buffer it sends is checked here before it
//! reaches the decoder, the GPU or an allocation. A message that fails a check is dropped with
//! a log line and the session goes on; nothing an agent sends can make the viewer panic.

use sightline_core::messages::CursorShape;

/// Largest picture side accepted in a `VideoConfig`, in pixels (the usual GPU texture limit;
/// the upload checks the device's own limit again).
pub const MAX_PICTURE_SIDE: u32 = 16_384;

/// Largest picture accepted, in pixels: what the decoder is configured to decode at all
/// ([`sightline_media::decode::MAX_FRAME_PIXELS`], 8192 × 8192).
pub const MAX_PICTURE_PIXELS: u64 = sightline_media::decode::MAX_FRAME_PIXELS as u64;

/// Largest video packet (one AV1 temporal unit) accepted, whatever the picture size: the
/// transport's own limit on one message, restated so that this check does not depend on it.
pub const MAX_PACKET_BYTES: usize = 16 << 20;

/// Smallest packet limit, for tiny pictures: sequence and frame headers alone take a few bytes.
pub const MIN_PACKET_LIMIT: usize = 64 << 10;

/// Largest pointer image accepted, per side, in pixels.
pub const MAX_CURSOR_SIDE: u16 = 256;

/// Why something the agent sent was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A picture size with a zero side.
    #[error("picture size {width}x{height} is empty")]
    EmptyPicture {
        /// Announced width.
        width: u32,
        /// Announced height.
        height: u32,
    },
    /// A picture larger than the viewer decodes.
    #[error(
        "picture size {width}x{height} is larger than {MAX_PICTURE_SIDE} pixels a side or \
         {MAX_PICTURE_PIXELS} pixels"
    )]
    PictureTooLarge {
        /// Announced width.
        width: u32,
        /// Announced height.
        height: u32,
    },
    /// A video packet before any accepted `VideoConfig` (or after a refused one).
    #[error("video packet without an accepted stream configuration")]
    NoStream,
    /// A video packet larger than any encoder makes for the announced picture size.
    #[error("video packet of {len} bytes is over the limit of {limit} for this picture size")]
    PacketTooLarge {
        /// Packet size.
        len: usize,
        /// The limit for the stream's picture size.
        limit: usize,
    },
    /// A pointer image with a zero or too large side.
    #[error("pointer image size {width}x{height} is outside 1..={MAX_CURSOR_SIDE}")]
    CursorSize {
        /// Announced width.
        width: u16,
        /// Announced height.
        height: u16,
    },
    /// A pointer image whose pixel data does not match its size.
    #[error("pointer image has {len} bytes of pixels, its size needs {expected}")]
    CursorData {
        /// Bytes sent.
        len: usize,
        /// `width * height * 4`.
        expected: usize,
    },
    /// A pointer position that is not a number.
    #[error("pointer position is not a finite number")]
    CursorPosition,
}

/// A picture size the viewer accepts: both sides non-zero and at most [`MAX_PICTURE_SIDE`],
/// at most [`MAX_PICTURE_PIXELS`] in all. Odd sides are fine: the decoder and the GPU upload
/// round the 4:2:0 chroma planes up (`(width + 1) / 2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureSize {
    width: u32,
    height: u32,
}

impl PictureSize {
    /// Checks an announced size.
    pub fn new(width: u32, height: u32) -> Result<Self, LimitError> {
        if width == 0 || height == 0 {
            return Err(LimitError::EmptyPicture { width, height });
        }
        let pixels = u64::from(width) * u64::from(height);
        if width > MAX_PICTURE_SIDE || height > MAX_PICTURE_SIDE || pixels > MAX_PICTURE_PIXELS {
            return Err(LimitError::PictureTooLarge { width, height });
        }
        Ok(Self { width, height })
    }

    /// Width in pixels.
    pub fn width(self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(self) -> u32 {
        self.height
    }

    /// Whether a decoded picture has this size.
    pub fn matches(self, width: u32, height: u32) -> bool {
        (self.width, self.height) == (width, height)
    }

    /// Bytes of one uncompressed 8-bit 4:2:0 picture of this size.
    fn raw_bytes(self) -> u64 {
        let luma = u64::from(self.width) * u64::from(self.height);
        let chroma = u64::from(self.width.div_ceil(2)) * u64::from(self.height.div_ceil(2));
        luma + 2 * chroma
    }

    /// The largest video packet accepted for pictures of this size: twice the uncompressed
    /// picture (no AV1 encoder makes a temporal unit that large; even lossless coding of noise
    /// stays near the raw size), at least [`MIN_PACKET_LIMIT`], at most [`MAX_PACKET_BYTES`].
    pub fn packet_limit(self) -> usize {
        let twice = usize::try_from(self.raw_bytes().saturating_mul(2)).unwrap_or(usize::MAX);
        twice.clamp(MIN_PACKET_LIMIT, MAX_PACKET_BYTES)
    }
}

/// Checks a video packet of `len` bytes against the stream's accepted size, if any.
pub fn check_packet(len: usize, stream: Option<PictureSize>) -> Result<(), LimitError> {
    let stream = stream.ok_or(LimitError::NoStream)?;
    let limit = stream.packet_limit();
    if len > limit {
        return Err(LimitError::PacketTooLarge { len, limit });
    }
    Ok(())
}

/// Checks a pointer image: each side in `1..=MAX_CURSOR_SIDE` and exactly
/// `width * height * 4` bytes of RGBA.
pub fn check_cursor_shape(shape: &CursorShape) -> Result<(), LimitError> {
    let (width, height) = (shape.width, shape.height);
    let side_ok = |s: u16| (1..=MAX_CURSOR_SIDE).contains(&s);
    if !side_ok(width) || !side_ok(height) {
        return Err(LimitError::CursorSize { width, height });
    }
    let expected = usize::from(width)
        .checked_mul(usize::from(height))
        .and_then(|n| n.checked_mul(4))
        .ok_or(LimitError::CursorSize { width, height })?;
    if shape.rgba.len() != expected {
        return Err(LimitError::CursorData {
            len: shape.rgba.len(),
            expected,
        });
    }
    Ok(())
}

/// Checks a pointer position: finite numbers, clamped to the screen (`0..=1`).
pub fn check_cursor_position(x: f32, y: f32) -> Result<(f32, f32), LimitError> {
    if !x.is_finite() || !y.is_finite() {
        return Err(LimitError::CursorPosition);
    }
    Ok((x.clamp(0.0, 1.0), y.clamp(0.0, 1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picture_sizes_within_bounds() {
        assert!(PictureSize::new(1920, 1080).is_ok());
        assert!(PictureSize::new(1, 1).is_ok());
        // Odd sides: the chroma planes round up.
        assert!(PictureSize::new(333, 99).is_ok());
        assert!(PictureSize::new(8192, 8192).is_ok());
        assert!(PictureSize::new(16_384, 4096).is_ok());
        assert_eq!(
            PictureSize::new(0, 0),
            Err(LimitError::EmptyPicture {
                width: 0,
                height: 0
            })
        );
        assert!(matches!(
            PictureSize::new(640, 0),
            Err(LimitError::EmptyPicture { .. })
        ));
        for (w, h) in [
            (100_000, 100_000),
            (16_385, 16),
            (16, 16_385),
            (16_384, 16_384),
            (u32::MAX, u32::MAX),
        ] {
            assert_eq!(
                PictureSize::new(w, h),
                Err(LimitError::PictureTooLarge {
                    width: w,
                    height: h
                }),
                "{w}x{h}"
            );
        }
    }

    #[test]
    fn packet_limits_follow_the_picture_size() {
        let hd = PictureSize::new(1920, 1080).expect("size");
        assert_eq!(hd.packet_limit(), 1920 * 1080 * 3);
        assert!(check_packet(1920 * 1080 * 3, Some(hd)).is_ok());
        assert_eq!(
            check_packet(1920 * 1080 * 3 + 1, Some(hd)),
            Err(LimitError::PacketTooLarge {
                len: 1920 * 1080 * 3 + 1,
                limit: 1920 * 1080 * 3
            })
        );
        let tiny = PictureSize::new(16, 16).expect("size");
        assert_eq!(tiny.packet_limit(), MIN_PACKET_LIMIT);
        let huge = PictureSize::new(8192, 8192).expect("size");
        assert_eq!(huge.packet_limit(), MAX_PACKET_BYTES);
        let odd = PictureSize::new(3, 3).expect("size");
        assert_eq!(odd.raw_bytes(), 9 + 2 * 4);
        assert_eq!(check_packet(10, None), Err(LimitError::NoStream));
    }

    fn shape(width: u16, height: u16, len: usize) -> CursorShape {
        CursorShape {
            width,
            height,
            hot_x: 0,
            hot_y: 0,
            rgba: vec![0; len],
        }
    }

    #[test]
    fn pointer_images_must_match_their_size() {
        assert!(check_cursor_shape(&shape(16, 16, 16 * 16 * 4)).is_ok());
        assert!(check_cursor_shape(&shape(256, 256, 256 * 256 * 4)).is_ok());
        assert_eq!(
            check_cursor_shape(&shape(16, 16, 16 * 16 * 4 - 1)),
            Err(LimitError::CursorData {
                len: 1023,
                expected: 1024
            })
        );
        assert_eq!(
            check_cursor_shape(&shape(16, 16, 0)),
            Err(LimitError::CursorData {
                len: 0,
                expected: 1024
            })
        );
        assert_eq!(
            check_cursor_shape(&shape(0, 16, 0)),
            Err(LimitError::CursorSize {
                width: 0,
                height: 16
            })
        );
        // Absurdly large, whatever the data says.
        assert!(matches!(
            check_cursor_shape(&shape(u16::MAX, u16::MAX, 4)),
            Err(LimitError::CursorSize { .. })
        ));
        assert!(matches!(
            check_cursor_shape(&shape(257, 1, 257 * 4)),
            Err(LimitError::CursorSize { .. })
        ));
    }

    #[test]
    fn pointer_positions_are_numbers_on_the_screen() {
        assert_eq!(check_cursor_position(0.25, 0.5), Ok((0.25, 0.5)));
        assert_eq!(check_cursor_position(-3.0, 7.0), Ok((0.0, 1.0)));
        assert_eq!(
            check_cursor_position(f32::NAN, 0.5),
            Err(LimitError::CursorPosition)
        );
        assert_eq!(
            check_cursor_position(0.5, f32::INFINITY),
            Err(LimitError::CursorPosition)
        );
    }
}
