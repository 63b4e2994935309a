//! The running session's switchboard: operator commands go to the agent, the agent's messages
//! go to the decoder and the UI, decoder reports become statistics and keyframe requests.
//!
//! Everything from the agent is checked here before it goes further ([`crate::limits`] for
//! sizes, [`Consent`] for control): a refused message is dropped with a log line and the
//! session goes on. Operator input goes out only while the customer grants control, the
//! certificate allows it and sharing is not paused.

use crate::client::{ClientCommand, ClientEvent, Events, SendRate, Stats, VIEW_ONLY_MESSAGE};
use crate::consent::{Consent, ControlVerdict, RequestOutcome};
use crate::decoder::{DecoderInput, DecoderReport, DecoderThread};
use crate::limits::{self, PictureSize};
use crate::recording::Sink;
use sightline_core::messages::{CloseReason, CursorShape, Message};
use sightline_core::session_events::SignedEvent;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long a recorded session's end waits for the agent to close it.
const AGENT_CLOSE_WAIT: Duration = Duration::from_secs(3);

/// Shortest time between two keyframe requests.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(300);

/// Shortest time between two warnings about refused messages (the rest go to debug), so an
/// agent cannot flood the log.
const WARNING_INTERVAL: Duration = Duration::from_secs(1);

/// What the dispatcher needs to know of the session.
pub(crate) struct SessionOptions {
    /// Whether the certificate allows control.
    pub may_control: bool,
    /// Where the agent's signed events go (to the relay's audit log), in relayed sessions.
    pub uplink: Option<mpsc::UnboundedSender<SignedEvent>>,
    /// The session's recording, when it is recorded.
    pub recording: Option<RecordingOptions>,
}

/// What the dispatcher does for a recorded session.
pub(crate) struct RecordingOptions {
    /// Where recorded messages and input go.
    pub sink: Sink,
    /// Says why if the recording cannot go on.
    pub failed: oneshot::Receiver<String>,
    /// Whether the session must end then.
    pub required: bool,
}

/// Routes between the UI, the session and the decoder until the UI goes away (or the session
/// has ended and everything it brought is handled).
pub(crate) async fn dispatch(
    mut commands: mpsc::Receiver<ClientCommand>,
    mut from_peer: mpsc::Receiver<Message>,
    mut reports: mpsc::UnboundedReceiver<DecoderReport>,
    to_peer: mpsc::Sender<Message>,
    decoder: DecoderThread,
    events: &Events,
    session: SessionOptions,
) {
    let mut d = Dispatcher::new(to_peer, decoder.input(), events, session.may_control);
    d.uplink = session.uplink;
    let (mut failed, required) = match session.recording {
        Some(r) => {
            d.recorder = Some(r.sink);
            (Some(r.failed), r.required)
        }
        None => (None, false),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut ui_open = true;
    loop {
        let end_by = d.ending;
        tokio::select! {
            why = async { failed.as_mut()?.await.ok() }, if failed.is_some() => {
                failed = None;
                let Some(why) = why else { continue };
                if d.recording_failed(why, required).await {
                    return;
                }
            }
            cmd = commands.recv(), if ui_open => match cmd {
                Some(cmd) => d.command(cmd).await,
                None => {
                    ui_open = false;
                    // A recorded session waits for the agent's own close (and the proof
                    // before it); otherwise the pump sends the close queued here.
                    if d.close().await {
                        return;
                    }
                }
            },
            () = async { tokio::time::sleep_until(end_by.unwrap_or_else(tokio::time::Instant::now)).await }, if end_by.is_some() => {
                // The agent did not close in time: the viewer does.
                d.ending = None;
                d.send_close(CloseReason::EndedByOperator).await;
                if !ui_open {
                    return;
                }
            }
            msg = from_peer.recv() => match msg {
                Some(msg) => d.message(msg).await,
                // The session ended and everything it brought is handled; the pump reports
                // how it ended.
                None => return,
            },
            report = reports.recv() => match report {
                Some(report) => d.report(report).await,
                None => std::future::pending::<()>().await,
            },
            _ = tick.tick() => d.tick().await,
        }
    }
}

/// The dispatcher's state between messages.
struct Dispatcher<'a> {
    to_peer: mpsc::Sender<Message>,
    decoder: mpsc::Sender<DecoderInput>,
    events: &'a Events,
    consent: Consent,
    /// The picture size the agent last announced, once accepted; `None` before the first
    /// announcement and after a refused one (packets are dropped meanwhile).
    stream: Option<PictureSize>,
    last_keyframe_request: Option<Instant>,
    window: StatsWindow,
    /// Warnings about refused sizes and data.
    warnings: Throttle,
    /// Warnings about grants nobody asked for.
    grant_warnings: Throttle,
    /// Where the agent's signed events go (to the relay's audit log), in relayed sessions.
    uplink: Option<mpsc::UnboundedSender<SignedEvent>>,
    /// Where the recording goes, when the session is recorded.
    recorder: Option<Sink>,
    /// The operator ended a recorded session and the agent was asked to close it: when the
    /// viewer closes it itself if the agent has not.
    ending: Option<tokio::time::Instant>,
    /// When a keyframe was last asked for the recording's sake.
    last_recording_keyframe: Instant,
}

