//! Recorded AV1 packets to pictures with dav1d. Decoding starts at a keyframe (after a seek, a
//! new picture format, a decoder error or a gap in the agent's packet numbers, packets are
//! skipped until the next keyframe), so a damaged stretch costs pictures until the next
//! keyframe and never shows garbage.

use sightline_media::decode::Av1Decoder;
use sightline_media::{DecodeError, Yuv420Frame};

/// Decoder threads: the window and the reader need the rest of the machine.
const DECODER_THREADS: usize = 2;

/// The decoder and where it stands in the packet sequence.
#[derive(Debug)]
pub struct Pictures {
    decoder: Av1Decoder,
    /// The packet number expected next (wrapping: numbers come from the agent).
    expected: Option<u64>,
    waiting_for_key: bool,
}

impl Pictures {
    /// A decoder that waits for a keyframe.
    pub fn new() -> Result<Self, DecodeError> {
        Ok(Self {
            decoder: Av1Decoder::new(DECODER_THREADS)?,
            expected: None,
            waiting_for_key: true,
        })
    }

    /// Decoding starts over (a seek or a new picture format): nothing until a keyframe.
    pub fn restart(&mut self) {
        self.decoder.flush();
        self.expected = None;
        self.waiting_for_key = true;
    }

    /// Decodes one packet; the picture it completes, if any.
    pub fn packet(&mut self, seq: u64, keyframe: bool, data: &[u8]) -> Option<Yuv420Frame> {
        if self.expected.is_some_and(|e| e != seq) && !keyframe {
            self.waiting_for_key = true;
        }
        self.expected = Some(seq.wrapping_add(1));
        if self.waiting_for_key {
            if !keyframe {
                return None;
            }
            self.decoder.flush();
            self.waiting_for_key = false;
        }
        match self.decoder.decode(data) {
            Ok(picture) => picture,
            Err(e) => {
                tracing::debug!(seq, error = %e, "recorded packet does not decode");
                self.waiting_for_key = true;
                None
            }
        }
    }
}
