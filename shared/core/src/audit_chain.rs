//! The tamper-evident audit chain shared by the relay's audit log and a LAN kiosk's own log:
//! how an entry is hashed onto the one before it ([`hash`]), signed checkpoints
//! ([`checkpoint`]), the JSON-lines form of an entry ([`line`]), the writer's end of a log of
//! lines ([`head`]) and verification one entry at a time ([`walk`]). Pure functions over explicit values: no files, no clock, no randomness
//! (Ed25519 signing is deterministic; keys are made and stored by the callers).

pub mod checkpoint;
pub mod hash;
pub mod head;
pub mod line;
pub mod walk;

pub use hash::{entry_hash, parse_hash, Fields, ENTRY_TAG, GENESIS};
pub use head::{Head, HeadError};
pub use line::{rfc3339, Line, LineWalk, Unhashed};
pub use walk::{Anchor, AnchorError, Bad, Row, Summary, Walk};

#[cfg(test)]
mod tests;
