//! Framing of Noise messages on a byte stream: a 2-byte big-endian length, then the message.
//!
//! This is the framing the Noise specification suggests for TCP. A length of zero or below the
//! size of an AEAD tag is rejected: no valid Noise message is that short.

use crate::error::{Error, Malformed, Result};

/// Largest Noise message (the Noise specification's limit).
pub const MAX_NOISE_MESSAGE: usize = 65_535;
/// Smallest Noise message we accept: a handshake's first message carries at least a 32-byte
/// ephemeral key, every later message at least a 16-byte tag.
pub const MIN_NOISE_MESSAGE: usize = 16;

/// Prepends the length to one Noise message.
pub fn encode(message: &[u8]) -> Result<Vec<u8>> {
    if message.len() > MAX_NOISE_MESSAGE {
        return Err(Malformed::Oversized {
            size: message.len(),
            limit: MAX_NOISE_MESSAGE,
        }
        .into());
    }
    let mut out = Vec::with_capacity(message.len() + 2);
    // The check above guarantees the length fits in 16 bits.
    out.extend_from_slice(&(message.len() as u16).to_be_bytes());
    out.extend_from_slice(message);
    Ok(out)
}

/// Accumulates stream bytes and yields whole Noise messages.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// A decoder with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Returns the next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>> {
        if self.buf.len() < 2 {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
        if len < MIN_NOISE_MESSAGE {
            return Err(Malformed::TooShort.into());
        }
        if self.buf.len() < 2 + len {
            return Ok(None);
        }
        let msg = self.buf[2..2 + len].to_vec();
        self.buf.drain(..2 + len);
        Ok(Some(msg))
    }

    /// Number of buffered bytes not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Called at end of stream: an incomplete frame means the stream was cut.
    pub fn finish(&self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::Truncated)
        }
    }

    /// Takes the bytes buffered beyond the messages already returned (used when a stream
    /// switches from the relay channel to the end-to-end channel).
    pub fn into_remainder(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_split_across_pushes() -> Result<()> {
        let msg = vec![7u8; 300];
        let framed = encode(&msg)?;
        let mut d = FrameDecoder::new();
        d.push(&framed[..1]);
        assert_eq!(d.next_message()?, None);
        d.push(&framed[1..100]);
        assert_eq!(d.next_message()?, None);
        assert_eq!(d.finish(), Err(Error::Truncated));
        d.push(&framed[100..]);
        assert_eq!(d.next_message()?, Some(msg));
        d.finish()
    }

    #[test]
    fn rejects_oversized_and_tiny() {
        assert!(matches!(
            encode(&vec![0; MAX_NOISE_MESSAGE + 1]),
            Err(Error::Malformed(Malformed::Oversized { .. }))
        ));
        let mut d = FrameDecoder::new();
        d.push(&[0, 3, 1, 2, 3]);
        assert_eq!(d.next_message(), Err(Error::Malformed(Malformed::TooShort)));
    }
}
