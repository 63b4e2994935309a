//! The running session: the operator's messages, the customer's keys and hotkeys, the
//! control question, and taking control away. Control ends without waiting for the injector.

use super::banner::Banner;
use super::{Customer, RELEASE_WAIT};
use crate::capture::Monitor;
use crate::control::{Control as Input, Queued, Stopping};
use crate::control_state::{ControlState, OnEnd, OnRequest, Refusal};
use crate::customer::{self, Answer, Command, Usage};
use crate::indicator::{Hotkey, Indicator, IndicatorEvent};
use crate::rights::InputGate;
use crate::share::ShareHandle;
use serde_json::json;
use sightline_core::messages::{CloseReason, ConsentFor, InputEvent, Message, WithdrawReason};
use sightline_core::session_events::{Answer as Reply, Consent, RevokedBy, SessionEvent};
use sightline_net::resume::LinkEvent;
use std::future::Future;
use std::time::Instant;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

/// A session while the screen is shared.
pub(super) struct Live {
    pub(super) control: ControlState,
    pub(super) gate: InputGate,
    /// The injector, while control is granted.
    pub(super) input: Option<Input>,
    /// Revoked injectors releasing what the operator held.
    pub(super) stopping: Vec<tokio::task::JoinHandle<()>>,
    pub(super) monitor: Monitor,
    /// Capture and encoding; `None` while paused.
    pub(super) share: Option<ShareHandle>,
    pub(super) banner: Banner,
    pub(super) indicator: Option<Indicator>,
    pub(super) banner_tx: UnboundedSender<IndicatorEvent>,
    pub(super) banner_rx: UnboundedReceiver<IndicatorEvent>,
    pub(super) stdin_open: bool,
    /// Input events dropped for lack of a grant.
    pub(super) ungranted: u64,
    /// News of the connection (a relayed session); `None` once the pump is done, or without.
    pub(super) link: Option<mpsc::Receiver<LinkEvent>>,
    /// The connection is being repaired: control is suspended.
    pub(super) suspended: bool,
}

/// Why the main loop stopped: a reason to close with, or `None` when the session is gone.
pub(super) type Stop = Option<CloseReason>;

