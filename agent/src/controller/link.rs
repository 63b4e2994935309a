//! The connection to the viewer broke and is being repaired ([`LinkEvent`]): control is
//! suspended at once (the injector stops and releases whatever the operator held; queued
//! input is dropped), the banner stays up and says so. When the session is resumed, control
//! comes back as the customer left it (a revoke meanwhile stands), the operator is told where
//! control stands, and sharing starts again with a fresh picture.

use super::live::Live;
use super::{Customer, RELEASE_WAIT};
use crate::control::Control as Input;
use crate::share;
use sightline_core::messages::Message;
use sightline_net::resume::LinkEvent;
use tokio::sync::mpsc;

/// The next event about the connection; never resolves without a link (or once it is gone).
pub(super) async fn next_event(link: &mut Option<mpsc::Receiver<LinkEvent>>) -> Option<LinkEvent> {
    match link {
        Some(rx) => {
            let ev = rx.recv().await;
            if ev.is_none() {
                *link = None;
                return std::future::pending().await;
            }
            ev
        }
        None => std::future::pending().await,
    }
}

impl Live {
    /// Reacts to a change of the connection.
    pub(super) async fn on_link(
        &mut self,
        c: &Customer,
        event: LinkEvent,
        to_peer: &mpsc::Sender<Message>,
    ) {
        match event {
            LinkEvent::Reconnecting { .. } => self.suspend(c),
            LinkEvent::Resumed => self.reconnected(c, to_peer).await,
        }
    }

    /// Stops injecting without changing what the customer granted.
    fn suspend(&mut self, c: &Customer) {
        self.suspended = true;
        if let Some(input) = self.input.take() {
            let stopping = input.revoke();
            self.stopping.push(tokio::task::spawn_blocking(move || {
                match stopping.wait(RELEASE_WAIT) {
                    Some(_) => tracing::info!("control suspended; held keys and buttons released"),
                    None => tracing::warn!("the input thread did not finish releasing held keys"),
                }
            }));
        }
        if let Some(i) = &self.indicator {
            i.set_text(c.banner_text_reconnecting());
        }
    }

    /// The session goes on: control as granted, a fresh picture.
    async fn reconnected(&mut self, c: &Customer, to_peer: &mpsc::Sender<Message>) {
        self.suspended = false;
        let granted = self.control.is_granted();
        if granted && self.input.is_none() {
            let monitor = self
                .share
                .as_ref()
                .map_or_else(|| self.monitor.clone(), |s| s.monitor.clone());
            match tokio::task::spawn_blocking(move || Input::start(monitor)).await {
                Ok(Ok(input)) => self.input = Some(input),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot inject input after resuming");
                    let _ = self.control.revoke();
                }
                Err(_) => {
                    let _ = self.control.revoke();
                }
            }
        }
        let granted = self.control.is_granted() && self.input.is_some();
        // What the operator may have missed while the connection was down.
        let _ = to_peer.send(Message::Control { granted }).await;
        if let Some(i) = &self.indicator {
            i.set_text(c.banner_text(granted));
        }
        // A new stream: a keyframe first, and congestion control that starts afresh.
        if self.share.take().is_some() {
            match share::start(c.share, c.video_sink(to_peer)) {
                Ok(s) => self.share = Some(s),
                Err(e) => tracing::error!(error = %e, "cannot share the screen again"),
            }
        }
        self.status(c, granted);
    }
}