impl<'a> Dispatcher<'a> {
    fn new(
        to_peer: mpsc::Sender<Message>,
        decoder: mpsc::Sender<DecoderInput>,
        events: &'a Events,
        may_control: bool,
    ) -> Self {
        Self {
            to_peer,
            decoder,
            events,
            consent: Consent::new(may_control),
            stream: None,
            last_keyframe_request: None,
            window: StatsWindow::new(),
            warnings: Throttle::default(),
            grant_warnings: Throttle::default(),
            uplink: None,
            recorder: None,
            ending: None,
            last_recording_keyframe: Instant::now(),
        }
    }

    async fn send(&self, msg: Message) {
        let _ = self.to_peer.send(msg).await;
    }

    async fn command(&mut self, cmd: ClientCommand) {
        match cmd {
            ClientCommand::Input(ev) => {
                if self.consent.forwards_input() {
                    if let Some(r) = &self.recorder {
                        r.input(&ev).await;
                    }
                    self.send(Message::Input(ev)).await;
                }
            }
            ClientCommand::RequestControl => match self.consent.request() {
                RequestOutcome::Send => self.send(Message::ControlRequest).await,
                RequestOutcome::Held => {
                    tracing::info!("control request held until the customer allows viewing");
                }
                RequestOutcome::NotPermitted => {
                    self.events
                        .emit(ClientEvent::Notice(VIEW_ONLY_MESSAGE.into()));
                }
            },
            ClientCommand::End => {
                self.close().await;
            }
            // The agent's key was settled before the session started.
            ClientCommand::AgentKey(_) => {}
        }
    }

    /// The operator ends the session. A recorded session asks the agent to close it, so that
    /// its final media checkpoint is in the recording (`false`: the close is still to come);
    /// otherwise the close goes out now (`true`).
    async fn close(&mut self) -> bool {
        if self.recorder.is_some() {
            if self.ending.is_none() {
                self.ending = Some(tokio::time::Instant::now() + AGENT_CLOSE_WAIT);
                self.send(Message::EndRequest).await;
            }
            return false;
        }
        self.send_close(CloseReason::EndedByOperator).await;
        true
    }

    async fn send_close(&self, reason: CloseReason) {
        self.send(Message::Close { reason }).await;
    }

    /// Video of any kind shows the customer allowed viewing: a held control request goes out.
    async fn video_arrived(&mut self) {
        if self.consent.video() {
            self.send(Message::ControlRequest).await;
        }
    }