impl Live {
    /// The main loop: the operator's messages, the customer's keys, the banner, the ending.
    pub(super) async fn serve(
        &mut self,
        c: &Customer,
        lines: &mut UnboundedReceiver<String>,
        from_peer: &mut mpsc::Receiver<Message>,
        to_peer: &mpsc::Sender<Message>,
        ending: &mut std::pin::Pin<&mut impl Future<Output = CloseReason>>,
        used: &mut Usage,
    ) -> Stop {
        loop {
            let wake = self.next_deadline();
            let timer = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // Biased: the customer's keys and the end come before the operator's flood.
                biased;
                reason = ending.as_mut() => {
                    self.stop_input(c, to_peer, None).await;
                    return Some(reason);
                }
                line = lines.recv(), if self.stdin_open => match line {
                    Some(line) => {
                        if let Some(stop) = self.on_line(c, &line, to_peer, used).await {
                            return stop;
                        }
                    }
                    // No more terminal input: the hotkeys and Ctrl-C still work.
                    None => self.stdin_open = false,
                },
                event = self.banner_rx.recv() => {
                    if let Some(event) = event {
                        if let Some(stop) = self.on_banner(c, event, to_peer).await {
                            return stop;
                        }
                    }
                }
                () = timer => self.on_timer(c, to_peer).await,
                Some(event) = super::link::next_event(&mut self.link) => {
                    self.on_link(c, event, to_peer).await;
                }
                msg = from_peer.recv() => match msg {
                    Some(Message::EndRequest) => {
                        // The operator ends: the session closes from here, after the proof of
                        // what was sent.
                        self.stop_input(c, to_peer, None).await;
                        return Some(CloseReason::EndedByOperator);
                    }
                    Some(msg) => self.on_peer(c, msg, to_peer, used).await,
                    None => return None,
                },
            }
        }
    }

    /// The next moment something is due: a control question's deadline, the banner's grace,
    /// a retry to show it.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        [self.control.deadline(), self.banner.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// A line the customer typed.
    pub(super) async fn on_line(
        &mut self,
        c: &Customer,
        line: &str,
        to_peer: &mpsc::Sender<Message>,
        used: &mut Usage,
    ) -> Option<Stop> {
        if self.control.is_asking() {
            let allowed = customer::parse_answer(line) == Answer::Yes;
            self.answer_control(c, allowed, to_peer, used).await;
            return None;
        }
        match customer::parse_command(line) {
            Some(Command::RevokeControl) => self.revoke(c, to_peer).await,
            Some(Command::End) => {
                self.stop_input(c, to_peer, None).await;
                return Some(Some(CloseReason::EndedByCustomer));
            }
            Some(Command::Help) => {
                let in_control = self.control.is_granted();
                c.out.event(json!({"event": "help"}), || {
                    format!("Keys: {}.", customer::keys_help(in_control))
                });
            }
            None => {}
        }
        None
    }

    /// A deadline passed: a control question, the banner's grace, a retry.
    pub(super) async fn on_timer(&mut self, c: &Customer, to_peer: &mpsc::Sender<Message>) {
        let now = Instant::now();
        if self.control.expire(now) {
            c.record(answered(Reply::TimedOut));
            c.out.event(
                json!({"event": "consent", "what": "control", "allowed": false, "timed_out": true}),
                || "\nNo answer; the operator did not get control.".into(),
            );
            let _ = to_peer.send(Message::Control { granted: false }).await;
        }
        self.banner_due(c, to_peer, now).await;
    }

    /// A message from the operator.
    pub(super) async fn on_peer(
        &mut self,
        c: &Customer,
        msg: Message,
        to_peer: &mpsc::Sender<Message>,
        used: &mut Usage,
    ) {
        match msg {
            Message::KeyframeRequest => {
                if let Some(s) = &self.share {
                    s.request_keyframe();
                }
            }
            Message::VideoAck { seq } => {
                if let Some(s) = &self.share {
                    s.ack(seq);
                }
            }
            // Deny by default: the certificate and the customer's grant decide.
            Message::Input(ev) => self.on_input(ev),
            Message::ControlRequest => self.on_control_request(c, to_peer, used).await,
            other => tracing::debug!(?other, "ignoring message"),
        }
    }

    pub(super) fn on_input(&mut self, ev: InputEvent) {
        let Some(ev) = self.gate.admit(ev) else {
            return;
        };
        match &self.input {
            Some(input) if self.control.is_granted() && !self.suspended => {
                if input.inject(ev) == Queued::Full {
                    tracing::debug!("input queue full; event dropped");
                }
            }
            _ => {
                self.ungranted += 1;
                if self.ungranted.is_power_of_two() {
                    tracing::warn!(
                        dropped = self.ungranted,
                        "input without the customer's grant of control dropped"
                    );
                }
            }
        }
    }

    /// Whether the customer can take control back now: the revoke hotkey is grabbed, or, with
    /// no banner on this display at all, an attended terminal is open.
    pub(super) fn way_back(&self) -> bool {
        match &self.indicator {
            Some(i) => i.hotkeys().contains(&Hotkey::RevokeControl),
            None => self.banner == Banner::None && self.stdin_open,
        }
    }

    pub(super) async fn on_control_request(
        &mut self,
        c: &Customer,
        to_peer: &mpsc::Sender<Message>,
        used: &mut Usage,
    ) {
        let paused = matches!(self.banner, Banner::Hidden(_) | Banner::Paused { .. });
        match self
            .control
            .request(Instant::now(), self.way_back(), paused)
        {
            OnRequest::Ask => {
                let _ = to_peer
                    .send(Message::ConsentPending {
                        what: ConsentFor::Control,
                    })
                    .await;
                c.record(SessionEvent::Asked {
                    what: Consent::Control,
                });
                c.out.event(
                    json!({"event": "consent_request", "what": "control", "timeout_secs": c.consent_timeout.as_secs()}),
                    || format!("\n{} asks to control your keyboard and mouse.\n{}: ", c.operator, customer::ALLOW_PROMPT),
                );
            }
            OnRequest::Grant => self.grant(c, to_peer, used).await,
            OnRequest::Refuse(why) => {
                match why {
                    Refusal::NotPermitted => tracing::warn!(
                        "control requested by an operator without the control permission"
                    ),
                    Refusal::NoWayBack => {
                        tracing::warn!("control refused: the customer has no revoke hotkey");
                        c.out.event(
                            json!({"event": "notice", "message": "control refused: another program holds Ctrl+Alt+R"}),
                            || format!("{} asked for control; it was refused because another program holds Ctrl+Alt+R, so you could not take it back.", c.operator),
                        );
                        let _ = to_peer
                            .send(Message::ControlWithdrawn {
                                reason: WithdrawReason::RevokeKeyUnavailable,
                            })
                            .await;
                    }
                    Refusal::Paused => {
                        let _ = to_peer
                            .send(Message::ControlWithdrawn {
                                reason: WithdrawReason::BannerGone,
                            })
                            .await;
                    }
                }
                let _ = to_peer.send(Message::Control { granted: false }).await;
            }
            OnRequest::Ignore => {}
        }
    }

    /// The customer answered the control question.
    pub(super) async fn answer_control(
        &mut self,
        c: &Customer,
        allowed: bool,
        to_peer: &mpsc::Sender<Message>,
        used: &mut Usage,
    ) {
        if self.control.answer(allowed) {
            self.grant(c, to_peer, used).await;
        } else {
            c.record(answered(Reply::Declined));
            c.out.event(
                json!({"event": "consent", "what": "control", "allowed": false}),
                || "You refused control.".into(),
            );
            let _ = to_peer.send(Message::Control { granted: false }).await;
        }
    }

    /// Starts injecting and tells everyone.
    pub(super) async fn grant(
        &mut self,
        c: &Customer,
        to_peer: &mpsc::Sender<Message>,
        used: &mut Usage,
    ) {
        let monitor = self
            .share
            .as_ref()
            .map_or_else(|| self.monitor.clone(), |s| s.monitor.clone());
        match tokio::task::spawn_blocking(move || Input::start(monitor)).await {
            Ok(Ok(input)) => {
                self.input = Some(input);
                self.control.started();
                used.control = true;
                let _ = to_peer.send(Message::Control { granted: true }).await;
                if let Some(i) = &self.indicator {
                    i.set_text(c.banner_text(true));
                }
                c.record(answered(Reply::Given));
                if c.unattended {
                    c.out.event(
                        json!({"event": "consent", "what": "control", "allowed": true, "by": "kiosk configuration"}),
                        || "Control granted (allowed by the kiosk's configuration).".into(),
                    );
                } else {
                    c.out.event(
                        json!({"event": "consent", "what": "control", "allowed": true}),
                        || "You allowed control.".into(),
                    );
                }
                self.status(c, true);
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot inject input");
                c.out.event(
                    json!({"event": "error", "message": format!("cannot give control: {e}")}),
                    || format!("Cannot give control: {e}"),
                );
                let _ = to_peer.send(Message::Control { granted: false }).await;
            }
            Err(_) => {
                let _ = to_peer.send(Message::Control { granted: false }).await;
            }
        }
    }

    /// The customer takes control back (or closes an open question with a no).
    pub(super) async fn revoke(&mut self, c: &Customer, to_peer: &mpsc::Sender<Message>) {
        match self.control.revoke() {
            OnEnd::StopInput => {
                self.stop_input(c, to_peer, None).await;
                c.record(SessionEvent::ControlRevoked {
                    by: RevokedBy::Customer,
                });
                c.out.event(
                    json!({"event": "control", "granted": false, "by": "customer"}),
                    || "You took back control.".into(),
                );
                self.status(c, false);
            }
            OnEnd::Decline => {
                let _ = to_peer.send(Message::Control { granted: false }).await;
                c.record(answered(Reply::Declined));
                c.out.event(
                    json!({"event": "consent", "what": "control", "allowed": false}),
                    || "You refused control.".into(),
                );
            }
            OnEnd::Nothing => {}
        }
    }

    /// The agent takes control away (or refuses an open question) for `reason`.
    pub(super) async fn withdraw(
        &mut self,
        c: &Customer,
        to_peer: &mpsc::Sender<Message>,
        reason: WithdrawReason,
    ) {
        let end = self.control.revoke();
        if end == OnEnd::Nothing {
            return;
        }
        let _ = to_peer.send(Message::ControlWithdrawn { reason }).await;
        if end == OnEnd::StopInput {
            self.stop_input(c, to_peer, Some(reason)).await;
        } else {
            let _ = to_peer.send(Message::Control { granted: false }).await;
        }
        let taken = end == OnEnd::StopInput;
        c.record(if taken {
            SessionEvent::ControlRevoked {
                by: RevokedBy::Session,
            }
        } else {
            answered(Reply::Declined)
        });
        c.out.event(
            json!({"event": "control", "granted": false, "by": "agent", "reason": reason.to_string()}),
            || {
                if taken {
                    format!("Control was taken from the operator: {reason}.")
                } else {
                    format!("The operator's request for control was refused: {reason}.")
                }
            },
        );
        self.status(c, false);
    }

    /// Stops injection at once (without waiting for the injector) and tells the viewer; the
    /// injector releases what the operator held on its own thread.
    pub(super) async fn stop_input(
        &mut self,
        c: &Customer,
        to_peer: &mpsc::Sender<Message>,
        why: Option<WithdrawReason>,
    ) {
        let _ = self.control.revoke();
        let Some(input) = self.input.take() else {
            return;
        };
        let stopping: Stopping = input.revoke();
        self.stopping.push(tokio::task::spawn_blocking(move || {
            match stopping.wait(RELEASE_WAIT) {
                Some(r) => tracing::info!(
                    last_event_after_stop_ms =
                        r.last_event_after_stop.map(|d| d.as_secs_f64() * 1000.0),
                    discarded = r.discarded,
                    dropped = r.dropped,
                    "input stopped; held keys and buttons released"
                ),
                None => tracing::warn!("the input thread did not finish releasing held keys"),
            }
        }));
        let _ = to_peer.send(Message::Control { granted: false }).await;
        if let Some(i) = &self.indicator {
            i.set_text(c.banner_text(false));
        }
        if let Some(reason) = why {
            tracing::warn!(%reason, "control withdrawn");
        }
    }

    /// Tells the customer where things stand.
    pub(super) fn status(&self, c: &Customer, in_control: bool) {
        if let Some(log) = &c.control_log {
            let _ = log.send(in_control);
        }
        c.out.event(
            json!({"event": "status", "watching": true, "in_control": in_control}),
            || {
                if in_control {
                    format!(
                        "Status: {} controls your keyboard and mouse. Keys: {}.",
                        c.operator,
                        customer::keys_help(true)
                    )
                } else {
                    format!(
                        "Status: {} is watching. Keys: {}.",
                        c.operator,
                        customer::keys_help(false)
                    )
                }
            },
        );
    }

    /// The end: capture stops, every held key and button is released (waited for, briefly),
    /// the banner comes down.
    pub(super) async fn end(&mut self) {
        self.share = None;
        if let Some(input) = self.input.take() {
            let stopping = input.revoke();
            self.stopping.push(tokio::task::spawn_blocking(move || {
                let _ = stopping.wait(RELEASE_WAIT);
            }));
        }
        for task in self.stopping.drain(..) {
            let _ = task.await;
        }
        self.indicator = None;
    }
}

/// The customer's answer to the control question, as a signed event.
fn answered(answer: Reply) -> SessionEvent {
    SessionEvent::Answered {
        what: Consent::Control,
        answer,
    }
}
