//! The plaintext layout's constants (magic line, record kinds, footer, limits) and the byte
//! helpers that read and write its fields. The layout itself is described in the crate's
//! header and in `docs/recording-format.md`.

use crate::error::RecordingError;

/// First bytes of the plaintext. The version is part of the line: a reader that finds another
/// version refuses the file instead of misreading it.
pub const MAGIC: &[u8] = b"sightline recording v1\n";
/// What every magic line starts with, whatever its version.
pub const MAGIC_PREFIX: &[u8] = b"sightline recording v";
/// The format version written in the magic line and in the Meta record.
pub const FORMAT_VERSION: u32 = 1;

/// Record header: kind u8, at_us u64 LE, len u32 LE.
pub const HEADER_LEN: usize = 13;
/// Longest record payload. Larger lengths are an error, never an allocation: a damaged length
/// field cannot make a reader allocate gigabytes.
pub const MAX_RECORD_LEN: u32 = 16 * 1024 * 1024;

/// Footer: `FOOTER_MAGIC`, the Index record's offset (u64 LE), the footer's own offset (u64 LE).
pub const FOOTER_MAGIC: &[u8; 8] = b"SLRINDEX";
/// Size of the footer, the last bytes of the plaintext.
pub const FOOTER_LEN: usize = 24;

/// age encrypts the plaintext in chunks of this many bytes (each followed by a 16-byte tag).
pub const AGE_CHUNK: u64 = 64 * 1024;

/// Record kinds. Readers skip kinds they do not know.
pub mod kind {
    /// Session metadata, JSON; the first record.
    pub const META: u8 = 1;
    /// Picture format: width u32, height u32.
    pub const VIDEO_CONFIG: u8 = 2;
    /// One AV1 temporal unit: seq u64, capture_us u64, keyframe u8, data.
    pub const VIDEO_PACKET: u8 = 3;
    /// Pointer position and shape.
    pub const CURSOR: u8 = 4;
    /// The operator's input event, JSON.
    pub const INPUT: u8 = 5;
    /// An agent-signed session event, postcard `SignedEvent`.
    pub const SESSION_EVENT: u8 = 6;
    /// A media checkpoint, postcard `SignedCheckpoint`.
    pub const CHECKPOINT: u8 = 7;
    /// Control, consent, pause state, JSON.
    pub const STATE: u8 = 8;
    /// End of the recording, JSON `{"reason": ...}`.
    pub const END: u8 = 9;
    /// The trailer index; the last record.
    pub const INDEX: u8 = 10;
    /// Filler that completes an age chunk (see `Writer::pad_to_chunk`); skipped by readers.
    pub const PADDING: u8 = 11;
}

/// Builds a record header.
pub fn header(kind: u8, at_us: u64, len: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = kind;
    h[1..9].copy_from_slice(&at_us.to_le_bytes());
    h[9..13].copy_from_slice(&len.to_le_bytes());
    h
}

/// A record header as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Record kind.
    pub kind: u8,
    /// Microseconds since the recording started.
    pub at_us: u64,
    /// Payload length.
    pub len: u32,
}

impl Header {
    /// Parses the 13 header bytes.
    pub fn parse(b: &[u8; HEADER_LEN]) -> Header {
        let mut at = [0u8; 8];
        at.copy_from_slice(&b[1..9]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&b[9..13]);
        Header {
            kind: b[0],
            at_us: u64::from_le_bytes(at),
            len: u32::from_le_bytes(len),
        }
    }
}

/// The footer's bytes.
pub fn footer(index_offset: u64, footer_offset: u64) -> [u8; FOOTER_LEN] {
    let mut f = [0u8; FOOTER_LEN];
    f[..8].copy_from_slice(FOOTER_MAGIC);
    f[8..16].copy_from_slice(&index_offset.to_le_bytes());
    f[16..24].copy_from_slice(&footer_offset.to_le_bytes());
    f
}

/// Parses a footer: (index offset, footer offset), or `None` if these bytes are not one.
pub fn parse_footer(b: &[u8]) -> Option<(u64, u64)> {
    if b.len() != FOOTER_LEN || &b[..8] != FOOTER_MAGIC {
        return None;
    }
    let mut r = Bytes::new(&b[8..], 0);
    Some((r.u64().ok()?, r.u64().ok()?))
}

/// A bounds-checked reader over one record's payload; every shortfall is a typed error that
/// names the record's offset.
#[derive(Debug)]
pub struct Bytes<'a> {
    buf: &'a [u8],
    offset: u64,
}

impl<'a> Bytes<'a> {
    /// Reads `buf`, the payload of the record at plaintext `offset` (for error messages).
    pub fn new(buf: &'a [u8], offset: u64) -> Self {
        Self { buf, offset }
    }

    /// An error about this record.
    pub fn bad(&self, why: impl Into<String>) -> RecordingError {
        RecordingError::BadRecord {
            offset: self.offset,
            why: why.into(),
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], RecordingError> {
        if self.buf.len() < n {
            return Err(self.bad(format!(
                "payload too short: {n} more bytes needed, {} left",
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordingError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// A byte.
    pub fn u8(&mut self) -> Result<u8, RecordingError> {
        Ok(self.array::<1>()?[0])
    }

    /// A little-endian u16.
    pub fn u16(&mut self) -> Result<u16, RecordingError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32, RecordingError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> Result<u64, RecordingError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A little-endian IEEE 754 single.
    pub fn f32(&mut self) -> Result<f32, RecordingError> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    /// A flag byte: 0 or 1, anything else is an error.
    pub fn flag(&mut self) -> Result<bool, RecordingError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.bad(format!("flag byte is {v}, not 0 or 1"))),
        }
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails if anything is left (fixed-size payloads).
    pub fn end(&self) -> Result<(), RecordingError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.bad(format!("{} unexpected bytes at the end", self.buf.len())))
        }
    }
}
