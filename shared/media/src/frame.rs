//! Picture types and the geometry checks every consumer of a picture relies on.

/// A captured picture: 8-bit B, G, R, A (or X) per pixel, rows `stride` bytes apart.
#[derive(Clone, PartialEq, Eq)]
pub struct BgraFrame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes from one row to the next (at least `width * 4`).
    pub stride: usize,
    /// `stride * height` bytes.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for BgraFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BgraFrame({}x{}, stride {})",
            self.width, self.height, self.stride
        )
    }
}

/// A planar 8-bit YUV 4:2:0 picture (BT.709, limited range), as fed to the encoder and as
/// produced by the decoder. Chroma planes are `(width + 1) / 2` by `(height + 1) / 2`.
#[derive(Clone, PartialEq, Eq)]
pub struct Yuv420Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Luma plane.
    pub y: Vec<u8>,
    /// Bytes between luma rows.
    pub y_stride: usize,
    /// Cb plane.
    pub u: Vec<u8>,
    /// Cr plane.
    pub v: Vec<u8>,
    /// Bytes between chroma rows (both chroma planes).
    pub uv_stride: usize,
}

impl std::fmt::Debug for Yuv420Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Yuv420Frame({}x{})", self.width, self.height)
    }
}

/// Why a picture's buffers do not match its declared geometry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Width or height is zero.
    #[error("picture has zero width or height ({width}x{height})")]
    Empty {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
    /// A row stride is shorter than the row it must hold.
    #[error("{plane} stride {stride} is shorter than a row of {row_bytes} bytes")]
    StrideTooSmall {
        /// Which plane.
        plane: &'static str,
        /// Declared stride.
        stride: usize,
        /// Bytes one row needs.
        row_bytes: usize,
    },
    /// A buffer is too short for its stride and height.
    #[error("{plane} buffer holds {len} bytes, needs {needed}")]
    BufferTooSmall {
        /// Which plane.
        plane: &'static str,
        /// Bytes present.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// The geometry does not fit in memory arithmetic.
    #[error("picture geometry overflows")]
    Overflow,
}

/// Checks that `len` bytes hold `rows` rows of `row_bytes` bytes placed `stride` apart. The last
/// row need not be padded to the full stride.
pub(crate) fn check_plane(
    plane: &'static str,
    len: usize,
    stride: usize,
    row_bytes: usize,
    rows: usize,
) -> Result<(), FrameError> {
    if stride < row_bytes {
        return Err(FrameError::StrideTooSmall {
            plane,
            stride,
            row_bytes,
        });
    }
    let needed = rows
        .checked_sub(1)
        .and_then(|full_rows| full_rows.checked_mul(stride))
        .and_then(|n| n.checked_add(row_bytes))
        .ok_or(FrameError::Overflow)?;
    if len < needed {
        return Err(FrameError::BufferTooSmall { plane, len, needed });
    }
    Ok(())
}

fn check_dims(width: u32, height: u32) -> Result<(usize, usize), FrameError> {
    if width == 0 || height == 0 {
        return Err(FrameError::Empty { width, height });
    }
    let w = usize::try_from(width).map_err(|_| FrameError::Overflow)?;
    let h = usize::try_from(height).map_err(|_| FrameError::Overflow)?;
    Ok((w, h))
}

impl BgraFrame {
    /// Checks that `stride` and `data` can hold `width` x `height` pixels.
    pub fn check(&self) -> Result<(), FrameError> {
        let (w, h) = check_dims(self.width, self.height)?;
        let row_bytes = w.checked_mul(4).ok_or(FrameError::Overflow)?;
        check_plane("BGRA", self.data.len(), self.stride, row_bytes, h)
    }
}

impl Yuv420Frame {
    /// A black picture (Y 16, Cb/Cr 128 in limited range) with tightly packed planes.
    ///
    /// Zero sizes give empty planes, which [`Yuv420Frame::check`] rejects.
    pub fn new_black(width: u32, height: u32) -> Self {
        let mut frame = Self {
            width: 0,
            height: 0,
            y: Vec::new(),
            y_stride: 0,
            u: Vec::new(),
            v: Vec::new(),
            uv_stride: 0,
        };
        frame.reshape_tight(width, height);
        frame.y.fill(16);
        frame.u.fill(128);
        frame.v.fill(128);
        frame
    }

    /// Sets the size and tight strides, resizing the planes while keeping their allocations.
    /// Pixel contents are unspecified afterwards.
    pub(crate) fn reshape_tight(&mut self, width: u32, height: u32) {
        self.width = width;
        self.height = height;
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (width.div_ceil(2) as usize, height.div_ceil(2) as usize);
        self.y_stride = w;
        self.uv_stride = cw;
        self.y.resize(w.saturating_mul(h), 0);
        self.u.resize(cw.saturating_mul(ch), 0);
        self.v.resize(cw.saturating_mul(ch), 0);
    }

    /// Checks that the strides and planes can hold the declared size.
    pub fn check(&self) -> Result<(), FrameError> {
        let (w, h) = check_dims(self.width, self.height)?;
        check_plane("Y", self.y.len(), self.y_stride, w, h)?;
        let (cw, ch) = (self.chroma_width() as usize, self.chroma_height() as usize);
        check_plane("U", self.u.len(), self.uv_stride, cw, ch)?;
        check_plane("V", self.v.len(), self.uv_stride, cw, ch)
    }

    /// Chroma plane width.
    pub fn chroma_width(&self) -> u32 {
        self.width.div_ceil(2)
    }
    /// Chroma plane height.
    pub fn chroma_height(&self) -> u32 {
        self.height.div_ceil(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_frame_is_valid_for_odd_sizes() {
        let f = Yuv420Frame::new_black(101, 57);
        assert_eq!(f.check(), Ok(()));
        assert_eq!((f.chroma_width(), f.chroma_height()), (51, 29));
        assert_eq!(f.u.len(), 51 * 29);
    }

    #[test]
    fn short_planes_and_strides_are_rejected() {
        let mut f = Yuv420Frame::new_black(16, 16);
        f.v.truncate(10);
        assert!(matches!(
            f.check(),
            Err(FrameError::BufferTooSmall { plane: "V", .. })
        ));
        let mut f = Yuv420Frame::new_black(16, 16);
        f.y_stride = 8;
        assert!(matches!(
            f.check(),
            Err(FrameError::StrideTooSmall { plane: "Y", .. })
        ));
        assert!(matches!(
            Yuv420Frame::new_black(0, 4).check(),
            Err(FrameError::Empty { .. })
        ));
        let b = BgraFrame {
            width: 4,
            height: 2,
            stride: 16,
            data: vec![0; 20],
        };
        assert!(matches!(b.check(), Err(FrameError::BufferTooSmall { .. })));
        let b = BgraFrame {
            width: 4,
            height: 2,
            stride: 16,
            data: vec![0; 32],
        };
        assert_eq!(b.check(), Ok(()));
    }
}
