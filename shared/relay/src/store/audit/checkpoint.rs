//! Checkpoints of the relay's audit log: signed and checked by
//! [`sightline_core::audit_chain::checkpoint`], written by the relay as actor [`ACTOR`].

pub use sightline_core::audit_chain::checkpoint::{Checkpoint, CheckpointError, ACTION, TAG};

/// Actor of the relay's checkpoint entries.
pub const ACTOR: &str = "relay";
