//! `viewer session`: the operator's session without a window, for automation and tests.
//! Prints events (human lines or JSON), optionally stops after N decoded frames, saves the last
//! picture as PNG, asks the customer for control and plays an input script once they allow it
//! (both need an account allowed to control: without it the session fails right after login,
//! before a code is issued or anything is sent).

use crate::agent_key::{AgentKeyReport, AgentKeyStatus, KeyAnswer};
use crate::client::{
    self, consent_pending_text, ClientCommand, ClientEvent, OperatorRights, Start,
};
use crate::consent::{paused_text, ControlChange, RESUMED_TEXT};
use crate::direct;
use crate::gui::json_out::{
    agent_key_json, connected_json, consent_json, control_json, direct_json, event_json, link_text,
    login_json, notice_json, paused_json, resumed_json,
};
use crate::player::Player;
use crate::script::Step;
use serde_json::json;
use sightline_core::messages::CloseReason;
use sightline_net::cli::{self, Output};
use sightline_net::session::SessionEnd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    /// A LAN-only agent refused this operator.
    #[error("{0}")]
    Refused(String),
    /// The frame could not be saved.
    #[error("cannot save the frame to {path}: {message}")]
    SaveFrame {
        /// Target file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Runs the session until it ends; returns how it ended. At the end the frame is written
/// (`--save-frame`), then the `closed` event with its reason is printed, then, if the frame
/// could not be written, why: a session the customer declined says so first, even though no
/// picture exists to save.
pub async fn run(start: Start, opts: Options, out: Output) -> Result<SessionEnd, HeadlessError> {
    let start = with_options(start, &opts);
    let handle =
        client::spawn(start, Arc::new(|| {})).map_err(|e| HeadlessError::Client(e.to_string()))?;
    let mut session = Headless {
        out,
        wants_control: opts.wants_control(),
        request_control: opts.request_control,
        frames: opts.frames,
        save_frame: opts.save_frame,
        player: opts.script.map(Player::new),
        control_granted: false,
        decoded: 0,
        latencies: Vec::new(),
        bytes: 0,
        keyframes: 0,
        ending: false,
    };
    let signal = cli::shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal, if !session.ending => {
                session.ending = true;
                handle.send(ClientCommand::End);
            }
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
        for event in handle.poll_events() {
            if let Some(end) = session.on_event(event, &handle)? {
                return Ok(end);
            }
        }
    }
}

/// The headless session's state between the client's events.
struct Headless {
    out: Output,
    wants_control: bool,
    /// `--request-control`, until it is sent.
    request_control: bool,
    /// `--frames`.
    frames: Option<u64>,
    /// `--save-frame`.
    save_frame: Option<PathBuf>,
    player: Option<Player>,
    control_granted: bool,
    decoded: u64,
    latencies: Vec<f64>,
    bytes: u64,
    keyframes: u64,
    /// An end was asked for (Ctrl-C, `--frames`).
    ending: bool,
}