    async fn message(&mut self, msg: Message) {
        // Recorded as received, before any check: the recording is what the agent sent.
        if let Some(r) = &self.recorder {
            r.agent(&msg).await;
        }
        match msg {
            Message::VideoConfig { width, height, .. } => {
                self.video_arrived().await;
                self.video_config(width, height).await;
            }
            Message::VideoPacket {
                seq,
                capture_us,
                keyframe,
                data,
            } => {
                // Acknowledged on arrival, before any check or decoding: the agent's congestion
                // control measures the path, not the decoder.
                self.send(Message::VideoAck { seq }).await;
                self.video_arrived().await;
                self.window.bytes = self.window.bytes.saturating_add(data.len() as u64);
                if let Err(why) = limits::check_packet(data.len(), self.stream) {
                    self.refused(&why, "dropping a video packet");
                    return;
                }
                let _ = self
                    .decoder
                    .send(DecoderInput::Packet {
                        seq,
                        capture_us,
                        keyframe,
                        data,
                    })
                    .await;
            }
            Message::Cursor {
                x,
                y,
                visible,
                shape,
            } => self.cursor(x, y, visible, shape),
            Message::Control { granted } => {
                // A revocation stops input here, before the UI hears of it; the agent
                // releases whatever the operator held.
                let verdict = self.consent.control(granted);
                self.control(verdict);
            }
            Message::ControlWithdrawn { reason } => {
                let verdict = self.consent.withdrawn(reason);
                self.control(verdict);
            }
            Message::SharingPaused { reason } => {
                if let Some(verdict) = self.consent.pause(reason) {
                    self.control(verdict);
                }
                self.events.emit(ClientEvent::SharingPaused(reason));
            }
            Message::SharingResumed => {
                self.consent.resume();
                self.events.emit(ClientEvent::SharingResumed);
            }
            Message::ConsentPending { what } => {
                self.events.emit(ClientEvent::ConsentPending(what));
            }
            Message::SendRate {
                target_kbps,
                send_kbps,
                fps,
                rtt_ms,
                queue_ms,
            } => {
                self.events.emit(ClientEvent::SendRate(SendRate {
                    target_kbps,
                    send_kbps,
                    fps,
                    rtt_ms,
                    queue_ms,
                }));
            }
            Message::SessionEvent(event) => {
                // Checked by the relay against the agent's key; a direct session has no relay.
                if let Some(uplink) = &self.uplink {
                    let _ = uplink.send(event);
                }
            }
            // Kept in the recording (above); checked by whoever verifies it.
            Message::MediaCheckpoint(_) => {}
            other => tracing::debug!(?other, "ignoring message"),
        }
    }

    /// A new stream configuration: accepted sizes restart the decoder; a refused one stops
    /// video until the next accepted one.
    async fn video_config(&mut self, width: u32, height: u32) {
        match PictureSize::new(width, height) {
            Ok(size) => {
                self.stream = Some(size);
                let _ = self.decoder.send(DecoderInput::Reset(size)).await;
                self.events.emit(ClientEvent::VideoConfig { width, height });
            }
            Err(why) => {
                self.stream = None;
                self.refused(&why, "refusing the agent's video configuration");
            }
        }
    }

    fn cursor(&mut self, x: f32, y: f32, visible: bool, shape: Option<CursorShape>) {
        let (x, y) = match limits::check_cursor_position(x, y) {
            Ok(pos) => pos,
            Err(why) => return self.refused(&why, "dropping a pointer update"),
        };
        let shape = match shape.map(|s| limits::check_cursor_shape(&s).map(|()| s)) {
            Some(Err(why)) => {
                self.refused(&why, "dropping a pointer image");
                None
            }
            Some(Ok(s)) => Some(s),
            None => None,
        };
        self.events.emit(ClientEvent::Cursor {
            x,
            y,
            visible,
            shape,
        });
    }

    fn control(&mut self, verdict: ControlVerdict) {
        match verdict {
            ControlVerdict::Report { granted, withdrawn } => {
                self.events
                    .emit(ClientEvent::Control { granted, withdrawn });
            }
            ControlVerdict::AlreadyReported => {
                tracing::debug!("control withdrawn, as reported");
            }
            ControlVerdict::Unrequested => {
                let what =
                    "ignoring a control grant this viewer did not ask for; input stays blocked";
                if self.grant_warnings.due() {
                    tracing::warn!("{what}");
                } else {
                    tracing::debug!("{what}");
                }
            }
        }
    }

    /// Logs a refused message: a warning at most once per [`WARNING_INTERVAL`], debug lines
    /// otherwise.
    fn refused(&mut self, why: &limits::LimitError, what: &str) {
        if self.warnings.due() {
            tracing::warn!(%why, "{what}");
        } else {
            tracing::debug!(%why, "{what}");
        }
    }

