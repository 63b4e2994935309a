//! AV1 decoding with dav1d (the system libdav1d), one packet in, at most one picture out, no
//! frame delay. Packets come from a peer, so every failure is a typed error, never a panic.

use dav1d::{PixelLayout, PlanarImageComponent, Settings};

use crate::frame::Yuv420Frame;

/// Decoder threads when the caller passes 0: tile threads for one picture at a time.
pub const DEFAULT_DECODER_THREADS: usize = 2;
/// Largest picture the decoder accepts, in pixels (8192 x 8192), so a hostile stream cannot make
/// it allocate gigabytes.
pub const MAX_FRAME_PIXELS: u32 = 8192 * 8192;
/// Rounds of "take pictures, resend the rest of the packet" before giving up on a packet. One
/// packet holds one shown picture, so more than a few rounds means the decoder is stuck.
const MAX_RESEND_ROUNDS: usize = 16;

/// Why a packet could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// dav1d rejected the data or failed (corrupt or unsupported stream, out of memory).
    #[error("AV1 decoding failed: {0}")]
    Dav1d(#[from] dav1d::Error),
    /// The stream is not 8-bit 4:2:0, the only format Sightline sends.
    #[error("unsupported picture format: {layout:?}, {bits} bits")]
    UnsupportedFormat {
        /// Chroma layout of the picture.
        layout: PixelLayout,
        /// Bits per sample.
        bits: usize,
    },
    /// A decoded plane is smaller than its declared size says.
    #[error("decoded picture has an inconsistent {plane} plane")]
    BadPlane {
        /// Which plane.
        plane: &'static str,
    },
    /// The decoder kept refusing the rest of a packet.
    #[error("decoder made no progress on a packet")]
    Stalled,
    /// The packet is empty.
    #[error("empty packet")]
    Empty,
    /// The thread count does not fit dav1d's settings.
    #[error("invalid decoder thread count {0}")]
    InvalidThreads(usize),
}

/// An AV1 decoder for one stream.
///
/// After any error the decoder is reset, as its reference pictures can no longer be trusted: the
/// caller should drop pictures until the next key frame (and ask the agent for one).
#[derive(Debug)]
pub struct Av1Decoder {
    inner: dav1d::Decoder,
}

impl Av1Decoder {
    /// Builds a decoder using `threads` threads (0 means [`DEFAULT_DECODER_THREADS`]) that
    /// outputs each picture as soon as its packet is in (`max_frame_delay = 1`).
    pub fn new(threads: usize) -> Result<Self, DecodeError> {
        let threads = match threads {
            0 => DEFAULT_DECODER_THREADS,
            n => n,
        };
        let mut settings = Settings::new();
        settings.set_n_threads(
            u32::try_from(threads).map_err(|_| DecodeError::InvalidThreads(threads))?,
        );
        settings.set_max_frame_delay(1);
        settings.set_frame_size_limit(MAX_FRAME_PIXELS);
        Ok(Self {
            inner: dav1d::Decoder::with_settings(&settings)?,
        })
    }

    /// Decodes one packet; returns the newest picture it completed, if any. Older pictures
    /// completed by the same packet are dropped: only the newest is worth showing.
    pub fn decode(&mut self, data: &[u8]) -> Result<Option<Yuv420Frame>, DecodeError> {
        if data.is_empty() {
            // Nothing reached dav1d, so its state is still good.
            return Err(DecodeError::Empty);
        }
        let result = self.decode_inner(data);
        if result.is_err() {
            // Also discards any half-sent packet, which dav1d would otherwise insist on first.
            self.inner.flush();
        }
        result
    }

    fn decode_inner(&mut self, data: &[u8]) -> Result<Option<Yuv420Frame>, DecodeError> {
        let mut newest = None;
        let mut sent = self.inner.send_data(data.to_vec(), None, None, None);
        let mut rounds = 0;
        // dav1d says `Again` when it holds pictures that must be taken before it accepts the
        // rest of the packet.
        while let Err(dav1d::Error::Again) = sent {
            rounds += 1;
            if rounds > MAX_RESEND_ROUNDS {
                return Err(DecodeError::Stalled);
            }
            self.take_pictures(&mut newest)?;
            sent = self.inner.send_pending_data();
        }
        sent?;
        self.take_pictures(&mut newest)?;
        newest.map(|pic| copy_picture(&pic)).transpose()
    }

    /// Takes every picture dav1d has ready, keeping the newest in `newest`.
    fn take_pictures(&mut self, newest: &mut Option<dav1d::Picture>) -> Result<(), DecodeError> {
        loop {
            match self.inner.get_picture() {
                Ok(pic) => *newest = Some(pic),
                Err(dav1d::Error::Again) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Drops all buffered data and pictures and resets the decoder's state; the next picture
    /// must come from a key frame.
    pub fn flush(&mut self) {
        self.inner.flush();
        // Pictures made ready by the flush are stale by definition.
        while self.inner.get_picture().is_ok() {}
    }
}

/// Copies a dav1d picture into a tightly packed [`Yuv420Frame`], checking its format.
fn copy_picture(pic: &dav1d::Picture) -> Result<Yuv420Frame, DecodeError> {
    let layout = pic.pixel_layout();
    let bits = pic.bit_depth();
    if layout != PixelLayout::I420 || bits != 8 {
        return Err(DecodeError::UnsupportedFormat { layout, bits });
    }
    let mut frame = Yuv420Frame::new_black(pic.width(), pic.height());
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (cw, ch) = (
        frame.chroma_width() as usize,
        frame.chroma_height() as usize,
    );
    copy_plane(pic, PlanarImageComponent::Y, "Y", &mut frame.y, w, h)?;
    copy_plane(pic, PlanarImageComponent::U, "U", &mut frame.u, cw, ch)?;
    copy_plane(pic, PlanarImageComponent::V, "V", &mut frame.v, cw, ch)?;
    Ok(frame)
}

fn copy_plane(
    pic: &dav1d::Picture,
    component: PlanarImageComponent,
    name: &'static str,
    dst: &mut [u8],
    width: usize,
    height: usize,
) -> Result<(), DecodeError> {
    let bad = || DecodeError::BadPlane { plane: name };
    let stride = pic.stride(component) as usize;
    if width == 0 || stride < width {
        return Err(bad());
    }
    let plane = pic.plane(component);
    let src: &[u8] = &plane;
    for (y, out) in dst.chunks_exact_mut(width).take(height).enumerate() {
        let start = y * stride;
        let row = src.get(start..start + width).ok_or_else(bad)?;
        out.copy_from_slice(row);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_and_the_decoder_recovers() {
        let mut dec = Av1Decoder::new(0).unwrap();
        let mut seed = 7u32;
        let mut errors = 0;
        for len in [1usize, 2, 7, 64, 1000, 5000] {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            match dec.decode(&junk) {
                Ok(None) => {}
                Ok(Some(pic)) => panic!("garbage decoded to {pic:?}"),
                Err(_) => errors += 1,
            }
        }
        assert!(errors > 0, "no garbage packet was reported as an error");
        assert!(matches!(dec.decode(&[]), Err(DecodeError::Empty)));
        dec.flush();
        assert!(dec.decode(&[0x12, 0x00]).is_ok_and(|p| p.is_none()));
    }

    #[test]
    fn thread_counts() {
        assert!(Av1Decoder::new(1).is_ok());
        assert!(Av1Decoder::new(4).is_ok());
    }
}
