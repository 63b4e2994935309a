//! The playback window for session recordings (`viewer play FILE --identity KEY`). Not built
//! yet: this stand-in says so, and `viewer play --verify` and `viewer export` work without it.

use std::path::Path;

use sightline_recording::age::x25519::Identity;

/// Opens the playback window on the recording at `recording_path`, decrypted with one of
/// `identities`, and returns when it is closed.
pub fn run(recording_path: &Path, identities: Vec<Identity>) -> anyhow::Result<()> {
    let _ = (recording_path, identities);
    Err(anyhow::anyhow!(
        "the playback window is not available in this build (use --verify, or `viewer export`)"
    ))
}
