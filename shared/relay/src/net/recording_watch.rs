//! Required means required: a session whose certificate requires recording must hear from
//! its recording's upload ([`crate::net::recording_upload`]; a keepalive counts) within
//! [`RECORDING_STALL_SECS`] of being paired, and then never be silent longer than that while
//! its traffic is forwarded. [`stalled`] resolves when it is; the session's task then ends the
//! session ([`crate::net::paired`], the way a revoked certificate ends it).
//!
//! The clock runs while the session is forwarded only: a parked session carries nothing that
//! could go unrecorded, and its viewer may be busy coming back. Each pairing counts as a sign of
//! life, so a session resumed after a break has the same time to be heard from again.

use crate::net::live::LiveSession;
use sightline_core::cert::RecordingMode;
use sightline_core::relay_proto::RECORDING_STALL_SECS;
use std::time::{Duration, Instant};

/// Longest silence of a required recording's upload.
pub const STALL: Duration = Duration::from_secs(RECORDING_STALL_SECS);

/// Why a session whose recording stopped was ended: its record, the attached connection and
/// both sides' refused resumes all say this.
pub const STALLED: &str = "the session's recording stopped; the help desk requires recording";

/// When the upload of a session paired at `paired` and last heard from at `last` is overdue.
pub fn deadline(paired: Instant, last: Option<Instant>) -> Instant {
    last.map_or(paired, |l| l.max(paired)) + STALL
}

/// Resolves once the recording of `live`, forwarded since `paired`, has been silent for
/// [`STALL`]; never for a session that does not require recording.
pub async fn stalled(live: &LiveSession, paired: Instant) {
    if live.recording.mode != RecordingMode::Required {
        return std::future::pending().await;
    }
    loop {
        let due = deadline(paired, live.last_upload());
        if Instant::now() >= due {
            return;
        }
        tokio::time::sleep_until(due.into()).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_clock_starts_at_pairing_and_moves_with_each_upload() {
        let t0 = Instant::now();
        assert_eq!(deadline(t0, None), t0 + STALL);
        let later = t0 + Duration::from_secs(4);
        assert_eq!(deadline(t0, Some(later)), later + STALL);
        // Heard from before a resumption: the new pairing counts.
        let resumed = t0 + Duration::from_secs(30);
        assert_eq!(deadline(resumed, Some(later)), resumed + STALL);
    }
}
