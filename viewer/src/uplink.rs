//! Hands the events the agent signs ([`sightline_core::session_events`]) to the relay, whose
//! audit log keeps them: on a second connection attached to the session as its operator (the
//! certificate of this login and a proof by its key, [`RelayClient::attach`]). Events are
//! batched as they come; a failed delivery is tried again with the next event and once more
//! when the session ends, so a relay that was briefly unreachable still gets them all.

use sightline_core::cert::OperatorCert;
use sightline_core::identity::{Fingerprint, PrivateIdentity};
use sightline_core::relay_proto::SessionId;
use sightline_core::session_events::SignedEvent;
use sightline_net::relay_client::Uplink;
use sightline_net::RelayClient;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long the viewer waits, once the session is over, for the last events to be handed in.
pub(crate) const FLUSH_AT_END: Duration = Duration::from_secs(10);

/// Where and as whom to hand events in.
#[derive(Clone)]
pub(crate) struct Target {
    /// The relay (its routes; a new connection tries the one that worked last first).
    pub relay: sightline_net::dial::Relay,
    /// Its pinned key.
    pub pin: Fingerprint,
    /// The session.
    pub session_id: SessionId,
    /// This login's certificate.
    pub certificate: OperatorCert,
    /// The operator's key.
    pub key: PrivateIdentity,
}

/// Starts handing in what arrives on the returned sender; the task ends once the sender is
/// dropped and what was pending is delivered (or cannot be).
pub(crate) fn spawn(target: Target) -> (mpsc::UnboundedSender<SignedEvent>, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, tokio::spawn(run(target, rx)))
}

async fn run(target: Target, mut rx: mpsc::UnboundedReceiver<SignedEvent>) {
    let mut pending: Vec<SignedEvent> = Vec::new();
    let mut uplink: Option<Uplink> = None;
    while let Some(event) = rx.recv().await {
        pending.push(event);
        while let Ok(more) = rx.try_recv() {
            pending.push(more);
        }
        deliver(&target, &mut uplink, &mut pending).await;
    }
    if !pending.is_empty() {
        deliver(&target, &mut uplink, &mut pending).await;
    }
    if !pending.is_empty() {
        tracing::warn!(
            events = pending.len(),
            "session events could not be handed to the relay"
        );
    }
}

/// One try (on a fresh connection if the last one failed); `pending` keeps what did not go.
async fn deliver(target: &Target, uplink: &mut Option<Uplink>, pending: &mut Vec<SignedEvent>) {
    if uplink.is_none() {
        match attach(target).await {
            Ok(u) => *uplink = Some(u),
            Err(e) => {
                return tracing::warn!(error = %e, "cannot attach to the relay to hand in session events");
            }
        }
    }
    let Some(u) = uplink.as_mut() else { return };
    match u.send_events(pending).await {
        Ok(last) => {
            tracing::debug!(last, "session events on the relay's record");
            pending.clear();
        }
        Err(e) => {
            tracing::warn!(error = %e, "handing in session events failed; will try again");
            *uplink = None;
        }
    }
}

pub(crate) async fn attach(t: &Target) -> Result<Uplink, sightline_net::ClientError> {
    let client = Box::pin(RelayClient::connect_to(&t.relay, t.pin)).await?;
    client
        .attach(t.session_id, t.certificate.clone(), &t.key)
        .await
}
