//! The relayed sessions running now, by id: whose they are (operator, certificate serial,
//! the authority that issued it, the recording rule it carries) and which agent key joined
//! them, so that a second connection of the session's operator can attach
//! ([`crate::net::attach`]) and hand in the events the agent signed and the session's
//! recording ([`crate::net::recording_upload`]). A session stays here a little after it ends,
//! for the events and recording pieces that were still on their way ([`GRACE`]); its end, and
//! why the relay ended it if it did, is announced to the attached connections.

use crate::store::recordings::writer::Recorder;
use sightline_core::authority::Authority;
use sightline_core::cert::RecordingPolicy;
use sightline_core::identity::PublicIdentity;
use sightline_core::relay_proto::SessionId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a session's events and recording are still taken after it ended.
pub const GRACE: Duration = Duration::from_secs(60);

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// When.
    pub at: Instant,
    /// Why the relay ended it, when it did (a revoked certificate, a stalled recording); told
    /// to the attached connections.
    pub by_relay: Option<String>,
}

/// One running session.
#[derive(Debug)]
pub struct LiveSession {
    /// The operator's account.
    pub operator: String,
    /// Serial of the certificate the session was created with.
    pub serial: u64,
    /// The authority that issued it.
    pub authority: Authority,
    /// The key the agent proved at join; `None`: the session's events cannot be checked and
    /// are refused.
    pub agent_key: Option<PublicIdentity>,
    /// The highest event number on record.
    pub last_event: Mutex<u32>,
    /// The recording rule of the certificate the session was created with.
    pub recording: RecordingPolicy,
    /// The recording being uploaded, once an attached connection asked for it; `None` again
    /// after a failure (taken up from disk at the next use).
    pub recorder: tokio::sync::Mutex<Option<Recorder>>,
    /// When the last recording upload message (a keepalive included) arrived.
    upload_seen: Mutex<Option<Instant>>,
    /// Set once the session ends.
    end: watch::Sender<Option<Ended>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every use is one read or write: a poisoned value is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LiveSession {
    /// A session just paired.
    pub fn new(
        operator: String,
        serial: u64,
        authority: Authority,
        agent_key: Option<PublicIdentity>,
        recording: RecordingPolicy,
    ) -> Self {
        Self {
            operator,
            serial,
            authority,
            agent_key,
            last_event: Mutex::new(0),
            recording,
            recorder: tokio::sync::Mutex::new(None),
            upload_seen: Mutex::new(None),
            end: watch::Sender::new(None),
        }
    }

    /// The highest event number on record, to read and move on.
    pub fn last_event(&self) -> MutexGuard<'_, u32> {
        lock(&self.last_event)
    }

    /// A recording upload message arrived at `now`.
    pub fn saw_upload(&self, now: Instant) {
        *lock(&self.upload_seen) = Some(now);
    }

    /// When the last recording upload message arrived.
    pub fn last_upload(&self) -> Option<Instant> {
        *lock(&self.upload_seen)
    }

    /// The session ended now; `by_relay`: why the relay ended it, when it did.
    pub fn ended(&self, by_relay: Option<String>) {
        self.end.send_replace(Some(Ended {
            at: Instant::now(),
            by_relay,
        }));
    }

    /// How it ended, once it has.
    pub fn end(&self) -> Option<Ended> {
        self.end.borrow().clone()
    }

    /// Hears the end.
    pub fn watch_end(&self) -> watch::Receiver<Option<Ended>> {
        self.end.subscribe()
    }

    /// Whether recording pieces are still taken at `now`: while it runs and for [`GRACE`]
    /// after its end.
    pub fn takes_uploads(&self, now: Instant) -> bool {
        self.end()
            .is_none_or(|e| now.saturating_duration_since(e.at) < GRACE)
    }
}

/// The running sessions.
#[derive(Debug, Default)]
pub struct LiveSessions(Mutex<HashMap<SessionId, Arc<LiveSession>>>);

impl LiveSessions {
    fn map(&self) -> MutexGuard<'_, HashMap<SessionId, Arc<LiveSession>>> {
        lock(&self.0)
    }

    /// A session starts.
    pub fn insert(&self, id: SessionId, session: Arc<LiveSession>) {
        self.map().insert(id, session);
    }

    /// The session `id`, while it runs or within [`GRACE`] of its end.
    pub fn get(&self, id: &SessionId) -> Option<Arc<LiveSession>> {
        self.map().get(id).cloned()
    }

    /// Forgets session `id`.
    pub fn remove(&self, id: &SessionId) {
        self.map().remove(id);
    }

    /// Sessions known.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether none is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
