//! What [`crate::verify()`] found, for people (`Display`) and programs (`Serialize` to JSON).

use serde::Serialize;
use std::fmt;

use crate::meta::MetaInfo;

/// The verdict on one recording.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The recording's metadata. Its agent key fingerprint is what the file says: compare it
    /// with the relay's audit log entry `session.paired` (or pass `expect_agent`).
    pub meta: MetaInfo,
    /// The fingerprint the caller expected, if any.
    pub expected_agent: Option<String>,
    /// The session's media key (hex) from the agent-signed `session.media_key` event.
    pub media_keys: Vec<String>,
    /// Time of the last record, microseconds since the recording started.
    pub duration_us: u64,
    /// Video items (configs and packets) recorded.
    pub video_items: u64,
    /// Checkpoint records found.
    pub checkpoints: u64,
    /// Whether the file was finished (index and footer present and consistent).
    pub complete: bool,
    /// Every session event and whether it verifies.
    pub events: Vec<EventCheck>,
    /// Every checkpoint window and whether its video is what the agent sent.
    pub windows: Vec<Window>,
    /// Failures that concern the whole file.
    pub problems: Vec<String>,
    /// Things worth knowing that do not make the recording fail.
    pub notes: Vec<String>,
}

/// One window: the video between two checkpoints.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// The checkpoint's number (`None`: video after the last checkpoint, or a checkpoint that
    /// does not verify).
    pub checkpoint: Option<u32>,
    /// Start, microseconds since the recording started.
    pub from_us: u64,
    /// End, microseconds since the recording started.
    pub to_us: u64,
    /// Video items recorded in the window.
    pub items: u64,
    /// Video items the agent says it sent in the window.
    pub expected_items: Option<u64>,
    /// Whether the recorded video is exactly what the agent sent.
    pub holds: bool,
    /// Why not.
    pub reason: Option<String>,
}

/// One session event.
#[derive(Debug, Clone, Serialize)]
pub struct EventCheck {
    /// Microseconds since the recording started.
    pub at_us: u64,
    /// The agent's event number.
    pub seq: Option<u32>,
    /// The audit action (`consent.given`, `session.media_key`, …).
    pub action: Option<String>,
    /// What the event says.
    pub detail: Option<String>,
    /// Whether it is signed by the agent for this session.
    pub ok: bool,
    /// Why not.
    pub problem: Option<String>,
}

impl VerifyReport {
    /// True only when the file decrypts whole, every event and every window holds, and the
    /// agent's final checkpoint covers every recorded video item.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
            && self.windows.iter().all(|w| w.holds)
            && self.events.iter().all(|e| e.ok)
    }
}

/// Microseconds as seconds with milliseconds.
pub(crate) fn secs(us: u64) -> String {
    format!("{}.{:03} s", us / 1_000_000, (us / 1000) % 1000)
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.meta;
        writeln!(f, "Session      {}", hex::encode(m.session_id))?;
        writeln!(
            f,
            "Operator     {} ({}, {}) through relay {}",
            m.operator, m.display_name, m.organisation, m.relay
        )?;
        writeln!(f, "Agent key    {}", m.agent_fingerprint)?;
        match &self.expected_agent {
            Some(e) => writeln!(f, "Expected     {e}")?,
            None => writeln!(
                f,
                "             (compare with the relay's audit log entry session.paired)"
            )?,
        }
        writeln!(
            f,
            "Recorded     {}, {} video items, {} checkpoints, {} (software: {})",
            secs(self.duration_us),
            self.video_items,
            self.checkpoints,
            if self.complete {
                "finished"
            } else {
                "not finished"
            },
            m.software
        )?;
        for e in &self.events {
            let what = e.action.as_deref().unwrap_or("?");
            let detail = e.detail.as_deref().unwrap_or("");
            match &e.problem {
                None => writeln!(
                    f,
                    "  event ok    {:>10}  #{} {what} {detail}",
                    secs(e.at_us),
                    e.seq.unwrap_or(0)
                )?,
                Some(p) => writeln!(f, "  event FAIL  {:>10}  {p}", secs(e.at_us))?,
            }
        }
        for w in &self.windows {
            let cp = w
                .checkpoint
                .map_or_else(|| "-".to_string(), |n| format!("#{n}"));
            let range = format!("{} – {}", secs(w.from_us), secs(w.to_us));
            match &w.reason {
                None => writeln!(
                    f,
                    "  video ok    {range}  checkpoint {cp}, {} items",
                    w.items
                )?,
                Some(r) => writeln!(f, "  video FAIL  {range}  checkpoint {cp}: {r}")?,
            }
        }
        for p in &self.problems {
            writeln!(f, "Problem      {p}")?;
        }
        for n in &self.notes {
            writeln!(f, "Note         {n}")?;
        }
        write!(
            f,
            "Result       {}",
            if self.ok() {
                "VERIFIED: the video is what the agent sent"
            } else {
                "NOT VERIFIED"
            }
        )
    }
}
