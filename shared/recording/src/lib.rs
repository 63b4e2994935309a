//! Session recordings (issue 17): the viewer records the AV1 packets exactly as received (no
//! re-encoding), the cursor, the operator's input, the session's metadata and the agent's signed
//! session events and media checkpoints into one file encrypted with [age] to the auditors'
//! X25519 keys. The ciphertext goes to the relay while the session runs; `age -d -i KEYFILE`
//! decrypts a recording with nothing but the standard tool.
//!
//! - [`Writer`]: records as the session runs and hands out ciphertext to upload;
//! - [`Recording`]: opens a file for playback (index through the footer, seeking inside the
//!   age stream) and reads its [`Item`]s;
//! - [`verify()`]: checks a recording against the agent's signatures;
//! - [`export`]: WebM, IVF and the input log.
//!
//! # Format (version 1)
//!
//! The file is **one age file** (X25519 recipients, the age v1 format; age encrypts the
//! plaintext in 64 KiB chunks, each authenticated, the last one marked). Its plaintext is:
//!
//! ```text
//! magic     "sightline recording v1\n"                        (23 bytes)
//! records   kind u8 | at_us u64 LE | len u32 LE | payload     (13-byte header + len bytes)
//!           ... Meta first, then the session in order, End, Index last
//! footer    "SLRINDEX" | index offset u64 LE | footer offset u64 LE   (24 bytes)
//! ```
//!
//! `at_us` is microseconds since the recording started (viewer clock), never decreasing.
//! Offsets are positions in the plaintext. A payload is at most 16 MiB ([`MAX_RECORD_LEN`]);
//! a longer length is an error, never an allocation. Readers skip kinds they do not know.
//!
//! | kind | name | payload |
//! | ---: | --- | --- |
//! | 1 | Meta | JSON: `format` (1), `session_id` (32 hex), `operator`, `display_name`, `organisation`, `relay`, `agent_key_spki` (hex DER), `agent_fingerprint` (64 hex, SHA-256 of the DER), `started_unix_us`, `include_input`, `software` |
//! | 2 | VideoConfig | width u32, height u32 (AV1) |
//! | 3 | VideoPacket | seq u64, capture_us u64, keyframe u8 (0/1), data (one AV1 temporal unit, as received) |
//! | 4 | Cursor | x f32, y f32, visible u8, has_shape u8, then if 1: width u16, height u16, hot_x u16, hot_y u16, RGBA (width × height × 4) |
//! | 5 | Input | JSON: the operator's `InputEvent` (serde's external tagging, e.g. `{"Key":{"key":"KeyA","pressed":true}}`) |
//! | 6 | SessionEvent | postcard `SignedEvent` (as the agent signed it) |
//! | 7 | Checkpoint | postcard `SignedCheckpoint` (as the agent signed it) |
//! | 8 | State | JSON [`StateChange`]: `{"control":{"granted":true}}`, `{"consent_pending":{"what":"control"}}`, `{"paused":{"reason":"…"}}`, `"resumed"`, `{"control_withdrawn":{"reason":"…"}}`, `{"closed":{"reason":"…"}}` |
//! | 9 | End | JSON `{"reason":"…"}` |
//! | 10 | Index | see below; the last record |
//! | 11 | Padding | zeros, skipped (completes an age chunk, [`Writer::pad_to_chunk`]) |
//!
//! Index payload (little-endian): `flags u8` (bit 0: inputs listed), `duration_us u64`,
//! `records u64` (before the Index), `video_packets u64`, `video_bytes u64`, then
//! `n u32` keyframes of `{at_us u64, offset u64, seq u64}`, `n u32` picture formats of
//! `{at_us u64, offset u64, width u32, height u32}`, `n u32` inputs of
//! `{at_us u64, len u32, InputEvent JSON}`. Inputs that would pass the record limit are left
//! out (bit 0 clear) and a reader collects them by scanning.
//!
//! A reader seeks to the end through age's seekable stream (which authenticates the last
//! chunk), reads the footer, checks that its own offset is the plaintext length − 24 and that
//! the Index record ends exactly at the footer, and has the keyframe offsets without a scan. A
//! recording without a footer (the viewer crashed: age's final chunk is missing too) is read by
//! scanning, as far as it authenticates.
//!
//! Only the agent's signatures make a recording evidence: anyone who has an auditor's public
//! key can make a valid age file. [`verify()`] checks the video against the agent-signed media
//! checkpoints and the session events against the agent's key; the cursor, input and state
//! records are as trustworthy as the file's custody.
//!
//! [age]: https://age-encryption.org/v1

mod error;
pub mod export;
mod format;
mod index;
mod item;
mod keys;
mod meta;
mod reader;
mod records;
mod scan;
mod verify;
mod writer;

/// The age crate, for its key types ([`age::x25519::Recipient`], [`age::x25519::Identity`]).
pub use age;
pub use error::RecordingError;
pub use format::{MAGIC, MAX_RECORD_LEN};
pub use index::{ConfigEntry, KeyframeEntry};
pub use item::{Item, StateChange};
pub use keys::{parse_identity_file, parse_recipients};
pub use meta::{Meta, MetaInfo};
pub use reader::{Items, Recording};
pub use verify::{verify, EventCheck, VerifyReport, Window};
pub use writer::{Record, Writer};

#[cfg(test)]
mod tests {
    /// The viewer records on its session thread and uploads from another; playback reads on a
    /// worker thread.
    #[test]
    fn the_types_cross_threads() {
        fn send<T: Send>() {}
        send::<crate::Writer>();
        send::<crate::Recording>();
        send::<crate::Items>();
    }
}
