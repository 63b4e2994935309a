//! The customer's decisions as events the agent signs ([`sightline_core::session_events`]) and
//! sends to the viewer, which hands them to the relay's audit log: numbered in the order they
//! happened, signed one after the other on a blocking thread (an RSA signature takes
//! milliseconds), so the numbering and the order on the wire agree.

use sightline_core::identity::PrivateIdentity;
use sightline_core::messages::Message;
use sightline_core::relay_proto::SessionId;
use sightline_core::session_events::{EventCounter, SessionEvent, SignedEvent};
use sightline_net::clock;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long the end of a session waits for the events before it to be signed and sent.
pub const FLUSH_LIMIT: Duration = Duration::from_secs(3);

/// What the signing task is asked to do.
#[derive(Debug)]
enum Item {
    /// Sign and send this event (Unix seconds, event).
    Event(u64, SessionEvent),
    /// Answer once everything queued before is sent.
    Flush(oneshot::Sender<()>),
}

/// Where the controller records events; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventSigner {
    queue: mpsc::UnboundedSender<Item>,
}

impl EventSigner {
    /// Signs the events of `session_id` with `key` and sends each to the viewer on `to_peer`.
    pub fn start(
        key: Arc<PrivateIdentity>,
        session_id: SessionId,
        to_peer: mpsc::Sender<Message>,
    ) -> Self {
        let (queue, mut items) = mpsc::unbounded_channel::<Item>();
        tokio::spawn(async move {
            let mut counter = EventCounter::new(session_id);
            while let Some(item) = items.recv().await {
                let (at, event) = match item {
                    Item::Event(at, event) => (at, event),
                    Item::Flush(done) => {
                        let _ = done.send(());
                        continue;
                    }
                };
                let body = counter.next(at, event);
                let key = key.clone();
                let signed = tokio::task::spawn_blocking(move || {
                    SignedEvent::sign(&key, &mut rand_core::OsRng, &body)
                })
                .await;
                match signed {
                    Ok(Ok(signed)) => {
                        if to_peer.send(Message::SessionEvent(signed)).await.is_err() {
                            return;
                        }
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot sign a session event"),
                    Err(_) => return,
                }
            }
        });
        Self { queue }
    }

    /// Records `event`, now.
    pub fn record(&self, event: SessionEvent) {
        let _ = self.queue.send(Item::Event(clock::now_unix(), event));
    }

    /// Waits (at most [`FLUSH_LIMIT`]) until every event recorded so far is on its way to the
    /// viewer: before the session's close goes out.
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(Item::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(FLUSH_LIMIT, flushed).await;
        }
    }
}
