//! The last captured frame, and the comparison that tells a changed screen from a static one.
//!
//! Backends fill a recycled buffer from [`FrameHistory::buffer`], then [`FrameHistory::submit`]
//! compares it with the last frame row by row (a `memcmp` per row, stopping at the first
//! difference). An unchanged capture returns the previous `Arc` and keeps the new buffer for
//! reuse, so a static screen costs one copy and one comparison per capture, and no allocation.

use std::sync::Arc;

use sightline_media::BgraFrame;

use super::Captured;

/// The last frame handed out, and a spare buffer to capture the next one into.
#[derive(Debug, Default)]
pub(crate) struct FrameHistory {
    last: Option<Arc<BgraFrame>>,
    spare: Vec<u8>,
}

impl FrameHistory {
    /// An empty buffer with room for `len` bytes to capture into (recycled when possible).
    pub(crate) fn buffer(&mut self, len: usize) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.spare);
        buf.clear();
        buf.reserve(len);
        buf
    }

    /// The last frame again, unchanged, when the backend knows nothing changed without looking
    /// (XDamage reported nothing, no new portal frame). `None` before the first capture.
    pub(crate) fn unchanged(&self) -> Option<Captured> {
        self.last.as_ref().map(|frame| Captured {
            frame: Arc::clone(frame),
            changed: false,
        })
    }

    /// Records `frame` as the newest capture and says whether it differs from the last one.
    pub(crate) fn submit(&mut self, frame: BgraFrame) -> Captured {
        if let Some(last) = &self.last {
            if same_pixels(last, &frame) {
                self.spare = frame.data;
                return Captured {
                    frame: Arc::clone(last),
                    changed: false,
                };
            }
        }
        let frame = Arc::new(frame);
        if let Some(old) = self.last.replace(Arc::clone(&frame)) {
            // Recycle the old buffer unless the caller still holds that frame.
            if let Ok(old) = Arc::try_unwrap(old) {
                self.spare = old.data;
            }
        }
        Captured {
            frame,
            changed: true,
        }
    }

    /// Forgets the last frame, so the next capture reports a change (after a resize).
    pub(crate) fn reset(&mut self) {
        self.last = None;
    }
}

/// Whether two frames show the same picture: same size and the same visible bytes of every row
/// (padding past `width * 4` ignored).
pub(crate) fn same_pixels(a: &BgraFrame, b: &BgraFrame) -> bool {
    if a.width != b.width || a.height != b.height {
        return false;
    }
    let row = a.width as usize * 4;
    if a.stride == row && b.stride == row {
        return a.data == b.data;
    }
    let rows_a = a.data.chunks(a.stride.max(1)).take(a.height as usize);
    let mut rows_b = b.data.chunks(b.stride.max(1)).take(b.height as usize);
    rows_a.into_iter().all(|ra| {
        rows_b
            .next()
            .is_some_and(|rb| ra.get(..row).is_some_and(|ra| Some(ra) == rb.get(..row)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(width: u32, height: u32, stride: usize, fill: u8) -> BgraFrame {
        BgraFrame {
            width,
            height,
            stride,
            data: vec![fill; stride * height as usize],
        }
    }

    #[test]
    fn first_capture_changed_then_static_unchanged() {
        let mut h = FrameHistory::default();
        assert!(h.unchanged().is_none());
        let first = h.submit(frame(4, 3, 16, 7));
        assert!(first.changed);
        let second = h.submit(frame(4, 3, 16, 7));
        assert!(!second.changed);
        assert!(Arc::ptr_eq(&first.frame, &second.frame));
        assert!(!h.unchanged().unwrap().changed);
    }

    #[test]
    fn one_pixel_difference_is_a_change() {
        let mut h = FrameHistory::default();
        h.submit(frame(4, 3, 16, 7));
        let mut f = frame(4, 3, 16, 7);
        f.data[2 * 16 + 15] = 8; // last byte of the last row
        let c = h.submit(f);
        assert!(c.changed);
        assert_eq!(c.frame.data[47], 8);
    }

    #[test]
    fn size_change_is_a_change_and_padding_is_ignored() {
        let mut h = FrameHistory::default();
        h.submit(frame(4, 3, 16, 7));
        assert!(h.submit(frame(3, 3, 12, 7)).changed);
        let mut padded = frame(3, 3, 16, 7);
        padded.data[15] = 99; // padding byte of row 0
        assert!(same_pixels(&frame(3, 3, 12, 7), &padded));
        padded.data[11] = 99; // a visible byte
        assert!(!same_pixels(&frame(3, 3, 12, 7), &padded));
        h.reset();
        assert!(h.submit(frame(3, 3, 12, 7)).changed);
    }

    #[test]
    fn buffers_are_recycled_when_the_caller_let_go() {
        let mut h = FrameHistory::default();
        let a = h.submit(frame(4, 3, 16, 1));
        let old = a.frame.data.as_ptr();
        drop(a);
        let b = h.submit(frame(4, 3, 16, 2));
        assert!(b.changed);
        let buf = h.buffer(48);
        assert!(buf.is_empty() && buf.capacity() >= 48);
        assert_eq!(
            buf.as_ptr(),
            old,
            "the old frame's buffer came back for reuse"
        );
    }
}
