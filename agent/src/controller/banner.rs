//! The banner's fate during a session: hidden or moved by another program (control is taken
//! away; sharing pauses if it is not back within the grace), lost with its X connection
//! (sharing pauses; a new banner is tried every second), back (sharing goes on).

use super::live::Live;
use super::{Customer, BANNER_GRACE, BANNER_RETRY};
use crate::indicator::{Hotkey, IndicatorEvent};
use crate::share;
use serde_json::json;
use sightline_core::messages::{CloseReason, Message, PauseReason, WithdrawReason};
use std::time::Instant;
use tokio::sync::mpsc;

/// Where the banner stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Banner {
    /// There is none (no X display: the terminal carries the status).
    None,
    /// Up and in place.
    Showing,
    /// Another program hid or moved it since this moment; it is being put back.
    Hidden(Instant),
    /// Hidden too long, or its connection broke: sharing is paused until it is back. `retry`:
    /// when to start a new one (its connection broke).
    Paused { retry: Option<Instant> },
}

impl Banner {
    /// When something is due: the end of the grace, a retry.
    pub(super) fn deadline(self) -> Option<Instant> {
        match self {
            Banner::Hidden(since) => Some(since + BANNER_GRACE),
            Banner::Paused { retry } => retry,
            Banner::None | Banner::Showing => None,
        }
    }
}

impl Live {
    /// A banner deadline may have passed at `now`: the grace (pause), a retry (show again).
    pub(super) async fn banner_due(
        &mut self,
        c: &Customer,
        to_peer: &mpsc::Sender<Message>,
        now: Instant,
    ) {
        match self.banner {
            Banner::Hidden(since) if now >= since + BANNER_GRACE => {
                self.pause(c, to_peer, None).await;
            }
            Banner::Paused { retry: Some(at) } if now >= at => {
                match c.show_banner(&self.monitor, &self.banner_tx, true).await {
                    Ok(i) => {
                        self.indicator = Some(i);
                        self.resume(c, to_peer).await;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "the session banner cannot be shown yet");
                        self.banner = Banner::Paused {
                            retry: Some(now + BANNER_RETRY),
                        };
                    }
                }
            }
            _ => {}
        }
    }

    /// An event from the banner.
    pub(super) async fn on_banner(
        &mut self,
        c: &Customer,
        event: IndicatorEvent,
        to_peer: &mpsc::Sender<Message>,
    ) -> Option<super::live::Stop> {
        match event {
            IndicatorEvent::Hotkey(Hotkey::RevokeControl) => self.revoke(c, to_peer).await,
            IndicatorEvent::Hotkey(Hotkey::EndSession) => {
                self.stop_input(c, to_peer, None).await;
                return Some(Some(CloseReason::EndedByCustomer));
            }
            IndicatorEvent::Hidden(what) => {
                tracing::warn!("the session banner was {what} by another program");
                self.withdraw(c, to_peer, WithdrawReason::BannerGone).await;
                if self.banner == Banner::Showing {
                    self.banner = Banner::Hidden(Instant::now());
                }
            }
            IndicatorEvent::Shown => match self.banner {
                Banner::Hidden(_) => self.banner = Banner::Showing,
                Banner::Paused { .. } => self.resume(c, to_peer).await,
                Banner::None | Banner::Showing => {}
            },
            IndicatorEvent::Hotkeys(keys) => {
                if !keys.contains(&Hotkey::RevokeControl) {
                    self.withdraw(c, to_peer, WithdrawReason::RevokeKeyUnavailable)
                        .await;
                }
            }
            IndicatorEvent::Lost(why) => {
                tracing::warn!(%why, "the session banner is gone; pausing until it is back");
                self.indicator = None;
                self.withdraw(c, to_peer, WithdrawReason::BannerGone).await;
                self.pause(c, to_peer, Some(Instant::now() + BANNER_RETRY))
                    .await;
            }
        }
        None
    }

    /// Stops sharing until the banner is back (`retry`: when to start a new one).
    pub(super) async fn pause(
        &mut self,
        c: &Customer,
        to_peer: &mpsc::Sender<Message>,
        retry: Option<Instant>,
    ) {
        let was_sharing = self.share.take().is_some();
        self.banner = Banner::Paused { retry };
        if was_sharing {
            let _ = to_peer
                .send(Message::SharingPaused {
                    reason: PauseReason::BannerGone,
                })
                .await;
            c.out.event(
                json!({"event": "paused", "reason": PauseReason::BannerGone.to_string()}),
                || "The session banner is gone: sharing is paused until it is back.".into(),
            );
        }
    }

    /// The banner is back: sharing goes on.
    pub(super) async fn resume(&mut self, c: &Customer, to_peer: &mpsc::Sender<Message>) {
        self.banner = Banner::Showing;
        if self.share.is_some() {
            return;
        }
        match share::start(c.share, c.video_sink(to_peer)) {
            Ok(s) => {
                self.share = Some(s);
                let _ = to_peer.send(Message::SharingResumed).await;
                c.out.event(json!({"event": "resumed"}), || {
                    "The session banner is back: sharing goes on.".into()
                });
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot share the screen again");
                self.banner = Banner::Paused {
                    retry: Some(Instant::now() + BANNER_RETRY),
                };
            }
        }
    }
}
