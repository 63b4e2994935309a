//! Reading the plaintext record by record through age's decrypting (and seekable) stream,
//! with every failure classified: a chunk that does not authenticate, a truncated file, a
//! malformed or oversized record.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use age::stream::StreamReader;
use age::x25519::Identity;

use crate::error::RecordingError;
use crate::format::{Header, AGE_CHUNK, HEADER_LEN, MAGIC, MAGIC_PREFIX, MAX_RECORD_LEN};

/// The decrypted plaintext of a recording file.
pub(crate) type Plain = StreamReader<BufReader<File>>;

/// Opens `path` and unwraps its age header with one of `identities`.
pub(crate) fn open_stream(path: &Path, identities: &[Identity]) -> Result<Plain, RecordingError> {
    let file = File::open(path).map_err(|e| RecordingError::file(path, e))?;
    let decryptor = age::Decryptor::new_buffered(BufReader::new(file)).map_err(decrypt_error)?;
    decryptor
        .decrypt(identities.iter().map(|i| i as &dyn age::Identity))
        .map_err(decrypt_error)
}

fn decrypt_error(e: age::DecryptError) -> RecordingError {
    use age::DecryptError as E;
    RecordingError::Decrypt(match e {
        E::NoMatchingKeys => {
            "none of the given identities opens it (it is encrypted to other keys)".into()
        }
        E::InvalidHeader | E::UnknownFormat => {
            "it is not an age file, or its header is damaged".into()
        }
        E::InvalidMac => "its age header was altered (the header MAC does not match)".into(),
        other => other.to_string(),
    })
}

/// Moves `plain` to plaintext `offset`, which must not be past the end (age's reader misreads
/// a position past the end of its last chunk; callers check against what they know of the
/// length).
pub(crate) fn seek_to(plain: &mut Plain, offset: u64) -> Result<(), RecordingError> {
    let result = if offset > 0 && offset.is_multiple_of(AGE_CHUNK) {
        // A position on a chunk boundary makes age authenticate the file's length first, which
        // fails for a recording whose viewer crashed (no final chunk). Stopping one byte short
        // and reading that byte lands on the boundary without it.
        plain
            .seek(SeekFrom::Start(offset - 1))
            .and_then(|_| plain.read_exact(&mut [0u8; 1]))
    } else {
        plain.seek(SeekFrom::Start(offset)).map(|_| ())
    };
    result.map_err(|e| RecordingError::from_stream(e, offset))
}

/// One record as read, payload not yet decoded.
#[derive(Debug)]
pub(crate) struct Raw {
    pub header: Header,
    /// Plaintext offset of the record.
    pub offset: u64,
    pub payload: Vec<u8>,
}

/// Records, one after another, from a position in the plaintext.
#[derive(Debug)]
pub(crate) struct RecordReader<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> RecordReader<R> {
    /// Reads from `inner`, which is at plaintext position `pos`.
    pub fn new(inner: R, pos: u64) -> Self {
        Self { inner, pos }
    }

    /// The plaintext position: the next record's offset.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Fills `buf` as far as the data goes; how much was read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, RecordingError> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => {
                    n += k;
                    self.pos += k as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(RecordingError::from_stream(e, self.pos)),
            }
        }
        Ok(n)
    }

    /// Reads and checks the magic line.
    pub fn read_magic(&mut self) -> Result<(), RecordingError> {
        let mut m = vec![0u8; MAGIC.len()];
        let n = self.fill(&mut m)?;
        if m[..n] == *MAGIC {
            return Ok(());
        }
        if n >= MAGIC_PREFIX.len() && m.starts_with(MAGIC_PREFIX) {
            let rest = &m[MAGIC_PREFIX.len()..n];
            let version = rest.split(|b| *b == b'\n').next().unwrap_or_default();
            return Err(RecordingError::UnsupportedVersion(
                String::from_utf8_lossy(version).into_owned(),
            ));
        }
        Err(RecordingError::NotARecording)
    }

    /// The next record, or `None` where the data ends cleanly between records.
    pub fn next(&mut self) -> Result<Option<Raw>, RecordingError> {
        let offset = self.pos;
        let mut h = [0u8; HEADER_LEN];
        match self.fill(&mut h)? {
            0 => return Ok(None),
            HEADER_LEN => {}
            _ => return Err(RecordingError::Truncated { near: self.pos }),
        }
        let header = Header::parse(&h);
        if header.len > MAX_RECORD_LEN {
            return Err(RecordingError::RecordTooLarge {
                offset,
                len: u64::from(header.len),
                max: MAX_RECORD_LEN,
            });
        }
        let mut payload = vec![0u8; header.len as usize];
        if self.fill(&mut payload)? != payload.len() {
            return Err(RecordingError::Truncated { near: self.pos });
        }
        Ok(Some(Raw {
            header,
            offset,
            payload,
        }))
    }

    /// Everything up to the end, at most `max` bytes (more is an error).
    pub fn read_rest(&mut self, max: usize) -> Result<Vec<u8>, RecordingError> {
        let mut rest = vec![0u8; max + 1];
        let n = self.fill(&mut rest)?;
        if n > max {
            return Err(RecordingError::BadRecord {
                offset: self.pos,
                why: "unexpected data after the last record".into(),
            });
        }
        rest.truncate(n);
        Ok(rest)
    }
}