    async fn report(&mut self, report: DecoderReport) {
        match report {
            DecoderReport::Decoded {
                seq,
                bytes,
                keyframe,
                width,
                height,
                capture_us,
                decoded_us,
            } => {
                // The agent's clock: a capture time in the future counts as no delay.
                let latency_ms = decoded_us.saturating_sub(capture_us) as f64 / 1000.0;
                self.window.frames = self.window.frames.saturating_add(1);
                self.window.latency_sum += latency_ms;
                self.events.emit(ClientEvent::FrameDecoded {
                    seq,
                    bytes,
                    keyframe,
                    width,
                    height,
                    latency_ms,
                });
            }
            DecoderReport::NeedKeyframe(why) => {
                let due = self
                    .last_keyframe_request
                    .is_none_or(|t| t.elapsed() > KEYFRAME_REQUEST_INTERVAL);
                if due {
                    tracing::info!(%why, "requesting a keyframe");
                    self.last_keyframe_request = Some(Instant::now());
                    self.send(Message::KeyframeRequest).await;
                }
            }
        }
    }

    async fn tick(&mut self) {
        if let Some(stats) = self.window.take() {
            self.events.emit(ClientEvent::Stats(stats));
        }
        // Keyframes at least every few seconds, so that playback can seek anywhere fast.
        if self.recorder.is_some()
            && self.last_recording_keyframe.elapsed() >= crate::recording::KEYFRAME_EVERY
        {
            self.last_recording_keyframe = Instant::now();
            self.send(Message::KeyframeRequest).await;
        }
    }

    /// The recording cannot go on: a required one ends the session (`true`), an optional one
    /// is reported and the session goes on.
    async fn recording_failed(&mut self, why: String, required: bool) -> bool {
        self.recorder = None;
        if required {
            self.events.emit(ClientEvent::Notice(format!(
                "ending the session: the help desk requires recording, and {why}"
            )));
            self.send_close(CloseReason::RecordingFailed).await;
            true
        } else {
            self.events.emit(ClientEvent::Notice(format!(
                "the session is no longer recorded: {why}"
            )));
            false
        }
    }
}

/// Lets an action happen at most once per [`WARNING_INTERVAL`].
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
}

impl Throttle {
    fn due(&mut self) -> bool {
        let due = self.last.is_none_or(|t| t.elapsed() >= WARNING_INTERVAL);
        if due {
            self.last = Some(Instant::now());
        }
        due
    }
}

struct StatsWindow {
    started: Instant,
    frames: u64,
    bytes: u64,
    latency_sum: f64,
}

