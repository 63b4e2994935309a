//! The one error type of the crate. Bad input (a damaged file, a wrong key, a malformed record)
//! is always one of these, never a panic.

use std::path::PathBuf;

/// Why a recording could not be written, read, verified or exported.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Reading or writing the stream failed for another reason than the ones below.
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    /// A recipient is not an age X25519 public key.
    #[error("{0:?} is not an age X25519 recipient (a public key starting with \"age1\")")]
    BadRecipient(String),
    /// No recipient: nobody could ever read the recording.
    #[error("no recipients: a recording must be encrypted to at least one auditor key")]
    NoRecipients,
    /// An identity file holds something that is not an age X25519 identity.
    #[error("{path}, line {line}: {why}")]
    BadIdentity {
        /// The identity file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// An identity file holds no identity at all.
    #[error("{0}: no age identity (AGE-SECRET-KEY-1...) in this file")]
    NoIdentity(PathBuf),
    /// The age layer refused to encrypt.
    #[error("encryption failed: {0}")]
    Encrypt(String),
    /// The age header could not be read or none of the identities opens it.
    #[error("cannot decrypt the recording: {0}")]
    Decrypt(String),
    /// A ciphertext chunk does not authenticate: bytes were changed, dropped, added or
    /// reordered after encryption.
    #[error("the recording is damaged or was altered after encryption (age authentication failed near plaintext byte {near})")]
    Damaged {
        /// Plaintext position the reader had reached.
        near: u64,
    },
    /// The file ends before the age stream's final chunk or in the middle of a record.
    #[error("the recording is truncated (it ends near plaintext byte {near})")]
    Truncated {
        /// Plaintext position the reader had reached.
        near: u64,
    },
    /// The plaintext does not start with the magic line.
    #[error("not a Sightline recording (the decrypted data does not start with the magic line)")]
    NotARecording,
    /// A Sightline recording of a format version this build does not read.
    #[error("recording format version {0} is not supported by this build")]
    UnsupportedVersion(String),
    /// A record is malformed.
    #[error("bad record at plaintext offset {offset}: {why}")]
    BadRecord {
        /// Where the record starts in the plaintext.
        offset: u64,
        /// What is wrong.
        why: String,
    },
    /// A record is longer than the format allows.
    #[error("record at plaintext offset {offset} is {len} bytes long, over the limit of {max}")]
    RecordTooLarge {
        /// Where the record starts (for the writer: where it would have started).
        offset: u64,
        /// Its length.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// A value could not be encoded (writer side).
    #[error("cannot encode {what}: {why}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why it failed.
        why: String,
    },
    /// The recording cannot be exported as asked.
    #[error("export: {0}")]
    Export(String),
}

impl RecordingError {
    /// Classifies an error from age's stream reader, `near` the given plaintext position: age
    /// reports a chunk that does not authenticate as `InvalidData` and a missing final chunk as
    /// `UnexpectedEof`.
    pub(crate) fn from_stream(e: std::io::Error, near: u64) -> Self {
        match e.kind() {
            std::io::ErrorKind::InvalidData => RecordingError::Damaged { near },
            std::io::ErrorKind::UnexpectedEof => RecordingError::Truncated { near },
            _ => RecordingError::Io(e),
        }
    }

    /// A file error with its path.
    pub(crate) fn file(path: &std::path::Path, source: std::io::Error) -> Self {
        RecordingError::File {
            path: path.to_path_buf(),
            source,
        }
    }
}
