//! Writing a recording while the session runs: records go through age's STREAM encryption
//! into an in-memory buffer that the caller drains ([`Writer::take_ciphertext`]) and uploads.
//! Nothing is written in plaintext anywhere.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use age::stream::StreamWriter;
use sightline_core::messages::{InputEvent, Message, VideoCodec};

use crate::error::RecordingError;
use crate::format::{self, kind, AGE_CHUNK, HEADER_LEN, MAGIC, MAX_RECORD_LEN};
use crate::index::{ConfigEntry, Index, KeyframeEntry};
use crate::item::{self, StateChange};
use crate::meta::{self, Meta};

/// What to record.
#[derive(Debug, Clone, Copy)]
pub enum Record<'a> {
    /// A message from the agent, as received.
    Agent(&'a Message),
    /// The operator's input (recorded only when the Meta says `include_input`).
    Input(&'a InputEvent),
    /// The end of the recording (also written by [`Writer::finish`] if not pushed).
    End {
        /// Why it ended.
        reason: &'a str,
    },
}

/// The ciphertext sink: age writes into it, [`Writer::take_ciphertext`] drains it.
#[derive(Debug, Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    fn take(&self) -> Vec<u8> {
        // A poisoned lock only means another holder panicked; the bytes are still whole.
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A recording being written.
pub struct Writer {
    stream: StreamWriter<SharedBuf>,
    sink: SharedBuf,
    include_input: bool,
    /// Plaintext bytes written so far (the next record's offset).
    offset: u64,
    /// The latest `at_us`; records never go back in time.
    last_at: u64,
    ended: bool,
    index: Index,
    /// Input events as written (JSON), for the index.
    inputs: Vec<(u64, Vec<u8>)>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("plaintext_bytes", &self.offset)
            .field("video_bytes", &self.index.video_bytes)
            .field("records", &self.index.records)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts a recording encrypted to `recipients`: the age header, the magic line and the
    /// Meta record.
    pub fn new(
        recipients: &[age::x25519::Recipient],
        meta: &Meta,
    ) -> Result<Writer, RecordingError> {
        if recipients.is_empty() {
            return Err(RecordingError::NoRecipients);
        }
        let encryptor =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| RecordingError::Encrypt(e.to_string()))?;
        let sink = SharedBuf::default();
        let mut stream = encryptor
            .wrap_output(sink.clone())
            .map_err(|e| RecordingError::Encrypt(e.to_string()))?;
        stream.write_all(MAGIC).map_err(RecordingError::Io)?;
        let mut w = Writer {
            stream,
            sink,
            include_input: meta.include_input,
            offset: MAGIC.len() as u64,
            last_at: 0,
            ended: false,
            index: Index::default(),
            inputs: Vec::new(),
        };
        w.record(kind::META, 0, &[&meta::encode(meta)?])?;
        Ok(w)
    }

    /// Records `record` at `at_us` microseconds since the recording started (an earlier time
    /// than the last record's is raised to it, so that times never go back). Agent messages
    /// other than video, cursor, session events, checkpoints, control/consent/pause state and
    /// close are ignored (pings, acks, rates); so is input when the Meta excludes it. A refused
    /// record (too large) leaves nothing written.
    pub fn push(&mut self, at_us: u64, record: Record<'_>) -> Result<(), RecordingError> {
        let at = at_us.max(self.last_at);
        match record {
            Record::Agent(msg) => self.agent(at, msg),
            Record::Input(ev) => {
                if !self.include_input {
                    return Ok(());
                }
                let json = item::input(ev)?;
                self.record(kind::INPUT, at, &[&json])?;
                self.inputs.push((at, json));
                Ok(())
            }
            Record::End { reason } => {
                self.record(kind::END, at, &[&item::end(reason)?])?;
                self.ended = true;
                Ok(())
            }
        }
    }

    fn agent(&mut self, at: u64, msg: &Message) -> Result<(), RecordingError> {
        let state = |s: StateChange| item::state(&s);
        match msg {
            Message::VideoConfig {
                codec: VideoCodec::Av1,
                width,
                height,
            } => {
                let offset = self.offset;
                self.record(kind::VIDEO_CONFIG, at, &[&item::config(*width, *height)])?;
                self.index.configs.push(ConfigEntry {
                    at_us: at,
                    offset,
                    width: *width,
                    height: *height,
                });
            }
            Message::VideoPacket {
                seq,
                capture_us,
                keyframe,
                data,
            } => {
                let offset = self.offset;
                let head = item::packet_header(*seq, *capture_us, *keyframe);
                self.record(kind::VIDEO_PACKET, at, &[&head, data])?;
                self.index.video_packets += 1;
                self.index.video_bytes += data.len() as u64;
                if *keyframe {
                    self.index.keyframes.push(KeyframeEntry {
                        at_us: at,
                        offset,
                        seq: *seq,
                    });
                }
            }
            Message::Cursor {
                x,
                y,
                visible,
                shape,
            } => self.record(
                kind::CURSOR,
                at,
                &[&item::cursor(*x, *y, *visible, shape.as_ref())],
            )?,
            Message::SessionEvent(ev) => {
                self.record(kind::SESSION_EVENT, at, &[&item::event(ev)?])?
            }
            Message::MediaCheckpoint(cp) => {
                self.record(kind::CHECKPOINT, at, &[&item::checkpoint(cp)?])?
            }
            Message::Control { granted } => {
                let p = state(StateChange::Control { granted: *granted })?;
                self.record(kind::STATE, at, &[&p])?
            }
            Message::ConsentPending { what } => {
                let what = match what {
                    sightline_core::messages::ConsentFor::Viewing => "viewing",
                    sightline_core::messages::ConsentFor::Control => "control",
                };
                let p = state(StateChange::ConsentPending { what: what.into() })?;
                self.record(kind::STATE, at, &[&p])?
            }
            Message::SharingPaused { reason } => {
                let p = state(StateChange::Paused {
                    reason: reason.to_string(),
                })?;
                self.record(kind::STATE, at, &[&p])?
            }
            Message::SharingResumed => {
                self.record(kind::STATE, at, &[&state(StateChange::Resumed)?])?
            }
            Message::ControlWithdrawn { reason } => {
                let p = state(StateChange::ControlWithdrawn {
                    reason: reason.to_string(),
                })?;
                self.record(kind::STATE, at, &[&p])?
            }
            Message::Close { reason } => {
                let p = state(StateChange::Closed {
                    reason: reason.to_string(),
                })?;
                self.record(kind::STATE, at, &[&p])?
            }
            // Not part of what happened on the screen: liveness, flow control, the viewer's
            // own requests, and input (recorded through `Record::Input`).
            Message::Hello { .. }
            | Message::Ping { .. }
            | Message::Pong { .. }
            | Message::KeyframeRequest
            | Message::Input(_)
            | Message::ControlRequest
            | Message::EndRequest
            | Message::VideoAck { .. }
            | Message::SendRate { .. } => {}
        }
        Ok(())
    }

    /// Writes one record made of `parts`.
    fn record(&mut self, kind: u8, at: u64, parts: &[&[u8]]) -> Result<(), RecordingError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let len = u32::try_from(len)
            .ok()
            .filter(|l| *l <= MAX_RECORD_LEN)
            .ok_or(RecordingError::RecordTooLarge {
                offset: self.offset,
                len: len as u64,
                max: MAX_RECORD_LEN,
            })?;
        self.stream
            .write_all(&format::header(kind, at, len))
            .map_err(RecordingError::Io)?;
        for p in parts {
            self.stream.write_all(p).map_err(RecordingError::Io)?;
        }
        self.offset += (HEADER_LEN + len as usize) as u64;
        self.last_at = at;
        self.index.records += 1;
        Ok(())
    }

    /// Completes the current 64 KiB age chunk with a Padding record, so that everything pushed
    /// so far is in the ciphertext that [`Writer::take_ciphertext`] returns (age holds back a
    /// chunk until it is full and more data follows). Costs up to one chunk of padding: call it
    /// rarely (for example when the stream has been quiet for a few seconds), to bound what a
    /// crash of the viewer loses.
    pub fn pad_to_chunk(&mut self) -> Result<(), RecordingError> {
        // Age encrypts a full chunk once the first byte of the next one is written, so the
        // padding ends at least one byte into the next chunk (a chunk that is already full
        // needs only the smallest record).
        let used = self.offset % AGE_CHUNK;
        let mut fill = if used == 0 {
            HEADER_LEN as u64
        } else {
            AGE_CHUNK - used + 1
        };
        if fill < HEADER_LEN as u64 {
            fill += AGE_CHUNK;
        }
        let zeros = vec![0u8; (fill - HEADER_LEN as u64) as usize];
        self.record(kind::PADDING, self.last_at, &[&zeros])
    }

    /// The ciphertext produced since the last call (the age header first); may be empty.
    pub fn take_ciphertext(&mut self) -> Vec<u8> {
        self.sink.take()
    }

    /// Writes End (unless one was pushed), the Index and the footer, finishes the age stream;
    /// the remaining ciphertext.
    pub fn finish(mut self, reason: &str) -> Result<Vec<u8>, RecordingError> {
        if !self.ended {
            let at = self.last_at;
            self.push(at, Record::End { reason })?;
        }
        self.index.duration_us = self.last_at;
        let index_offset = self.offset;
        let payload = self.index.encode(&self.inputs)?;
        self.record(kind::INDEX, self.last_at, &[&payload])?;
        let footer = format::footer(index_offset, self.offset);
        self.stream.write_all(&footer).map_err(RecordingError::Io)?;
        let sink = self.stream.finish().map_err(RecordingError::Io)?;
        Ok(sink.take())
    }

    /// Plaintext bytes recorded so far.
    pub fn plaintext_bytes(&self) -> u64 {
        self.offset
    }

    /// Bytes of video packet data recorded so far.
    pub fn video_bytes(&self) -> u64 {
        self.index.video_bytes
    }
}