impl StatsWindow {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            frames: 0,
            bytes: 0,
            latency_sum: 0.0,
        }
    }

    fn take(&mut self) -> Option<Stats> {
        // Never divide by (almost) nothing: the first tick comes at once.
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let out = (self.frames > 0 || self.bytes > 0).then(|| Stats {
            fps: self.frames as f64 / secs,
            kbps: self.bytes as f64 * 8.0 / 1000.0 / secs,
            latency_ms: if self.frames > 0 {
                self.latency_sum / self.frames as f64
            } else {
                0.0
            },
        });
        *self = Self::new();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_core::messages::{InputEvent, PauseReason, WithdrawReason};
    use std::sync::mpsc as std_mpsc;
    use std::sync::Arc;

    /// A dispatcher wired to channels the test reads: what goes to the agent, to the decoder,
    /// and to the UI.
    struct Rig {
        to_peer: mpsc::Receiver<Message>,
        decoder: mpsc::Receiver<DecoderInput>,
        events: std_mpsc::Receiver<ClientEvent>,
    }

    impl Rig {
        fn sent(&mut self) -> Vec<Message> {
            std::iter::from_fn(|| self.to_peer.try_recv().ok()).collect()
        }

        fn decoded(&mut self) -> Vec<DecoderInput> {
            std::iter::from_fn(|| self.decoder.try_recv().ok()).collect()
        }

        fn events(&mut self) -> Vec<ClientEvent> {
            self.events.try_iter().collect()
        }
    }

    /// Runs `body` with a dispatcher for an operator who may control.
    fn with_dispatcher(body: impl AsyncFnOnce(&mut Dispatcher<'_>, &mut Rig)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let (peer_tx, peer_rx) = mpsc::channel(64);
        let (dec_tx, dec_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = std_mpsc::channel();
        let events = Events {
            tx: ev_tx,
            notify: Arc::new(|| {}),
        };
        let mut rig = Rig {
            to_peer: peer_rx,
            decoder: dec_rx,
            events: ev_rx,
        };
        let mut d = Dispatcher::new(peer_tx, dec_tx, &events, true);
        rt.block_on(body(&mut d, &mut rig));
    }

    fn config(width: u32, height: u32) -> Message {
        Message::VideoConfig {
            codec: sightline_core::messages::VideoCodec::Av1,
            width,
            height,
        }
    }

    fn packet(seq: u64, len: usize) -> Message {
        Message::VideoPacket {
            seq,
            capture_us: 0,
            keyframe: true,
            data: vec![0; len],
        }
    }

    fn input() -> ClientCommand {
        ClientCommand::Input(InputEvent::PointerMove { x: 0.5, y: 0.5 })
    }

    fn control_events(events: &[ClientEvent]) -> Vec<(bool, Option<WithdrawReason>)> {
        events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Control { granted, withdrawn } => Some((*granted, *withdrawn)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_unrequested_grant_is_ignored() {
        with_dispatcher(async |d, rig| {
            d.message(config(64, 48)).await;
            d.message(Message::Control { granted: true }).await;
            assert!(control_events(&rig.events()).is_empty(), "not shown");
            d.command(input()).await;
            assert!(
                !rig.sent().iter().any(|m| matches!(m, Message::Input(_))),
                "input stays blocked"
            );
            // Asked for, the grant counts.
            d.command(ClientCommand::RequestControl).await;
            assert!(matches!(rig.sent().as_slice(), [Message::ControlRequest]));
            d.message(Message::Control { granted: true }).await;
            assert_eq!(control_events(&rig.events()), vec![(true, None)]);
            d.command(input()).await;
            assert!(matches!(rig.sent().as_slice(), [Message::Input(_)]));
            // The customer takes it back: always believed.
            d.message(Message::Control { granted: false }).await;
            assert_eq!(control_events(&rig.events()), vec![(false, None)]);
            d.command(input()).await;
            assert!(rig.sent().is_empty());
            // And a grant after that, unasked, is ignored again.
            d.message(Message::Control { granted: true }).await;
            assert!(rig.events().is_empty());
        });
    }

    #[test]
    fn a_withdrawal_and_a_pause_are_reported_with_their_reasons() {
        with_dispatcher(async |d, rig| {
            d.message(config(64, 48)).await;
            d.command(ClientCommand::RequestControl).await;
            d.message(Message::Control { granted: true }).await;
            rig.events();
            d.message(Message::ControlWithdrawn {
                reason: WithdrawReason::BannerGone,
            })
            .await;
            d.command(input()).await;
            d.message(Message::Control { granted: false }).await;
            d.message(Message::SharingPaused {
                reason: PauseReason::BannerGone,
            })
            .await;
            d.message(Message::Control { granted: true }).await;
            let events = rig.events();
            assert_eq!(
                control_events(&events),
                vec![(false, Some(WithdrawReason::BannerGone))],
                "one control event, with the reason: {events:?}"
            );
            assert!(matches!(
                events.last(),
                Some(ClientEvent::SharingPaused(PauseReason::BannerGone))
            ));
            d.message(Message::SharingResumed).await;
            assert!(matches!(
                rig.events().as_slice(),
                [ClientEvent::SharingResumed]
            ));
            d.command(input()).await;
            assert!(
                !rig.sent().iter().any(|m| matches!(m, Message::Input(_))),
                "control must be asked for again"
            );
        });
    }

    #[test]
    fn only_checked_sizes_reach_the_decoder() {
        with_dispatcher(async |d, rig| {
            // Before any configuration: acknowledged, not decoded.
            d.message(packet(1, 100)).await;
            assert!(matches!(
                rig.sent().as_slice(),
                [Message::VideoAck { seq: 1 }]
            ));
            assert!(rig.decoded().is_empty());
            for (w, h) in [(0, 0), (100_000, 100_000), (0, 480)] {
                d.message(config(w, h)).await;
            }
            d.message(packet(2, 100)).await;
            assert!(rig.decoded().is_empty(), "no accepted configuration yet");
            assert!(
                !rig.events()
                    .iter()
                    .any(|e| matches!(e, ClientEvent::VideoConfig { .. })),
                "refused sizes are not shown"
            );
            d.message(config(640, 480)).await;
            assert!(matches!(
                rig.events().as_slice(),
                [ClientEvent::VideoConfig {
                    width: 640,
                    height: 480
                }]
            ));
            d.message(packet(u64::MAX, 100)).await;
            let limit = PictureSize::new(640, 480).expect("size").packet_limit();
            d.message(packet(0, limit + 1)).await;
            d.message(packet(1, limit)).await;
            let seqs: Vec<_> = rig
                .decoded()
                .into_iter()
                .map(|i| match i {
                    DecoderInput::Reset(s) => format!("reset {}x{}", s.width(), s.height()),
                    DecoderInput::Packet { seq, .. } => format!("packet {seq}"),
                })
                .collect();
            assert_eq!(
                seqs,
                vec!["reset 640x480", &format!("packet {}", u64::MAX), "packet 1"]
            );
            // A refused configuration stops video until the next good one.
            d.message(config(0, 0)).await;
            d.message(packet(2, 100)).await;
            assert!(rig.decoded().is_empty());
            let acks = rig
                .sent()
                .iter()
                .filter(|m| matches!(m, Message::VideoAck { .. }))
                .count();
            assert_eq!(acks, 5, "every packet that arrived is acknowledged");
        });
    }

    #[test]
    fn bad_pointer_images_and_positions_are_dropped() {
        with_dispatcher(async |d, rig| {
            let shape = |len| CursorShape {
                width: 16,
                height: 16,
                hot_x: 1,
                hot_y: 1,
                rgba: vec![255; len],
            };
            d.message(Message::Cursor {
                x: 0.5,
                y: 2.0,
                visible: true,
                shape: Some(shape(16 * 16 * 4 - 4)),
            })
            .await;
            d.message(Message::Cursor {
                x: f32::NAN,
                y: 0.5,
                visible: true,
                shape: Some(shape(16 * 16 * 4)),
            })
            .await;
            d.message(Message::Cursor {
                x: 0.25,
                y: 0.5,
                visible: true,
                shape: Some(shape(16 * 16 * 4)),
            })
            .await;
            let events = rig.events();
            match events.as_slice() {
                [ClientEvent::Cursor {
                    x: x1,
                    y: y1,
                    shape: None,
                    ..
                }, ClientEvent::Cursor {
                    x: x2,
                    shape: Some(s),
                    ..
                }] => {
                    assert_eq!((*x1, *y1), (0.5, 1.0), "clamped, shape dropped");
                    assert_eq!(*x2, 0.25);
                    assert_eq!(s.rgba.len(), 1024);
                }
                other => panic!("{other:?}"),
            }
        });
    }

    #[test]
    fn warnings_are_throttled() {
        let mut t = Throttle::default();
        assert!(t.due());
        assert!(!t.due(), "not again within the interval");
        t.last = Instant::now().checked_sub(WARNING_INTERVAL);
        assert!(t.due());
    }

    #[test]
    fn capture_times_from_the_future_do_not_underflow() {
        with_dispatcher(async |d, rig| {
            for capture_us in [u64::MAX, 0] {
                d.report(DecoderReport::Decoded {
                    seq: 1,
                    bytes: 10,
                    keyframe: true,
                    width: 64,
                    height: 48,
                    capture_us,
                    decoded_us: 1_000_000,
                })
                .await;
            }
            let latencies: Vec<f64> = rig
                .events()
                .iter()
                .filter_map(|e| match e {
                    ClientEvent::FrameDecoded { latency_ms, .. } => Some(*latency_ms),
                    _ => None,
                })
                .collect();
            assert_eq!(latencies, vec![0.0, 1000.0]);
        });
    }
}
