//! The verifier's state while it reads a recording in order: the recomputed media hash, the
//! media keys the agent announced, the window being counted, and the report being built.

use sightline_core::identity::PublicIdentity;
use sightline_core::media_proof::{MediaHasher, SignedCheckpoint};
use sightline_core::session_events::{SessionEvent, SignedEvent};

use super::describe;
use super::report::{EventCheck, VerifyReport, Window};
use crate::error::RecordingError;
use crate::format;
use crate::index::Index;
use crate::item::Item;

pub(super) struct Verifier {
    agent: Option<PublicIdentity>,
    session_id: [u8; 16],
    hasher: MediaHasher,
    pub(super) report: VerifyReport,
    /// Media keys announced by verified events.
    keys: Vec<[u8; 32]>,
    /// Items the last verified checkpoint covers.
    signed_items: u64,
    /// Video items recorded since the last verified checkpoint, and when that was.
    window_items: u64,
    window_from: u64,
    last_video_at: u64,
    last_number: Option<u32>,
    last_event: u32,
    final_seen: bool,
    /// The file could not be read to its end.
    pub(super) unreadable: bool,
    packets: u64,
    keyframe_offsets: Vec<u64>,
}

impl Verifier {
    /// Starts checking a recording of session `session_id` whose metadata names `agent`.
    pub(super) fn new(
        agent: Option<PublicIdentity>,
        session_id: [u8; 16],
        report: VerifyReport,
    ) -> Self {
        Verifier {
            agent,
            hasher: MediaHasher::new(&session_id),
            session_id,
            report,
            keys: Vec::new(),
            signed_items: 0,
            window_items: 0,
            window_from: 0,
            last_video_at: 0,
            last_number: None,
            last_event: 0,
            final_seen: false,
            unreadable: false,
            packets: 0,
            keyframe_offsets: Vec::new(),
        }
    }

    pub(super) fn problem(&mut self, p: impl Into<String>) {
        self.report.problems.push(p.into());
    }

    pub(super) fn item(&mut self, at: u64, offset: u64, item: Item) {
        match item {
            Item::Config { width, height } => {
                self.hasher.add_config(width, height);
                self.video(at);
            }
            Item::Packet {
                seq,
                capture_us,
                keyframe,
                data,
            } => {
                self.hasher.add_packet(seq, capture_us, keyframe, &data);
                self.packets += 1;
                if keyframe {
                    self.keyframe_offsets.push(offset);
                }
                self.video(at);
            }
            Item::Event(ev) => self.event(at, &ev),
            Item::Checkpoint(cp) => self.checkpoint(at, &cp),
            Item::Meta(_) => self.problem("a second metadata record"),
            _ => {}
        }
    }

    fn video(&mut self, at: u64) {
        if self.final_seen && self.window_items == 0 {
            self.window_from = at;
        }
        self.window_items += 1;
        self.report.video_items += 1;
        self.last_video_at = at;
    }

    fn event(&mut self, at: u64, ev: &SignedEvent) {
        let checked = match &self.agent {
            None => Err("cannot be checked: the metadata has no valid agent key".to_string()),
            Some(agent) => ev
                .verify(agent, &self.session_id)
                .map_err(|e| format!("{e}: forged, or from another session or agent")),
        };
        let check = match checked {
            Ok(body) => {
                if body.seq != self.last_event.saturating_add(1) {
                    self.report.notes.push(format!(
                        "session events #{}..#{} are not in the recording",
                        self.last_event + 1,
                        body.seq.saturating_sub(1)
                    ));
                }
                self.last_event = self.last_event.max(body.seq);
                if let SessionEvent::MediaKey { key } = body.event {
                    if !self.keys.contains(&key) {
                        self.keys.push(key);
                        self.report.media_keys.push(hex::encode(key));
                    }
                }
                EventCheck {
                    at_us: at,
                    seq: Some(body.seq),
                    action: Some(body.event.action().to_string()),
                    detail: Some(body.event.detail()),
                    ok: true,
                    problem: None,
                }
            }
            Err(problem) => EventCheck {
                at_us: at,
                seq: None,
                action: None,
                detail: None,
                ok: false,
                problem: Some(problem),
            },
        };
        self.report.events.push(check);
    }

    fn fail_window(&mut self, at: u64, checkpoint: Option<u32>, reason: String) {
        self.report.windows.push(Window {
            checkpoint,
            from_us: at,
            to_us: at,
            items: 0,
            expected_items: None,
            holds: false,
            reason: Some(reason),
        });
    }

