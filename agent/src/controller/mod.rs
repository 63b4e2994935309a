//! The customer's side of one session, beside the session pump: asks before the screen is
//! shared, starts and pauses sharing, asks before control and takes it away, and ends the
//! session. Every way a session ends passes through here first, so input stops before the
//! close is sent: the customer's `e`, Ctrl+Alt+Q, Ctrl-C (or a kiosk's SIGTERM), the session
//! limit and the certificate's expiry.
//!
//! What the customer does is handled at once and never waits for the injector: a revoke stops
//! input without waiting ([`crate::control`]). The on-screen banner must show while the screen
//! is shared: when another program hides or removes it, control is taken away at once and,
//! unless it is back within [`BANNER_GRACE`], sharing pauses until it is.
//!
//! Files: this one (the session from start to end), `viewing` (the first question and the
//! start of sharing), `live` (the running session: the operator's messages, the customer's
//! keys, control), `banner` (the banner's fate: pause and resume), `link` (a broken connection
//! being repaired: control suspended, then back).

use crate::capture::Monitor;
use crate::customer::{self, Usage};
use crate::indicator::{Indicator, IndicatorEvent, IndicatorText};
use crate::rights::Rights;
use crate::share::ShareConfig;
use media_proof::MediaProof;
use sightline_core::cert::RecordingMode;
use sightline_core::messages::{CloseReason, Message};
use sightline_core::session_events::SessionEvent;
use sightline_net::cli::Output;
use sightline_net::resume::LinkEvent;
use signed_events::EventSigner;
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc::{self, unbounded_channel, UnboundedSender};
use tokio::sync::oneshot;

/// A banner hidden for longer than this pauses sharing (it is normally back within
/// milliseconds: the banner puts itself back).
pub const BANNER_GRACE: Duration = Duration::from_millis(300);
/// How often a lost banner is started again.
const BANNER_RETRY: Duration = Duration::from_secs(1);
/// How long the end of a session waits for the injector to release held keys.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Everything the customer's side of a session needs.
#[derive(Debug)]
pub struct Customer {
    /// Where events go.
    pub out: Output,
    /// The operator's verified display name.
    pub operator: String,
    /// Their organisation.
    pub organisation: String,
    /// What the certificate allows.
    pub rights: Rights,
    /// What to share.
    pub share: ShareConfig,
    /// How long the customer has to answer a question.
    pub consent_timeout: Duration,
    /// A LAN-only kiosk: its configuration answers the questions; nobody is at a terminal.
    pub unattended: bool,
    /// Told whether the operator is in control at each change (the kiosk's audit log).
    pub control_log: Option<UnboundedSender<bool>>,
    /// Signs the customer's decisions for the relay's audit log (relayed sessions).
    pub signed_events: Option<EventSigner>,
    /// Proves what video was sent, for recordings (relayed sessions).
    pub media: Option<MediaProof>,
    /// Whether the operator's certificate says the session is recorded.
    pub recording: RecordingMode,
}

/// The session's channels, as the controller sees them.
#[derive(Debug)]
pub struct Wire {
    /// Messages from the viewer.
    pub from_peer: mpsc::Receiver<Message>,
    /// Messages to the viewer.
    pub to_peer: mpsc::Sender<Message>,
    /// Tells the pump to close the session with this reason.
    pub close: oneshot::Sender<CloseReason>,
    /// News of the connection, for a session that resumes after a broken connection.
    pub link: Option<mpsc::Receiver<LinkEvent>>,
}

impl Customer {
    /// Records `event` for the relay's audit log, when this session has one.
    fn record(&self, event: SessionEvent) {
        if let Some(s) = &self.signed_events {
            s.record(event);
        }
    }

    /// Where a share sends its messages: through the media proof when there is one.
    fn video_sink(&self, to_peer: &mpsc::Sender<Message>) -> mpsc::Sender<Message> {
        match &self.media {
            Some(m) => m.tap(to_peer),
            None => to_peer.clone(),
        }
    }

