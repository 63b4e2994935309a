//! Recording a relayed session for the help desk's auditors, as the operator's certificate
//! says ([`sightline_core::cert::RecordingPolicy`]): what the agent sent (the AV1 packets
//! exactly as received, the pointer, the customer's signed decisions and the agent's media
//! checkpoints) and, when the policy says so, the operator's input, written into the
//! age-encrypted container of [`sightline_recording`] and handed to the relay while the
//! session runs. Nothing is kept in the clear: the viewer holds the ciphertext only until the
//! relay has stored it.
//!
//! Files: this one (what is recorded, the plan from the certificate), `writer` (the container
//! on its own task), `upload` (the ciphertext to the relay, resumed after a broken
//! connection, with a keepalive so that a `required` recording is seen to go on).

mod upload;
mod writer;

use crate::uplink::Target;
use sightline_core::cert::{CertBody, RecordingMode};
use sightline_core::messages::{InputEvent, Message};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use writer::Item;

/// How often the viewer asks the agent for a keyframe while recording, so that playback can
/// seek to any point without decoding far.
pub const KEYFRAME_EVERY: Duration = Duration::from_secs(10);
/// How long the end of a session waits for the recording to reach the relay.
pub const FLUSH_AT_END: Duration = Duration::from_secs(20);

/// Whether and how this session is recorded.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The auditors' keys.
    pub recipients: Vec<age::x25519::Recipient>,
    /// Whether the operator's input is recorded.
    pub include_input: bool,
    /// Whether the session must end when the recording cannot go on.
    pub required: bool,
}

impl Plan {
    /// The plan for a login whose certificate says `body`, the operator having asked to
    /// record (`asked`) or not. `Err`: the session must not start (recording is required and
    /// this viewer cannot do it).
    pub fn from_certificate(body: &CertBody, asked: bool) -> Result<Option<Plan>, String> {
        let policy = &body.recording;
        let wanted = match policy.mode {
            RecordingMode::Off => false,
            RecordingMode::Optional => asked,
            RecordingMode::Required => true,
        };
        if !wanted {
            return Ok(None);
        }
        let required = policy.mode == RecordingMode::Required;
        // An empty list is refused too: nobody could ever read the recording.
        let recipients = sightline_recording::parse_recipients(&policy.recipients)
            .map_err(|e| format!("cannot record this session: {e}"));
        match recipients {
            Ok(recipients) => Ok(Some(Plan {
                recipients,
                include_input: policy.include_input,
                required,
            })),
            Err(e) if required => Err(format!(
                "the help desk requires recording, and {e}; no session was started"
            )),
            // Optional: the session goes on unrecorded.
            Err(e) => {
                tracing::warn!(error = %e, "the session will not be recorded");
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use sightline_core::cert::{Permissions, RecordingPolicy};

    fn body(mode: RecordingMode, recipients: &[&str]) -> CertBody {
        CertBody {
            serial: 1,
            operator: "alice".into(),
            display_name: "Alice".into(),
            organisation: String::new(),
            permissions: Permissions::VIEW,
            max_session_secs: 0,
            key: "ab".repeat(32).parse().unwrap(),
            not_before: 0,
            not_after: 1,
            issuer: "cd".repeat(32).parse().unwrap(),
            recording: RecordingPolicy {
                mode,
                recipients: recipients.iter().map(|r| r.to_string()).collect(),
                include_input: true,
            },
        }
    }

    #[test]
    fn the_certificate_decides_and_a_required_recording_that_cannot_be_made_refuses() {
        let key = age::x25519::Identity::generate().to_public().to_string();
        let r = [key.as_str()];
        assert!(Plan::from_certificate(&body(RecordingMode::Off, &r), true)
            .unwrap()
            .is_none());
        assert!(
            Plan::from_certificate(&body(RecordingMode::Optional, &r), false)
                .unwrap()
                .is_none()
        );
        let asked = Plan::from_certificate(&body(RecordingMode::Optional, &r), true).unwrap();
        assert!(!asked.unwrap().required);
        let required = Plan::from_certificate(&body(RecordingMode::Required, &r), false).unwrap();
        assert!(required.unwrap().required);
        let err = Plan::from_certificate(&body(RecordingMode::Required, &["age1nonsense"]), false);
        assert!(err.unwrap_err().contains("requires recording"));
        assert!(Plan::from_certificate(&body(RecordingMode::Required, &[]), false).is_err());
        // Optional and impossible: unrecorded, not refused.
        assert!(
            Plan::from_certificate(&body(RecordingMode::Optional, &[]), true)
                .unwrap()
                .is_none()
        );
    }
}

/// The dispatcher's side: hands what is recorded to the writer.
#[derive(Debug, Clone)]
pub struct Sink {
    tx: mpsc::Sender<Item>,
    started: Instant,
    include_input: bool,
}

impl Sink {
    fn at_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    /// A message from the agent; only what a recording keeps is passed on.
    pub async fn agent(&self, msg: &Message) {
        let kept = matches!(
            msg,
            Message::VideoConfig { .. }
                | Message::VideoPacket { .. }
                | Message::Cursor { .. }
                | Message::Control { .. }
                | Message::ControlWithdrawn { .. }
                | Message::ConsentPending { .. }
                | Message::SharingPaused { .. }
                | Message::SharingResumed
                | Message::SessionEvent(_)
                | Message::MediaCheckpoint(_)
                | Message::Close { .. }
        );
        if kept {
            let _ = self.tx.send(Item::Agent(self.at_us(), msg.clone())).await;
        }
    }

    /// Input the operator sent to the agent.
    pub async fn input(&self, ev: &InputEvent) {
        if self.include_input {
            let _ = self.tx.send(Item::Input(self.at_us(), ev.clone())).await;
        }
    }

    /// How the session ended, for the recording's last record.
    pub async fn end(&self, reason: String) {
        let _ = self.tx.send(Item::End(reason)).await;
    }
}

/// A recording in progress.
#[derive(Debug)]
pub struct Recording {
    /// Where the dispatcher sends what is recorded.
    pub sink: Sink,
    /// Says why, once, if the recording cannot go on.
    pub failed: oneshot::Receiver<String>,
    /// Ends once the recording is complete on the relay (or cannot be).
    pub done: JoinHandle<()>,
}

/// Starts recording session `meta` under `plan`, handing the ciphertext in at `target`.
pub fn start(
    plan: Plan,
    meta: sightline_recording::Meta,
    target: Target,
) -> Result<Recording, String> {
    let writer::Started {
        items,
        cipher,
        task: writing,
    } = writer::spawn(&plan, &meta)?;
    let (failed_tx, failed) = oneshot::channel();
    let done = tokio::spawn(async move {
        let uploading = tokio::spawn(upload::run(target, cipher, failed_tx));
        let _ = writing.await;
        let _ = uploading.await;
    });
    Ok(Recording {
        sink: Sink {
            tx: items,
            started: Instant::now(),
            include_input: plan.include_input,
        },
        failed,
        done,
    })
}