    fn checkpoint(&mut self, at: u64, cp: &SignedCheckpoint) {
        self.report.checkpoints += 1;
        let verified = self
            .keys
            .iter()
            .map(|k| cp.verify(k, &self.session_id))
            .find(Result::is_ok);
        let body = match verified {
            Some(Ok(body)) => body,
            _ => {
                let why = if self.keys.is_empty() {
                    "a checkpoint before any agent-signed media key: it cannot be checked".into()
                } else {
                    "a checkpoint not signed by the session's media key (forged)".into()
                };
                // Not resynchronised: the video goes on counting toward the next checkpoint.
                return self.fail_window(at, None, why);
            }
        };
        if let Some(prev) = self.last_number {
            if body.number <= prev {
                let why = format!("checkpoint #{} repeated or out of order", body.number);
                return self.fail_window(at, Some(body.number), why);
            }
            if body.number != prev + 1 {
                self.report.notes.push(format!(
                    "checkpoints #{}..#{} are not in the recording; #{} covers their video",
                    prev + 1,
                    body.number - 1,
                    body.number
                ));
            }
        }
        if self.final_seen {
            self.problem("a checkpoint follows the agent's final checkpoint");
        }
        let expected = body.items.checked_sub(self.signed_items);
        let holds = self.hasher.items() == body.items && self.hasher.hash() == body.hash;
        let reason = (!holds).then(|| match expected {
            None => "the checkpoint counts fewer items than the one before it".to_string(),
            Some(e) if self.window_items < e => format!(
                "{} video item(s) missing: dropped or cut from the recording",
                e - self.window_items
            ),
            Some(e) if self.window_items > e => format!(
                "{} video item(s) the agent did not send: added to the recording",
                self.window_items - e
            ),
            Some(_) => "video edited: the recorded packets differ from what the agent sent".into(),
        });
        self.report.windows.push(Window {
            checkpoint: Some(body.number),
            from_us: self.window_from,
            to_us: at,
            items: self.window_items,
            expected_items: expected,
            holds,
            reason,
        });
        if !holds {
            // The next window is judged on its own.
            self.hasher.resync(&body);
        }
        self.signed_items = body.items;
        self.window_items = 0;
        self.window_from = at;
        self.last_number = Some(body.number);
        self.final_seen |= body.last;
    }

    /// The Index record, the footer, and the end of the age stream (`rest`: what follows the
    /// Index, read to the end, which makes age authenticate its final chunk).
    pub(super) fn finish_file(
        &mut self,
        payload: &[u8],
        index_at: u64,
        index_end: u64,
        rest: Result<Vec<u8>, RecordingError>,
    ) {
        let rest = match rest {
            Ok(rest) => rest,
            Err(e) => {
                self.unreadable = true;
                return self.problem(describe(&e));
            }
        };
        let footer_ok = format::parse_footer(&rest) == Some((index_at, index_end));
        let index_ok = Index::decode(payload, index_at).is_ok_and(|i| {
            i.video_packets == self.packets
                && i.keyframes
                    .iter()
                    .map(|k| k.offset)
                    .eq(self.keyframe_offsets.iter().copied())
        });
        if footer_ok && index_ok {
            self.report.complete = true;
        } else {
            self.problem("the index or footer does not match the records");
        }
    }

    pub(super) fn conclude(mut self) -> VerifyReport {
        if self.window_items > 0 {
            self.report.windows.push(Window {
                checkpoint: None,
                from_us: self.window_from,
                to_us: self.last_video_at,
                items: self.window_items,
                expected_items: None,
                holds: false,
                reason: Some(if self.unreadable {
                    format!(
                        "{} video item(s) after the last checkpoint, unchecked: the file cannot be read further",
                        self.window_items
                    )
                } else {
                    format!(
                        "{} video item(s) after the last checkpoint: no checkpoint covers them (the recording was cut before the agent's final checkpoint, or video was added)",
                        self.window_items
                    )
                }),
            });
        }
        let video = self.report.video_items > 0;
        if video && self.keys.is_empty() {
            self.problem("no agent-signed media key (session.media_key) in the recording: its video cannot be checked");
        }
        // Where the file cannot be read to its end, its unread end is the problem reported.
        if (video || !self.keys.is_empty()) && !self.final_seen && !self.unreadable {
            self.problem("no final checkpoint from the agent: the recording was cut at the end, or the session's end is missing");
        }
        if !video {
            self.report.notes.push("no video in this recording".into());
        }
        self.report.notes.push(
            "the agent's signatures cover the video and the session events; cursor, input and state records are only as trustworthy as the file's custody".into(),
        );
        self.report
    }
}
