//! One session's recording as it is uploaded: the file (opened at the first byte), what it
//! holds, the running SHA-256 of the whole file and of the open segment. [`Recorder::chunk`]
//! judges a piece ([`super::rules`]), appends it durably and says what the audit log must now
//! hear (the first byte, a closed segment, the completion); the caller writes that
//! ([`super::started`], [`super::segment`], [`super::completed`]).
//!
//! A recorder can be taken up from disk ([`Recorder::open`]): the bytes past the row's last
//! segment (written, but not yet in the audit log) start the open segment again, so no byte
//! goes unaccounted after a failure. Blocking I/O: call it off the async threads.

use super::file::{self, FileError};
use super::rules::{self, Open, Refusal, Verdict};
use super::{Recording, Segment};
use crate::store::paths::DataDir;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

/// Why a piece was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// The uploader sent something the rules refuse.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The file could not be written.
    #[error(transparent)]
    File(#[from] FileError),
}

/// What the audit log must hear after a piece.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Bytes stored now.
    pub stored: u64,
    /// The first bytes arrived with this piece.
    pub started: bool,
    /// Segments closed by this piece.
    pub segment: Option<Segment>,
    /// The recording is complete now: its size and SHA-256 (hex).
    pub completed: Option<(u64, String)>,
}

/// A session's recording being uploaded.
#[derive(Debug)]
pub struct Recorder {
    path: PathBuf,
    file: Option<File>,
    stored: u64,
    complete: bool,
    started: bool,
    whole: Sha256,
    open: Open,
    segment: Sha256,
    next_segment: u32,
}

