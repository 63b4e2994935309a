//! What the relay does with one uploaded piece of a recording, and when a segment of the file
//! is closed for the audit log, decided without I/O.
//!
//! The file only grows at its end: a piece that starts where the stored bytes end is appended;
//! one that lies wholly within them is a resend (a reply that was lost) and is acknowledged
//! without writing; one that would leave a hole or rewrite stored bytes is refused, and so is
//! any piece with bytes once the last piece is stored (even a resend: the recording is closed,
//! and its uploader learns its size from `Attached`). An empty piece is a keepalive.
//!
//! Segments: the audit log vouches for the file a segment at a time, so that it gets an entry
//! every few seconds of upload rather than one per message. A segment is closed once it holds
//! [`SEGMENT_BYTES`], once [`SEGMENT_TIME`] passed since its first byte, and at the end.

use sightline_core::relay_proto::MAX_RECORDING_CHUNK;
use std::time::{Duration, Instant};

/// A segment is closed once it holds this many bytes (the piece that reaches it included).
pub const SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
/// ... or this long after its first byte.
pub const SEGMENT_TIME: Duration = Duration::from_secs(10);

/// Why a piece is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Longer than [`MAX_RECORDING_CHUNK`].
    #[error("a recording piece holds at most {MAX_RECORDING_CHUNK} bytes, this one {0}")]
    TooLong(usize),
    /// It starts past the end of what is stored.
    #[error(
        "the piece starts at byte {offset} but the relay holds {stored}: that would leave a hole"
    )]
    Hole {
        /// Where it starts.
        offset: u64,
        /// Bytes stored.
        stored: u64,
    },
    /// It overlaps the end of what is stored without matching it.
    #[error("the piece from byte {offset} overlaps the {stored} bytes stored; stored bytes are never rewritten")]
    Overlap {
        /// Where it starts.
        offset: u64,
        /// Bytes stored.
        stored: u64,
    },
    /// The recording is complete.
    #[error("the recording is complete ({stored} bytes); nothing can follow its last piece")]
    Complete {
        /// Its size.
        stored: u64,
    },
}

/// What to do with a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Append it; `last`: the recording is complete after it.
    Append {
        /// Nothing follows.
        last: bool,
    },
    /// Already stored (or empty): acknowledge only; `complete`: it is the last piece and the
    /// recording is complete now (it was stored but not yet marked complete).
    Acknowledge {
        /// Mark the recording complete.
        complete: bool,
    },
}

/// Judges the piece `offset..offset + len` (`last`: nothing follows) of a recording of which
/// `stored` bytes are held and that is (`complete`) or is not complete.
pub fn judge(
    stored: u64,
    complete: bool,
    offset: u64,
    len: usize,
    last: bool,
) -> Result<Verdict, Refusal> {
    if len > MAX_RECORDING_CHUNK {
        return Err(Refusal::TooLong(len));
    }
    let end = offset
        .checked_add(len as u64)
        .ok_or(Refusal::Hole { offset, stored })?;
    if complete && len > 0 {
        return Err(Refusal::Complete { stored });
    }
    if offset > stored {
        return Err(Refusal::Hole { offset, stored });
    }
    if end <= stored {
        // A resend or a keepalive. A last piece that ends short of what is stored would make
        // the recording end before its own bytes.
        if last && !complete && end != stored {
            return Err(Refusal::Overlap { offset, stored });
        }
        return Ok(Verdict::Acknowledge {
            complete: last && !complete,
        });
    }
    if offset < stored {
        return Err(Refusal::Overlap { offset, stored });
    }
    Ok(Verdict::Append { last })
}

/// The segment being filled: where it starts, how long it is, since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    /// Its first byte in the file.
    pub start: u64,
    /// Bytes in it.
    pub len: u64,
    /// When its first byte arrived (`None`: empty).
    pub since: Option<Instant>,
}

impl Open {
    /// An empty segment starting at `start`.
    pub fn at(start: u64) -> Self {
        Self {
            start,
            len: 0,
            since: None,
        }
    }

