//! The start of a session: the customer's answer to viewing, then the banner and capture.

use super::banner::Banner;
use super::live::Live;
use super::Customer;
use crate::capture;
use crate::control_state::ControlState;
use crate::customer::{self, Answer};
use crate::rights::InputGate;
use crate::share;
use serde_json::json;
use sightline_core::messages::{CloseReason, ConsentFor, Message};
use sightline_core::session_events::Answer::{Declined, Given, TimedOut};
use sightline_core::session_events::{Consent, SessionEvent};
use tokio::sync::mpsc::{self, unbounded_channel, UnboundedReceiver};

impl Customer {
    /// Asks to share the screen (attended), or says the kiosk's configuration allows it.
    /// `Err(Some(reason))` ends the session with that reason; `Err(None)`: it already ended.
    pub(super) async fn ask_viewing(
        &self,
        lines: &mut UnboundedReceiver<String>,
        from_peer: &mut mpsc::Receiver<Message>,
        to_peer: &mpsc::Sender<Message>,
    ) -> Result<(), Option<CloseReason>> {
        let out = self.out;
        if self.unattended {
            tracing::info!(operator = %self.operator, "unattended kiosk: sharing without a consent question");
            out.event(
                json!({"event": "consent", "what": "viewing", "allowed": true, "by": "kiosk configuration"}),
                || "Unattended kiosk: sharing the screen (allowed by the kiosk's configuration).".into(),
            );
            return Ok(());
        }
        let _ = to_peer
            .send(Message::ConsentPending {
                what: ConsentFor::Viewing,
            })
            .await;
        let secs = self.consent_timeout.as_secs();
        self.record(SessionEvent::Asked {
            what: Consent::Viewing,
        });
        let notice = self.recording_notice();
        out.event(
            json!({"event": "consent_request", "what": "viewing", "timeout_secs": secs,
                   "recording": self.recording.name(), "notice": notice}),
            || {
                let notice = notice.map(|n| format!("{n}\n")).unwrap_or_default();
                format!(
                    "\n{} wants to see your screen.\n{notice}{} ({secs} s to answer): ",
                    self.who(),
                    customer::ALLOW_PROMPT
                )
            },
        );
        let deadline = tokio::time::sleep(self.consent_timeout);
        tokio::pin!(deadline);
        let answer = loop {
            tokio::select! {
                line = lines.recv() => break match line {
                    Some(l) => Some(customer::parse_answer(&l)),
                    // No terminal to answer on: fail closed.
                    None => Some(Answer::No),
                },
                msg = from_peer.recv() => match msg {
                    // Nothing is shared yet, so nothing can be controlled either.
                    Some(Message::ControlRequest) => {
                        let _ = to_peer.send(Message::Control { granted: false }).await;
                    }
                    Some(_) => {}
                    None => return Err(None),
                },
                () = &mut deadline => break None,
            }
        };
        self.record(SessionEvent::Answered {
            what: Consent::Viewing,
            answer: match answer {
                Some(Answer::Yes) => Given,
                Some(Answer::No) => Declined,
                None => TimedOut,
            },
        });
        match answer {
            Some(Answer::Yes) => {
                out.event(
                    json!({"event": "consent", "what": "viewing", "allowed": true}),
                    || "You allowed viewing.".into(),
                );
                Ok(())
            }
            Some(Answer::No) => {
                out.event(
                    json!({"event": "consent", "what": "viewing", "allowed": false}),
                    || "You refused; nothing was shared.".into(),
                );
                Err(Some(CloseReason::DeclinedByCustomer))
            }
            None => {
                out.event(
                    json!({"event": "consent", "what": "viewing", "allowed": false, "timed_out": true}),
                    || "\nNo answer; nothing was shared.".into(),
                );
                Err(Some(CloseReason::NoAnswerFromCustomer))
            }
        }
    }

    /// The banner and hotkeys first, so that the very first picture the operator gets shows
    /// them as the customer sees them; then capture.
    pub(super) async fn start_sharing(
        &self,
        to_peer: &mpsc::Sender<Message>,
    ) -> Result<Live, CloseReason> {
        let out = self.out;
        let wanted = self.share.monitor;
        let monitor = match tokio::task::spawn_blocking(move || capture::find(wanted)).await {
            Ok(Ok(m)) => Some(m),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot find the monitor for the banner");
                None
            }
            Err(_) => None,
        };
        let (banner_tx, banner_rx) = unbounded_channel();
        let indicator = match &monitor {
            Some(m) => self.show_banner(m, &banner_tx, false).await,
            None => Err("cannot find the monitor".to_string()),
        };
        let indicator = match indicator {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::warn!(error = %e, "no on-screen indicator");
                out.event(json!({"event": "indicator", "shown": false, "message": e}), || {
                    format!("(No on-screen indicator: {e}. This terminal shows the session status.)")
                });
                if self.unattended {
                    // On a kiosk the banner is the only sign that the screen is shared: without
                    // it, nothing is shared.
                    tracing::error!("unattended kiosk without an on-screen indicator: not sharing");
                    return Err(CloseReason::Shutdown);
                }
                None
            }
        };
        let share = match share::start(self.share, self.video_sink(to_peer)) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot share the screen");
                out.event(
                    json!({"event": "error", "message": format!("cannot share the screen: {e}")}),
                    || format!("Cannot share the screen: {e}"),
                );
                // Cancelling the desktop's own sharing dialog is the customer's no.
                let declined = matches!(
                    e,
                    share::ShareError::Capture(capture::CaptureError::Declined)
                );
                return Err(if declined {
                    CloseReason::DeclinedByCustomer
                } else {
                    CloseReason::Shutdown
                });
            }
        };
        let since = sightline_net::cli::utc(sightline_net::clock::now_unix());
        out.event(
            json!({"event": "sharing", "monitor": share.monitor.index, "width": share.monitor.width, "height": share.monitor.height,
                   "indicator": indicator.is_some(), "encoder": share.encoder.name(), "capture": share.capture, "recording": self.recording.name()}),
            || {
                let notice = self.recording_notice().map(|n| format!(" {n}")).unwrap_or_default();
                format!("Sharing your screen ({}x{}) with {} since {since}.{notice}", share.monitor.width, share.monitor.height, self.who())
            },
        );
        let live = Live {
            control: ControlState::new(
                self.rights.may_control(),
                self.unattended,
                self.consent_timeout,
            ),
            gate: InputGate::new(&self.rights),
            input: None,
            stopping: Vec::new(),
            monitor: monitor.unwrap_or_else(|| share.monitor.clone()),
            share: Some(share),
            banner: if indicator.is_some() {
                Banner::Showing
            } else {
                Banner::None
            },
            indicator,
            banner_tx,
            banner_rx,
            stdin_open: !self.unattended,
            ungranted: 0,
            link: None,
            suspended: false,
        };
        live.status(self, false);
        Ok(live)
    }
}
