//! `viewer session`: the operator's session without a window, for automation and tests.
//! Prints events (human lines or JSON), optionally stops after N decoded frames, saves the last
//! picture as PNG, asks the customer for control and plays an input script once they allow it
//! (both need an account allowed to control: without it the session fails right after login,
//! before a code is issued or anything is sent).

use crate::client::{
    self, consent_pending_text, ClientCommand, ClientEvent, ControlAnswer, OperatorRights, Start,
};
use crate::gui::json_out::{
    connected_json, consent_json, control_json, direct_json, login_json, notice_json,
};
use crate::script::Step;
use serde_json::json;
use sightline_core::messages::CloseReason;
use sightline_net::cli::{self, Output};
use sightline_net::session::SessionEnd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// What to do besides holding the session.
#[derive(Debug, Default)]
pub struct Options {
    /// End normally after this many decoded frames.
    pub frames: Option<u64>,
    /// Save the last decoded frame here (PNG) when the session ends.
    pub save_frame: Option<PathBuf>,
    /// Input script to play once the customer allows control (asked for on connection).
    pub script: Option<Vec<Step>>,
    /// Ask the customer for control on connection, without a script.
    pub request_control: bool,
}

impl Options {
    /// Whether the session asks for control (and so needs the control permission).
    fn wants_control(&self) -> bool {
        self.script.is_some() || self.request_control
    }
}

