//! The relayed sessions running now, by id: whose they are (operator, certificate serial,
//! the authority that issued it) and which agent key joined them, so that a second connection
//! of the session's operator can attach ([`crate::net::attach`]) and hand in the events the agent
//! signed. A session stays here a little after it ends, for the events that were still on
//! their way ([`GRACE`]).

use sightline_core::authority::Authority;
use sightline_core::identity::PublicIdentity;
use sightline_core::relay_proto::SessionId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long a session's events are still taken after it ended.
pub const GRACE: Duration = Duration::from_secs(60);

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
}

impl LiveSession {
    /// The highest event number on record, to read and move on.
    pub fn last_event(&self) -> MutexGuard<'_, u32> {
        self.last_event.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running sessions.
#[derive(Debug, Default)]
pub struct LiveSessions(Mutex<HashMap<SessionId, Arc<LiveSession>>>);

impl LiveSessions {
    fn map(&self) -> MutexGuard<'_, HashMap<SessionId, Arc<LiveSession>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session starts.
    pub fn insert(&self, id: SessionId, session: LiveSession) {
        self.map().insert(id, Arc::new(session));
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