    /// `n` more bytes arrived at `now`.
    pub fn grow(&mut self, n: u64, now: Instant) {
        if n > 0 && self.since.is_none() {
            self.since = Some(now);
        }
        self.len = self.len.saturating_add(n);
    }

    /// When it must be closed at the latest, if it holds anything.
    pub fn deadline(&self) -> Option<Instant> {
        self.since.map(|t| t + SEGMENT_TIME)
    }

    /// Whether it is due at `now`: full, or old enough.
    pub fn due(&self, now: Instant) -> bool {
        self.len > 0 && (self.len >= SEGMENT_BYTES || self.deadline().is_some_and(|d| now >= d))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const MAX: usize = MAX_RECORDING_CHUNK;

    #[test]
    fn the_next_piece_is_appended_and_a_stored_one_acknowledged() {
        assert_eq!(
            judge(0, false, 0, 10, false),
            Ok(Verdict::Append { last: false })
        );
        assert_eq!(
            judge(10, false, 10, MAX, true),
            Ok(Verdict::Append { last: true })
        );
        let ack = Ok(Verdict::Acknowledge { complete: false });
        assert_eq!(judge(100, false, 0, 10, false), ack, "resend");
        assert_eq!(
            judge(100, false, 90, 10, false),
            ack,
            "resend of the last piece"
        );
        assert_eq!(judge(100, false, 100, 0, false), ack, "keepalive");
        assert_eq!(
            judge(100, true, 100, 0, false),
            ack,
            "keepalive after the end"
        );
        assert_eq!(
            judge(100, true, 100, 0, true),
            ack,
            "an empty last piece again"
        );
    }

    #[test]
    fn holes_overlaps_and_oversize_pieces_are_refused() {
        assert_eq!(
            judge(0, false, 0, MAX + 1, false),
            Err(Refusal::TooLong(MAX + 1))
        );
        assert_eq!(
            judge(10, false, 11, 5, false),
            Err(Refusal::Hole {
                offset: 11,
                stored: 10
            })
        );
        assert_eq!(
            judge(10, false, 11, 0, false),
            Err(Refusal::Hole {
                offset: 11,
                stored: 10
            }),
            "a keepalive claiming more than is stored"
        );
        assert_eq!(
            judge(10, false, 5, 10, false),
            Err(Refusal::Overlap {
                offset: 5,
                stored: 10
            })
        );
        assert!(judge(10, false, u64::MAX, 5, false).is_err(), "no overflow");
        assert_eq!(
            judge(10, true, 10, 1, false),
            Err(Refusal::Complete { stored: 10 })
        );
        assert_eq!(
            judge(10, true, 5, 5, true),
            Err(Refusal::Complete { stored: 10 }),
            "bytes after the end, even stored ones"
        );
        assert_eq!(
            judge(10, false, 0, 5, true),
            Err(Refusal::Overlap {
                offset: 0,
                stored: 10
            }),
            "a last piece that ends before the stored bytes"
        );
    }

    #[test]
    fn a_last_piece_already_stored_completes_the_recording() {
        assert_eq!(
            judge(10, false, 5, 5, true),
            Ok(Verdict::Acknowledge { complete: true })
        );
        assert_eq!(
            judge(10, false, 10, 0, true),
            Ok(Verdict::Acknowledge { complete: true }),
            "an empty last piece"
        );
    }

    #[test]
    fn segments_close_when_full_or_old() {
        let t0 = Instant::now();
        let mut s = Open::at(100);
        assert!(!s.due(t0 + SEGMENT_TIME * 2), "empty: never due");
        assert_eq!(s.deadline(), None);
        s.grow(0, t0);
        assert_eq!(s.deadline(), None, "a keepalive starts no segment");
        s.grow(10, t0);
        assert_eq!(s.deadline(), Some(t0 + SEGMENT_TIME));
        assert!(!s.due(t0 + Duration::from_secs(9)));
        assert!(s.due(t0 + SEGMENT_TIME));
        let mut full = Open::at(0);
        full.grow(SEGMENT_BYTES, t0);
        assert!(full.due(t0));
    }
}