    /// What the customer is told about recording, if anything: in the consent question and
    /// at the start of sharing.
    fn recording_notice(&self) -> Option<&'static str> {
        match self.recording {
            RecordingMode::Off => None,
            RecordingMode::Optional => {
                Some("The help desk may record this session for its auditors.")
            }
            RecordingMode::Required => {
                Some("This session is recorded for the help desk's auditors.")
            }
        }
    }

    /// Waits until the events recorded so far are on their way, before the close.
    async fn flush_events(&self) {
        if let Some(s) = &self.signed_events {
            s.flush().await;
        }
    }

    fn who(&self) -> String {
        if self.organisation.is_empty() {
            self.operator.clone()
        } else {
            format!("{} ({})", self.operator, self.organisation)
        }
    }

    fn banner_text(&self, in_control: bool) -> IndicatorText {
        IndicatorText {
            operator: self.operator.clone(),
            organisation: self.organisation.clone(),
            in_control,
            reconnecting: false,
            recording: self.recording,
        }
    }

    fn banner_text_reconnecting(&self) -> IndicatorText {
        IndicatorText {
            reconnecting: true,
            ..self.banner_text(false)
        }
    }

    /// Runs the customer's side until the session ends; returns what was used. `ending`
    /// resolves when the session must end for a reason of the agent's own (Ctrl-C or SIGTERM,
    /// the session limit, the certificate's expiry).
    pub async fn run(self, wire: Wire, ending: impl Future<Output = CloseReason>) -> Usage {
        tokio::pin!(ending);
        let Wire {
            mut from_peer,
            to_peer,
            close,
            link,
        } = wire;
        // An unattended kiosk has no one at a terminal to answer.
        let mut lines = if self.unattended {
            unbounded_channel().1
        } else {
            customer::stdin_lines()
        };
        let mut used = Usage::default();
        let verdict = tokio::select! {
            v = self.ask_viewing(&mut lines, &mut from_peer, &to_peer) => v,
            reason = &mut ending => Err(Some(reason)),
        };
        let started = match verdict {
            Ok(()) => self.start_sharing(&to_peer).await.map_err(Some),
            Err(reason) => Err(reason),
        };
        let mut live = match started {
            Ok(live) => live,
            Err(reason) => {
                if let Some(reason) = reason {
                    self.flush_events().await;
                    let _ = close.send(reason);
                }
                drain(from_peer).await;
                return used;
            }
        };
        used.view = true;
        live.link = link;
        let reason = live
            .serve(
                &self,
                &mut lines,
                &mut from_peer,
                &to_peer,
                &mut ending,
                &mut used,
            )
            .await;
        live.end().await;
        if let Some(media) = &self.media {
            media.finish(&to_peer).await;
        }
        if let Some(reason) = reason {
            self.flush_events().await;
            let _ = close.send(reason);
        }
        drain(from_peer).await;
        used
    }

    /// Starts the banner on `monitor` (one more try after a moment, for a display still
    /// starting up or a font server slow to answer, unless `once`).
    async fn show_banner(
        &self,
        monitor: &Monitor,
        events: &UnboundedSender<IndicatorEvent>,
        once: bool,
    ) -> Result<Indicator, String> {
        let (x, y, width) = (monitor.x, monitor.y, monitor.width);
        let mut shown = Indicator::start(x, y, width, self.banner_text(false), events.clone());
        if shown.is_err() && !once {
            tokio::time::sleep(Duration::from_millis(300)).await;
            shown = Indicator::start(x, y, width, self.banner_text(false), events.clone());
        }
        shown.map_err(|e| e.to_string())
    }
}

/// Waits for the session pump to finish (its channel closes).
async fn drain(mut from_peer: mpsc::Receiver<Message>) {
    while from_peer.recv().await.is_some() {}
}

mod banner;
mod link;
mod live;
pub mod media_proof;
pub mod signed_events;
mod viewing;