impl Headless {
    /// Reports one event; `Some` once the session is over.
    fn on_event(
        &mut self,
        event: ClientEvent,
        handle: &client::ClientHandle,
    ) -> Result<Option<SessionEnd>, HeadlessError> {
        let out = self.out;
        match event {
            ClientEvent::Status(s) => tracing::info!("{s}"),
            ClientEvent::Route(dialed) => sightline_net::cli::announce_route(out, &dialed),
            ClientEvent::OidcSignIn(s) => {
                let open = s
                    .verification_uri_complete
                    .as_ref()
                    .unwrap_or(&s.verification_uri);
                out.event(
                    json!({"event": "oidc_sign_in", "verification_uri": s.verification_uri,
                           "verification_uri_complete": s.verification_uri_complete,
                           "user_code": s.user_code, "expires_in": s.expires_in}),
                    || {
                        format!(
                            "Sign in at {open}\n(or at {} with the code {}); waiting up to {} s",
                            s.verification_uri, s.user_code, s.expires_in
                        )
                    },
                );
            }
            ClientEvent::OidcBrowser { url, not_opened } => {
                out.event(
                    crate::gui::json_out::oidc_browser_json(&url, &not_opened),
                    || match &not_opened {
                        None => format!("Sign in in your browser (opened on {url})"),
                        Some(why) => format!(
                            "Open this page in a browser on this machine to sign in ({why}):\n{url}"
                        ),
                    },
                );
            }
            ClientEvent::LoggedIn(rights) => {
                out.event(login_json(&rights), || {
                    format!("Logged in as {} ({})", rights.operator, rights.summary())
                });
                check_script_allowed(&rights, self.wants_control)?;
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
                check_script_allowed(&rights, self.wants_control)?;
            }
            ClientEvent::AgentKey(report) => {
                // A refusal is told by the error that follows.
                if out.json || report.status.accepted() {
                    out.event(agent_key_json(&report), || agent_key_text(&report));
                }
            }
            // Never asked of a headless session (it refuses a first connection instead).
            ClientEvent::AgentKeyPrompt { .. } => {
                handle.send(ClientCommand::AgentKey(KeyAnswer::Cancel));
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
                    || format!("Connected to the customer's agent (key {peer_fingerprint}).\nVerification code: {sas}  (read it to the customer; if theirs differs, end the session: someone is in between)\nYou may: {}.\nPress Ctrl-C to end the session.", rights.summary()),
                );
                check_script_allowed(&rights, self.wants_control)?;
                // With a script, the player asks for control (its first step) and waits.
                if let Some(player) = &mut self.player {
                    player.connected(handle.command_sender());
                } else if std::mem::take(&mut self.request_control) {
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
                bytes,
                keyframe,
                width,
                height,
                latency_ms,
            } => {
                self.decoded += 1;
                if let Some(player) = &self.player {
                    player.frame_decoded();
                }
                self.latencies.push(latency_ms);
                self.bytes += bytes as u64;
                self.keyframes += u64::from(keyframe);
                if out.json {
                    out.event(
                        json!({"event": "frame", "seq": seq, "bytes": bytes, "keyframe": keyframe,
                        "width": width, "height": height, "latency_ms": latency_ms}),
                        String::new,
                    );
                }
                if self.frames.is_some_and(|want| self.decoded >= want) && !self.ending {
                    self.ending = true;
                    handle.send(ClientCommand::End);
                }
            }
            ClientEvent::Cursor { .. } => {}
            ClientEvent::Control { granted, withdrawn } => {
                let change = ControlChange::new(granted, self.control_granted, withdrawn);
                self.control_granted = granted;
                if let Some(player) = &self.player {
                    player.control(granted);
                }
                out.event(control_json(change), || change.message());
            }
            ClientEvent::SharingPaused(reason) => {
                out.event(paused_json(reason), || paused_text(reason));
            }
            ClientEvent::SharingResumed => {
                out.event(resumed_json(), || RESUMED_TEXT.into());
            }
            ev @ (ClientEvent::Reconnecting { .. } | ClientEvent::Reconnected { .. }) => {
                if let (Some(json), Some(text)) = (event_json(&ev), link_text(&ev)) {
                    out.event(json, || text);
                }
            }
            ClientEvent::Notice(message) => {
                out.event(notice_json(&message), || message.clone());
            }
            ClientEvent::Recording { required } => {
                out.event(crate::gui::json_out::recording_json(required), || {
                    let why = if required {
                        "the help desk requires it"
                    } else {
                        "you chose to"
                    };
                    format!("This session is recorded for the help desk's auditors ({why}).")
                });
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
            ClientEvent::Failed(message) if message.starts_with(direct::REFUSED_PREFIX) => {
                return Err(HeadlessError::Refused(message))
            }
            ClientEvent::Failed(message) => return Err(HeadlessError::Client(message)),
            ClientEvent::Closed {
                reason,
                normal,
                close,
            } => {
                // Saved before the `closed` event, so that whoever waits for it finds the
                // file complete; a failure is told after it.
                let saved = self
                    .save_frame
                    .as_deref()
                    .map(|path| save_last_frame(handle, path));
                summary(out, &mut self.latencies, self.bytes, self.keyframes);
                out.event(
                    json!({"event": "closed", "reason": reason, "normal": normal}),
                    || format!("Session ended: {reason}"),
                );
                return finish(session_end(reason, normal, close), saved, out).map(Some);
            }
        }
        Ok(None)
    }
}

/// The human line for an accepted agent key.
fn agent_key_text(r: &AgentKeyReport) -> String {
    let (address, key) = (&r.address, r.fingerprint);
    match (r.status, r.stored) {
        (AgentKeyStatus::Remembered, Some(old)) => {
            format!("Agent key {key} at {address} stored in place of {old} (--agent-key).")
        }
        (AgentKeyStatus::Remembered, None) => {
            format!("Agent key {key} at {address} stored: later connections expect it.")
        }
        (AgentKeyStatus::AcceptedOnce, _) => {
            format!("Agent key {key} at {address} accepted for this connection only.")
        }
        (AgentKeyStatus::Known, _) => {
            format!("Agent key {key} matches the one stored for {address}.")
        }
        _ => format!("Agent key {key} at {address}: {}.", r.status.name()),
    }
}

/// How the session ended, from the client's `Closed` event. The refusals (declined, no
/// answer, not permitted) only ever come from the agent; `EndedByOperator` only from here.
fn session_end(reason: String, normal: bool, close: Option<CloseReason>) -> SessionEnd {
    match close {
        Some(r @ CloseReason::EndedByOperator) => SessionEnd::LocalClosed(r),
        Some(r) => SessionEnd::PeerClosed(r),
        // Cancelled before the customer joined.
        None if normal => SessionEnd::LocalClosed(CloseReason::EndedByOperator),
        None => SessionEnd::Abnormal(
            reason
                .strip_prefix("abnormal end: ")
                .map_or(reason.clone(), str::to_string),
        ),
    }
}

/// After the `closed` event: the outcome of saving the frame, when one was asked for. A frame
/// that could not be saved fails a session that ended normally (the caller asked for it);
/// after a refusal or an abnormal end it is a secondary message and the session's own outcome
/// stands.
fn finish(
    end: SessionEnd,
    saved: Option<Result<(), HeadlessError>>,
    out: Output,
) -> Result<SessionEnd, HeadlessError> {
    match saved {
        None | Some(Ok(())) => Ok(end),
        Some(Err(e)) if end.is_normal() && !end.is_refusal() => Err(e),
        Some(Err(e)) => {
            out.event(notice_json(&e.to_string()), || format!("Note: {e}"));
            Ok(end)
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

fn save_last_frame(handle: &client::ClientHandle, path: &Path) -> Result<(), HeadlessError> {
    let err = |message: String| HeadlessError::SaveFrame {
        path: path.to_path_buf(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_core::cert::Permissions;
    use sightline_core::relay_proto::Secret;

    fn params() -> Start {
        Start::Relay(crate::client::SessionParams {
            relay: sightline_net::dial::Relay::new(
                "127.0.0.1:7615".parse().expect("routes"),
                sightline_net::dial::Dialer::new(sightline_net::proxy::ProxySettings::Never),
            ),
            relay_key: "ab".repeat(32).parse().expect("fingerprint"),
            user: "alice".into(),
            password: Secret::new("pw"),
            second_factor: Some(Secret::new("123456")),
            require_control: false,
            data_dir: PathBuf::new(),
            direct: None,
            agent_key: Default::default(),
            record: false,
            oidc: None,
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
    fn control_events_say_what_happened() {
        let v = control_json(ControlChange::new(true, false, None));
        assert_eq!(
            v,
            json!({"event": "control", "granted": true, "revoked": false})
        );
        let v = control_json(ControlChange::new(false, true, None));
        assert_eq!(
            v,
            json!({"event": "control", "granted": false, "revoked": true})
        );
        let v = control_json(ControlChange::new(false, false, None));
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