impl Recorder {
    /// The recording of `session` in `data`, as its row (`None`: nothing on record) and file
    /// say. Bytes of the file beyond the row's segments are hashed into the open segment.
    pub fn open(
        data: &DataDir,
        session: &str,
        row: Option<&Recording>,
        now: Instant,
    ) -> Result<Self, FileError> {
        let path = data.recording(session);
        let on_disk = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(FileError { path, source }),
        };
        let audited = row.map_or(0, |r| r.bytes).min(on_disk);
        let mut r = Self {
            path,
            file: None,
            stored: on_disk,
            complete: row.is_some_and(|r| r.complete),
            started: row.is_some(),
            whole: Sha256::new(),
            open: Open::at(audited),
            segment: Sha256::new(),
            next_segment: row.map_or(0, |r| r.segments),
        };
        if on_disk > 0 {
            file::hash_ranges(
                &r.path,
                on_disk,
                &mut [(0, &mut r.whole), (audited, &mut r.segment)],
            )?;
            r.open.grow(on_disk - audited, now);
        }
        Ok(r)
    }

    /// Bytes stored.
    pub fn stored(&self) -> u64 {
        self.stored
    }

    /// Whether the last piece is stored.
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// When the open segment must be closed, if it holds anything.
    pub fn segment_deadline(&self) -> Option<Instant> {
        self.open.deadline()
    }

    /// Handles the piece `data` at `offset` (`last`: nothing follows) arriving at `now`.
    pub fn chunk(
        &mut self,
        offset: u64,
        data: &[u8],
        last: bool,
        now: Instant,
    ) -> Result<Report, ChunkError> {
        let verdict = rules::judge(self.stored, self.complete, offset, data.len(), last)?;
        let mut report = Report::default();
        let finish = match verdict {
            Verdict::Acknowledge { complete } => complete,
            Verdict::Append { last } => {
                let file = match &mut self.file {
                    Some(f) => f,
                    None => {
                        let (f, len) = file::open_append(&self.path)?;
                        if len != self.stored {
                            // Someone else wrote to it: never append after bytes unaccounted.
                            return Err(FileError {
                                path: self.path.clone(),
                                source: std::io::Error::other(format!(
                                    "the file holds {len} bytes, the relay expected {}",
                                    self.stored
                                )),
                            }
                            .into());
                        }
                        self.file.insert(f)
                    }
                };
                file::append(file, &self.path, data)?;
                self.stored += data.len() as u64;
                self.whole.update(data);
                self.segment.update(data);
                self.open.grow(data.len() as u64, now);
                if !self.started {
                    self.started = true;
                    report.started = true;
                }
                last
            }
        };
        report.segment = if finish {
            self.close_segment()
        } else {
            self.close_due(now)
        };
        if finish {
            self.complete = true;
            self.file = None;
            let sha = hex::encode(self.whole.clone().finalize());
            report.completed = Some((self.stored, sha));
        }
        report.stored = self.stored;
        Ok(report)
    }

    /// Closes the open segment if it is due at `now`.
    pub fn close_due(&mut self, now: Instant) -> Option<Segment> {
        if self.open.due(now) {
            self.close_segment()
        } else {
            None
        }
    }

    /// Closes the open segment now, if it holds anything (the uploader left, the end).
    pub fn close_segment(&mut self) -> Option<Segment> {
        if self.open.len == 0 {
            return None;
        }
        let s = Segment {
            segment: self.next_segment,
            offset: self.open.start,
            length: self.open.len,
            sha256: hex::encode(std::mem::take(&mut self.segment).finalize()),
        };
        self.next_segment = self.next_segment.saturating_add(1);
        self.open = Open::at(self.stored);
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::store::recordings::rules::SEGMENT_TIME;

    const ID: &str = "00112233445566778899aabbccddeeff";

    fn sha(b: &[u8]) -> String {
        hex::encode(Sha256::digest(b))
    }

    #[test]
    fn pieces_segments_and_completion() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let t0 = Instant::now();
        let mut r = Recorder::open(&data, ID, None, t0).unwrap();
        assert_eq!((r.stored(), r.complete()), (0, false));
        let first = r.chunk(0, b"abc", false, t0).unwrap();
        assert!(first.started && first.segment.is_none());
        assert_eq!(first.stored, 3);
        // A resend and a keepalive write nothing; a hole is refused.
        assert_eq!(r.chunk(0, b"abc", false, t0).unwrap().stored, 3);
        assert_eq!(r.chunk(3, b"", false, t0).unwrap().stored, 3);
        assert!(matches!(
            r.chunk(4, b"x", false, t0),
            Err(ChunkError::Refused(Refusal::Hole { .. }))
        ));
        // Ten seconds after the segment's first byte, the next message closes it.
        let later = t0 + SEGMENT_TIME;
        let second = r.chunk(3, b"def", false, later).unwrap();
        assert_eq!(
            second.segment,
            Some(Segment {
                segment: 0,
                offset: 0,
                length: 6,
                sha256: sha(b"abcdef")
            })
        );
        let end = r.chunk(6, b"gh", true, later).unwrap();
        assert_eq!(
            end.segment,
            Some(Segment {
                segment: 1,
                offset: 6,
                length: 2,
                sha256: sha(b"gh")
            })
        );
        assert_eq!(end.completed, Some((8, sha(b"abcdefgh"))));
        assert!(
            r.chunk(8, b"i", false, later).is_err(),
            "nothing after the end"
        );
        assert_eq!(std::fs::read(data.recording(ID)).unwrap(), b"abcdefgh");
    }

    #[test]
    fn taken_up_from_disk_the_unaudited_tail_opens_the_segment() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let t0 = Instant::now();
        let mut r = Recorder::open(&data, ID, None, t0).unwrap();
        r.chunk(0, b"0123", false, t0).unwrap();
        let seg = r.close_segment().unwrap();
        r.chunk(4, b"4567", false, t0).unwrap();
        drop(r);
        let row = Recording {
            session: ID.into(),
            operator: "alice".into(),
            created_at: 1,
            bytes: seg.length,
            segments: 1,
            complete: false,
            completed_at: None,
            sha256: None,
            last_activity: 1,
        };
        let mut again = Recorder::open(&data, ID, Some(&row), t0).unwrap();
        assert_eq!(again.stored(), 8);
        let end = again.chunk(8, b"89", true, t0).unwrap();
        assert!(!end.started, "started before");
        assert_eq!(
            end.segment,
            Some(Segment {
                segment: 1,
                offset: 4,
                length: 6,
                sha256: sha(b"456789")
            })
        );
        assert_eq!(end.completed, Some((10, sha(b"0123456789"))));
    }
}
