//! A byte stream carrying length-prefixed Noise messages.

use sightline_core::frame::FrameDecoder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Errors of the framed stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The socket failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent a frame that is not a Noise message.
    #[error(transparent)]
    Protocol(#[from] sightline_core::Error),
}

/// A stream with a frame decoder.
#[derive(Debug)]
pub struct FramedStream<S> {
    inner: S,
    decoder: FrameDecoder,
    read: u64,
    written: u64,
}

impl<S: AsyncRead + AsyncWrite + Unpin> FramedStream<S> {
    /// Wraps a connected stream.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            decoder: FrameDecoder::new(),
            read: 0,
            written: 0,
        }
    }

    /// Wraps a stream whose first bytes were already read into `leftover`.
    pub fn with_leftover(inner: S, leftover: &[u8]) -> Self {
        let mut decoder = FrameDecoder::new();
        decoder.push(leftover);
        Self {
            inner,
            decoder,
            read: leftover.len() as u64,
            written: 0,
        }
    }

    /// Reads the next Noise message. `Ok(None)` at a clean end of stream; a stream that ends
    /// inside a frame is [`sightline_core::Error::Truncated`]. Cancel-safe: bytes read are kept
    /// in the decoder.
    pub async fn read_message(&mut self) -> Result<Option<Vec<u8>>, StreamError> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(m) = self.decoder.next_message()? {
                return Ok(Some(m));
            }
            let n = self.inner.read(&mut buf).await?;
            if n == 0 {
                self.decoder.finish()?;
                return Ok(None);
            }
            self.read = self.read.saturating_add(n as u64);
            self.decoder.push(&buf[..n]);
        }
    }

    /// Writes already framed bytes and flushes.
    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        self.inner.write_all(bytes).await?;
        self.written = self.written.saturating_add(bytes.len() as u64);
        self.inner.flush().await?;
        Ok(())
    }

    /// Bytes read from and written to the stream so far (framing and encryption included).
    pub fn byte_counts(&self) -> (u64, u64) {
        (self.read, self.written)
    }

    /// Returns the stream and any bytes read beyond the last returned message.
    pub fn into_parts(self) -> (S, Vec<u8>) {
        (self.inner, self.decoder.into_remainder())
    }

    /// The same stream, boxed as a [`BoxIo`], with what was read and counted so far.
    pub fn boxed(self) -> FramedStream<BoxIo>
    where
        S: Io,
    {
        FramedStream {
            inner: Box::new(self.inner),
            decoder: self.decoder,
            read: self.read,
            written: self.written,
        }
    }

    /// Shuts down the write half.
    pub async fn shutdown(&mut self) -> Result<(), StreamError> {
        self.inner.shutdown().await?;
        Ok(())
    }
}

/// Any byte stream a connection runs over: plain TCP, TLS, a WebSocket, or any of them through
/// an HTTP proxy. The Noise channel inside is the same on each.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A connection's byte stream, whatever the transport.
pub type BoxIo = Box<dyn Io>;

impl std::fmt::Debug for dyn Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Io")
    }
}