/// Errors of the headless session.
#[derive(Debug, thiserror::Error)]
pub enum HeadlessError {
    /// The client failed before or during the session.
    #[error("{0}")]
    Client(String),
    /// An input script or a control request was asked for but the operator's certificate
    /// does not allow control.
    #[error("{}", client::VIEW_ONLY_MESSAGE)]
    ViewOnly,
    /// The frame could not be saved.
    #[error("cannot save the frame to {path}: {message}")]
    SaveFrame {
        /// Target file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Runs the session until it ends; returns how it ended.
pub async fn run(start: Start, opts: Options, out: Output) -> Result<SessionEnd, HeadlessError> {
    let start = with_options(start, &opts);
    let handle =
        client::spawn(start, Arc::new(|| {})).map_err(|e| HeadlessError::Client(e.to_string()))?;
    let decoded = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(ControlGate::default());
    let wants_control = opts.wants_control();
    let mut request_control = opts.request_control;
    let mut script = opts.script.map(|steps| {
        (
            script_steps(steps),
            handle.command_sender(),
            decoded.clone(),
            gate.clone(),
        )
    });
    let mut control_granted = false;
    let signal = cli::shutdown_signal();
    tokio::pin!(signal);
    let mut ending = false;
    let mut latencies: Vec<f64> = Vec::new();
    let (mut bytes, mut keyframes) = (0u64, 0u64);
    loop {
        tokio::select! {
            _ = &mut signal, if !ending => {
                ending = true;
                handle.send(ClientCommand::End);
            }
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
        for event in handle.poll_events() {
            match event {
                ClientEvent::Status(s) => tracing::info!("{s}"),
                ClientEvent::LoggedIn(rights) => {
                    out.event(login_json(&rights), || {
                        format!("Logged in as {} ({})", rights.operator, rights.summary())
                    });
                    check_script_allowed(&rights, wants_control)?;
                }
                ClientEvent::Direct { address, rights } => {
                    out.event(direct_json(&address, &rights), || {
                        format!(
                            "Connecting directly to {address} as {} ({}; certificate valid until {})",
                            rights.operator,
                            rights.summary(),
                            cli::utc(rights.certificate_expires)
                        )
                    });
                    check_script_allowed(&rights, wants_control)?;
                }
                ClientEvent::Code { code, expires_at } => {
                    let minutes = expires_at
                        .saturating_sub(sightline_net::clock::now_unix())
                        .div_ceil(60);
                    out.event(
                        json!({"event": "code", "code": code.digits(), "grouped": code.grouped(), "expires_at": expires_at}),
                        || format!("Session code: {}   (read it to the customer; valid {minutes} min, until {})", code.grouped(), cli::utc(expires_at)),
                    );
                }
                ClientEvent::Connected {
                    peer_fingerprint,
                    sas,
                    rights,
                } => {
                    out.event(
                        connected_json(&peer_fingerprint, &sas, &rights),
                        || format!("Connected to the customer's agent (key {peer_fingerprint}).\nVerification code: {sas}  (the customer sees the same code)\nYou may: {}.\nPress Ctrl-C to end the session.", rights.summary()),
                    );
                    check_script_allowed(&rights, wants_control)?;
                    // The script's first step asks for control and waits for the answer.
                    if let Some((steps, tx, counter, gate)) = script.take() {
                        spawn_script(steps, tx, counter, gate);
                    } else if std::mem::take(&mut request_control) {
                        handle.send(ClientCommand::RequestControl);
                    }
                }
                ClientEvent::ConsentPending(what) => {
                    out.event(consent_json(what), || consent_pending_text(what).into());
                }
                ClientEvent::VideoConfig { width, height } => {
                    out.event(
                        json!({"event": "video", "width": width, "height": height}),
                        || format!("Remote screen {width}x{height}"),
                    );
                }
                ClientEvent::FrameDecoded {
                    seq,
                    bytes: b,
                    keyframe,
                    width,
                    height,
                    latency_ms,
                } => {
                    let n = decoded.fetch_add(1, Ordering::SeqCst) + 1;
                    latencies.push(latency_ms);
                    bytes += b as u64;
                    keyframes += u64::from(keyframe);
                    if out.json {
                        out.event(
                            json!({"event": "frame", "seq": seq, "bytes": b, "keyframe": keyframe,
                            "width": width, "height": height, "latency_ms": latency_ms}),
                            String::new,
                        );
                    }
                    if opts.frames.is_some_and(|want| n >= want) && !ending {
                        ending = true;
                        handle.send(ClientCommand::End);
                    }
                }
                ClientEvent::Cursor { .. } => {}
                ClientEvent::Control { granted } => {
                    let answer = ControlAnswer::new(granted, control_granted);
                    control_granted = granted;
                    gate.answer(granted);
                    out.event(control_json(answer), || answer.message().into());
                }
                ClientEvent::Notice(message) => {
                    out.event(notice_json(&message), || message.clone());
                }
                ClientEvent::Stats(s) => {
                    out.event(json!({"event": "stats", "fps": s.fps, "kbps": s.kbps, "latency_ms": s.latency_ms}), || {
                        format!("{:.1} fps, {:.0} kbit/s, {:.1} ms", s.fps, s.kbps, s.latency_ms)
                    });
                }
                ClientEvent::SendRate(r) => {
                    out.event(
                        json!({"event": "send_rate", "target_kbps": r.target_kbps, "send_kbps": r.send_kbps, "fps": r.fps,
                               "rtt_ms": r.rtt_ms, "queue_ms": r.queue_ms}),
                        || format!("agent sends {} kbit/s (target {}), {} fps, rtt {} ms", r.send_kbps, r.target_kbps, r.fps, r.rtt_ms),
                    );
                }
                ClientEvent::Failed(message) => return Err(HeadlessError::Client(message)),
                ClientEvent::Closed { reason, normal, .. } => {
                    if let Some(path) = &opts.save_frame {
                        save_last_frame(&handle, path)?;
                    }
                    summary(out, &mut latencies, bytes, keyframes);
                    out.event(
                        json!({"event": "closed", "reason": reason, "normal": normal}),
                        || format!("Session ended: {reason}"),
                    );
                    return Ok(if normal {
                        SessionEnd::LocalClosed(CloseReason::EndedByOperator)
                    } else {
                        SessionEnd::Abnormal(reason)
                    });
                }
            }
        }
    }
}

/// The client's start for these options: an input script or a control request needs the
/// control permission, checked by the client as soon as the certificate is known.
fn with_options(mut start: Start, opts: &Options) -> Start {
    start.require_control(opts.wants_control());
    start
}

/// An input script or a control request is refused, before anything is sent, for an account
/// that may only view.
fn check_script_allowed(rights: &OperatorRights, wants_control: bool) -> Result<(), HeadlessError> {
    client::check_rights(rights, wants_control).map_err(|_| HeadlessError::ViewOnly)
}

/// The steps played: ask for control first, so the script starts only once it is granted.
fn script_steps(steps: Vec<Step>) -> Vec<Step> {
    std::iter::once(Step::RequestControl).chain(steps).collect()
}

/// The customer's answers about control, shared with the input script's thread.
#[derive(Debug, Default)]
pub struct ControlGate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default, Clone, Copy)]
struct GateState {
    /// How many `Control` answers have arrived.
    answers: u64,
    /// The latest one.
    granted: bool,
}

impl ControlGate {
    /// Records an answer from the agent.
    pub fn answer(&self, granted: bool) {
        let mut s = self.lock();
        s.answers += 1;
        s.granted = granted;
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> GateState {
        *self.lock()
    }

    /// Waits for an answer after the first `seen`: whether it granted control; `None` once
    /// `gone` says nobody will answer (the session ended).
    fn wait_answer(&self, seen: u64, gone: impl Fn() -> bool) -> Option<bool> {
        let mut s = self.lock();
        loop {
            if s.answers > seen {
                return Some(s.granted);
            }
            if gone() {
                return None;
            }
            s = match self.changed.wait_timeout(s, Duration::from_millis(50)) {
                Ok((s, _)) => s,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn summary(out: Output, latencies: &mut [f64], bytes: u64, keyframes: u64) {
    if latencies.is_empty() {
        return;
    }
    latencies.sort_by(f64::total_cmp);
    let (p50, p95) = (percentile(latencies, 0.5), percentile(latencies, 0.95));
    let frames = latencies.len();
    out.event(
        json!({"event": "summary", "frames": frames, "bytes": bytes, "keyframes": keyframes,
               "latency_ms_p50": p50, "latency_ms_p95": p95, "latency_ms_max": percentile(latencies, 1.0)}),
        || format!("{frames} frames, {bytes} bytes, latency p50 {p50:.1} ms, p95 {p95:.1} ms"),
    );
}

fn save_last_frame(handle: &client::ClientHandle, path: &PathBuf) -> Result<(), HeadlessError> {
    let err = |message: String| HeadlessError::SaveFrame {
        path: path.clone(),
        message,
    };
    let frame = handle
        .frames
        .last()
        .ok_or_else(|| err("no frame was decoded".into()))?;
    let pic = &frame.picture;
    let rgba = sightline_media::convert::yuv420_to_rgba(pic).map_err(|e| err(e.to_string()))?;
    sightline_media::convert::save_png(&rgba, pic.width, pic.height, path)
        .map_err(|e| err(e.to_string()))
}

fn spawn_script(
    steps: Vec<Step>,
    tx: tokio::sync::mpsc::Sender<ClientCommand>,
    decoded: Arc<AtomicU64>,
    gate: Arc<ControlGate>,
) {
    if let Err(e) = std::thread::Builder::new()
        .name("input-script".into())
        .spawn(move || play(steps, &tx, &decoded, &gate))
    {
        tracing::error!(error = %e, "cannot start the input script");
    }
}

/// Plays the steps on this thread until the end, the session's end or a refusal of control.
fn play(
    steps: Vec<Step>,
    tx: &tokio::sync::mpsc::Sender<ClientCommand>,
    decoded: &AtomicU64,
    gate: &ControlGate,
) {
    for step in steps {
        match step {
            Step::WaitFrames(n) => {
                while decoded.load(Ordering::SeqCst) < n {
                    if tx.is_closed() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            Step::Sleep(d) => std::thread::sleep(d),
            Step::Send(events) => {
                // While control is not granted the client drops these.
                for e in events {
                    if tx.blocking_send(ClientCommand::Input(e)).is_err() {
                        return;
                    }
                }
            }
            Step::RequestControl => {
                let before = gate.snapshot();
                if before.granted {
                    continue;
                }
                if tx.blocking_send(ClientCommand::RequestControl).is_err() {
                    return;
                }
                match gate.wait_answer(before.answers, || tx.is_closed()) {
                    Some(true) => {}
                    Some(false) => {
                        tracing::warn!(
                            "the customer did not allow control; the input script stops"
                        );
                        return;
                    }
                    None => return,
                }
            }
            Step::End => {
                let _ = tx.blocking_send(ClientCommand::End);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_core::cert::Permissions;
    use sightline_core::relay_proto::Secret;

    fn params() -> Start {
        Start::Relay(crate::client::SessionParams {
            relay: "127.0.0.1:7615".into(),
            relay_key: "ab".repeat(32).parse().expect("fingerprint"),
            user: "alice".into(),
            password: Secret::new("pw"),
            second_factor: Some(Secret::new("123456")),
            require_control: false,
            data_dir: PathBuf::new(),
            direct: None,
        })
    }

    fn rights(permissions: Permissions) -> OperatorRights {
        OperatorRights {
            operator: "alice".into(),
            permissions,
            max_session_secs: 0,
            certificate_expires: 0,
        }
    }

    #[test]
    fn an_input_script_requires_control_from_the_client() {
        assert!(!with_options(params(), &Options::default()).requires_control());
        let opts = Options {
            script: Some(vec![Step::End]),
            ..Default::default()
        };
        assert!(with_options(params(), &opts).requires_control());
        let opts = Options {
            request_control: true,
            ..Default::default()
        };
        assert!(with_options(params(), &opts).requires_control());
    }

    #[test]
    fn the_script_asks_for_control_first() {
        assert_eq!(
            script_steps(vec![Step::End]),
            vec![Step::RequestControl, Step::End]
        );
    }

    fn spawn_play(
        steps: Vec<Step>,
    ) -> (
        tokio::sync::mpsc::Receiver<ClientCommand>,
        Arc<ControlGate>,
        std::thread::JoinHandle<()>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let gate = Arc::new(ControlGate::default());
        let g = gate.clone();
        let decoded = Arc::new(AtomicU64::new(0));
        let thread = std::thread::spawn(move || play(script_steps(steps), &tx, &decoded, &g));
        (rx, gate, thread)
    }

    fn click() -> Step {
        Step::Send(vec![sightline_core::messages::InputEvent::PointerMove {
            x: 0.5,
            y: 0.5,
        }])
    }

    #[test]
    fn the_script_waits_for_the_grant() {
        let (mut rx, gate, thread) = spawn_play(vec![click(), Step::End]);
        assert!(matches!(
            rx.blocking_recv(),
            Some(ClientCommand::RequestControl)
        ));
        std::thread::sleep(Duration::from_millis(150));
        assert!(
            rx.try_recv().is_err(),
            "no input before the customer says yes"
        );
        gate.answer(true);
        assert!(matches!(rx.blocking_recv(), Some(ClientCommand::Input(_))));
        assert!(matches!(rx.blocking_recv(), Some(ClientCommand::End)));
        thread.join().expect("script thread");
    }

    #[test]
    fn a_refusal_stops_the_script() {
        let (mut rx, gate, thread) = spawn_play(vec![click(), Step::End]);
        assert!(matches!(
            rx.blocking_recv(),
            Some(ClientCommand::RequestControl)
        ));
        gate.answer(false);
        thread.join().expect("script thread");
        assert!(rx.blocking_recv().is_none(), "nothing after a refusal");
    }

    #[test]
    fn request_control_in_the_script_asks_again_after_a_revocation() {
        let steps = vec![
            click(),
            Step::Sleep(Duration::from_millis(100)),
            Step::RequestControl,
            click(),
            Step::End,
        ];
        let (mut rx, gate, thread) = spawn_play(steps);
        assert!(matches!(
            rx.blocking_recv(),
            Some(ClientCommand::RequestControl)
        ));
        gate.answer(true);
        assert!(matches!(rx.blocking_recv(), Some(ClientCommand::Input(_))));
        // Revoked during the sleep: the script asks again and waits.
        gate.answer(false);
        assert!(matches!(
            rx.blocking_recv(),
            Some(ClientCommand::RequestControl)
        ));
        std::thread::sleep(Duration::from_millis(100));
        assert!(rx.try_recv().is_err(), "waits for the new answer");
        gate.answer(true);
        assert!(matches!(rx.blocking_recv(), Some(ClientCommand::Input(_))));
        assert!(matches!(rx.blocking_recv(), Some(ClientCommand::End)));
        thread.join().expect("script thread");
    }

    #[test]
    fn request_control_while_granted_sends_nothing() {
        let (mut rx, gate, thread) = spawn_play(vec![Step::RequestControl, Step::End]);
        assert!(matches!(
            rx.blocking_recv(),
            Some(ClientCommand::RequestControl)
        ));
        gate.answer(true);
        assert!(matches!(rx.blocking_recv(), Some(ClientCommand::End)));
        thread.join().expect("script thread");
    }

    #[test]
    fn the_script_stops_waiting_when_the_session_ends() {
        let (mut rx, _gate, thread) = spawn_play(vec![click()]);
        assert!(matches!(
            rx.blocking_recv(),
            Some(ClientCommand::RequestControl)
        ));
        drop(rx);
        thread.join().expect("script thread");
    }

    #[test]
    fn control_events_say_what_happened() {
        let v = control_json(ControlAnswer::new(true, false));
        assert_eq!(
            v,
            json!({"event": "control", "granted": true, "revoked": false})
        );
        let v = control_json(ControlAnswer::new(false, true));
        assert_eq!(
            v,
            json!({"event": "control", "granted": false, "revoked": true})
        );
        let v = control_json(ControlAnswer::new(false, false));
        assert_eq!(
            v,
            json!({"event": "control", "granted": false, "revoked": false})
        );
        use sightline_core::messages::ConsentFor;
        assert_eq!(
            consent_json(ConsentFor::Viewing),
            json!({"event": "consent_pending", "what": "viewing"})
        );
        assert_eq!(
            consent_json(ConsentFor::Control),
            json!({"event": "consent_pending", "what": "control"})
        );
    }

    #[test]
    fn view_only_account_refuses_the_script() {
        let err = check_script_allowed(&rights(Permissions::VIEW), true).expect_err("view only");
        assert_eq!(
            err.to_string(),
            "your account may not control customers' machines: view only"
        );
        assert!(check_script_allowed(&rights(Permissions::VIEW), false).is_ok());
        let full = rights(Permissions::VIEW.union(Permissions::CONTROL));
        assert!(check_script_allowed(&full, true).is_ok());
    }

    #[test]
    fn json_events_carry_the_rights() {
        let r = OperatorRights {
            max_session_secs: 900,
            ..rights(Permissions::VIEW.union(Permissions::CONTROL))
        };
        let v = connected_json("ff", "1234 5678", &r);
        assert_eq!(v["permissions"], json!(["view", "control"]));
        assert_eq!(v["max_session_secs"], 900);
        let v = login_json(&r);
        assert_eq!(v["event"], "login");
        assert_eq!(v["permissions"], json!(["view", "control"]));
    }
}
