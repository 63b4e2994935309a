//! The window's state, apart from any drawing: which screen is up, what the session client
//! has reported, what the operator typed into the login form. Client events are applied here
//! in one place; the screens only read this state and return [`Action`]s.

use crate::agent_key::KeyAnswer;
use crate::client::{
    ClientCommand, ClientEvent, OperatorRights, SendRate, SessionParams, Stats, WAITING_FOR_VIEWING,
};
use crate::consent::{paused_notice, ControlAnswer, ControlChange};
use crate::credentials;
use crate::direct::DirectAddress;
use crate::gui::json_out::link_text;
use sightline_core::code::SessionCode;
use sightline_core::identity::Fingerprint;
use sightline_core::messages::{CloseReason, ConsentFor, CursorShape, InputEvent, PauseReason};
use sightline_core::relay_proto::Secret;
use sightline_net::dial::{Dialed, Dialer, Relay};
use sightline_net::proxy::ProxySettings;
use sightline_net::route::RouteList;
use std::path::PathBuf;
use std::time::Instant;

/// The picture area before the first picture, once the customer has allowed viewing.
pub const WAITING_FOR_PICTURE: &str = "Waiting for the first picture…";

/// The session time left turns red from this many seconds before the limit.
pub const TIME_LEFT_WARNING_SECS: u64 = 5 * 60;

/// What the operator asked for on a screen; applied by the app after drawing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Log in and ask for a session with the form's values (then connect directly when the
    /// "Direct (LAN)" field is filled in).
    Connect,
    /// Connect directly to the "Direct (LAN)" address with the stored certificate.
    ConnectDirect,
    /// Sign in with the "Single sign-on" provider in the system browser, then ask for a
    /// session as [`Action::Connect`] does.
    SignInWithProvider,
    /// End the session, or stop waiting for the customer.
    End,
    /// Leave the "ended" screen for the login form.
    BackToLogin,
    /// Put the session code on the clipboard.
    CopyCode,
    /// Switch between window and fullscreen.
    ToggleFullscreen,
    /// Switch between fit-to-window and one-to-one.
    ToggleViewMode,
    /// Show or hide the statistics overlay.
    ToggleOverlay,
    /// Ask the customer for control of keyboard and mouse.
    RequestControl,
    /// Hide the notice under the toolbar.
    DismissNotice,
    /// The operator's answer about a new LAN-only agent's key.
    AnswerAgentKey(KeyAnswer),
}

/// The login form's fields and its last validation error. `Debug` leaves the secrets out.
#[derive(Default)]
pub struct LoginForm {
    /// Relay address `HOST[:PORT]`, or a comma-separated list of routes (`wss://HOST`, ...).
    pub relay: String,
    /// Pinned relay key fingerprint, 64 hex digits.
    pub relay_key: String,
    /// Operator account.
    pub user: String,
    /// Password, masked on screen; moved out on connect.
    pub password: String,
    /// Second factor (authenticator code or recovery code), masked on screen; moved out on
    /// connect. Empty for accounts without two-factor login.
    pub second_factor: String,
    /// A LAN-only agent's address `HOST[:PORT]`: connect there directly instead of asking
    /// for a session code. Empty for the usual session through the relay.
    pub direct: String,
    /// Record the session when the help desk's policy leaves it to the operator (a
    /// required recording is made whatever this says).
    pub record: bool,
    /// The relay's OpenID Connect provider (`[[oidc]]` name) for "Sign in with …"; empty
    /// when the help desk uses passwords.
    pub provider: String,
    /// Give the "Sign in with …" button the keyboard focus on the next frame.
    pub focus_sign_in: bool,
    /// Why the last connect attempt was refused, shown under the form.
    pub error: Option<String>,
    /// The route the last login reached the relay over ("Connected over ..."), shown under
    /// the form.
    pub route: Option<String>,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("relay", &self.relay)
            .field("relay_key", &self.relay_key)
            .field("user", &self.user)
            .field("password", &"..")
            .field("second_factor", &"..")
            .field("direct", &self.direct)
            .field("record", &self.record)
            .field("provider", &self.provider)
            .field("error", &self.error)
            .field("route", &self.route)
            .finish()
    }
}

impl LoginForm {
    /// Whether every required field has something in it (for logging in at once). The
    /// second factor is optional: accounts without two-factor login have none.
    pub fn complete(&self) -> bool {
        ![&self.relay, &self.relay_key, &self.user, &self.password]
            .iter()
            .any(|s| s.trim().is_empty())
    }

    /// Checks the fields and builds the session parameters. The password and the second
    /// factor move out of the form into [`Secret`]s that wipe them when dropped, so both
    /// fields are empty after every attempt.
    /// `proxy` says which proxy the relay's routes go through.
    pub fn take_params(
        &mut self,
        data_dir: PathBuf,
        proxy: &ProxySettings,
    ) -> Result<SessionParams, String> {
        let (relay, relay_key) = self.relay_target(proxy)?;
        let user = self.user.trim();
        if user.is_empty() {
            return Err("Enter your user name.".into());
        }
        let direct = self.direct_address()?;
        if self.password.is_empty() {
            return Err("Enter your password.".into());
        }
        let typed = Secret::new(std::mem::take(&mut self.second_factor));
        Ok(SessionParams {
            relay,
            relay_key,
            user: user.to_string(),
            password: Secret::new(std::mem::take(&mut self.password)),
            second_factor: credentials::second_factor(typed.expose()),
            require_control: false,
            data_dir,
            direct,
            record: self.record,
            // The app sets how the agent's key is checked.
            agent_key: Default::default(),
            oidc: None,
        })
    }

    /// The session parameters for "Sign in with …": the relay, its key and the provider, in
    /// the system browser; the user name and password fields play no part.
    pub fn take_provider_params(
        &mut self,
        data_dir: PathBuf,
        proxy: &ProxySettings,
    ) -> Result<SessionParams, String> {
        let (relay, relay_key) = self.relay_target(proxy)?;
        let provider = self.provider.trim();
        if provider.is_empty() {
            return Err("Enter your help desk's sign-in (single sign-on) name.".into());
        }
        Ok(SessionParams {
            relay,
            relay_key,
            user: String::new(),
            password: Secret::new(""),
            second_factor: None,
            require_control: false,
            data_dir,
            direct: self.direct_address()?,
            record: self.record,
            agent_key: Default::default(),
            oidc: Some(crate::client::OidcLogin {
                provider: provider.to_owned(),
                in_browser: true,
            }),
        })
    }

    /// The relay's routes (through `proxy`) and its pinned key, from the form.
    fn relay_target(&self, proxy: &ProxySettings) -> Result<(Relay, Fingerprint), String> {
        let relay = self.relay.trim();
        if relay.is_empty() {
            return Err("Enter the relay address (host:port).".into());
        }
        let routes = relay
            .parse::<RouteList>()
            .map_err(|e| format!("Relay address: {e}."))?;
        let relay = Relay::new(routes, Dialer::new(proxy.clone()));
        let relay_key = self
            .relay_key
            .trim()
            .parse::<Fingerprint>()
            .map_err(|e| format!("Relay key: {e}."))?;
        Ok((relay, relay_key))
    }

    /// The "Direct (LAN)" address: `None` when the field is empty.
    pub fn direct_address(&self) -> Result<Option<DirectAddress>, String> {
        match self.direct.trim() {
            "" => Ok(None),
            text => text
                .parse()
                .map(Some)
                .map_err(|e| format!("Direct (LAN) address: {e}.")),
        }
    }
}

/// Waiting for the customer to type the code.
#[derive(Debug, Clone, Default)]
pub struct Waiting {
    /// The code and its expiry (Unix seconds), once the relay has issued it.
    pub code: Option<(SessionCode, u64)>,
    /// Progress text ("connecting", "logging in", ...).
    pub status: String,
    /// A first connection to a LAN-only agent waits for the operator to accept its key.
    pub agent_key: Option<AgentKeyQuestion>,
    /// The route to the relay, once connected ("Connected over ...").
    pub route: Option<String>,
}

/// The question about a new LAN-only agent's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentKeyQuestion {
    /// The agent's address, `host:port`.
    pub address: String,
    /// The key's fingerprint, 64 hex digits.
    pub fingerprint: String,
}

impl AgentKeyQuestion {
    /// The fingerprint in four lines of sixteen digits, in groups of four, for reading out.
    pub fn grouped(&self) -> String {
        let chars: Vec<char> = self.fingerprint.chars().collect();
        chars
            .chunks(16)
            .map(|line| {
                line.chunks(4)
                    .map(|g| g.iter().collect::<String>())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// How the picture is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewMode {
    /// As large as the window allows, aspect preserved.
    #[default]
    Fit,
    /// One remote pixel per screen pixel, scrollable.
    OneToOne,
}

/// The remote pointer as last reported.
#[derive(Debug, Clone, Default)]
pub struct RemoteCursor {
    /// Normalised position.
    pub pos: (f32, f32),
    /// Whether it is on the shared screen.
    pub visible: bool,
    /// The shape to turn into a texture before the next draw.
    pub new_shape: Option<CursorShape>,
    /// Hotspot and size of the current shape, in remote pixels.
    pub hotspot: (u16, u16),
    /// Size of the current shape, in remote pixels.
    pub size: (u16, u16),
}

/// A verified session with the customer's agent.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// The agent's key fingerprint.
    pub peer_fingerprint: String,
    /// Short authentication string, to compare on the phone.
    pub sas: String,
    /// Remote screen size, from the stream's configuration or the last picture.
    pub remote_size: Option<(u32, u32)>,
    /// Whether the customer allows control (the agent's latest word).
    pub control: bool,
    /// A control request is out and the customer has not answered yet.
    pub asking_control: bool,
    /// The customer is asked to allow viewing and no video has come yet.
    pub viewing_pending: bool,
    /// What the operator should know about control (declined, taken back, withdrawn by the
    /// agent and why), until dismissed or control is granted.
    pub notice: Option<String>,
    /// The agent paused sharing, and why; `None` while sharing.
    pub paused: Option<PauseReason>,
    /// The connection broke and is being repaired: what the status line says meanwhile.
    pub reconnecting: Option<String>,
    /// The session is recorded (`Some(true)`: the policy requires it).
    pub recording: Option<bool>,
    /// Latest statistics.
    pub stats: Option<Stats>,
    /// The agent's latest word on its sending rate (congestion control).
    pub send_rate: Option<SendRate>,
    /// The remote pointer.
    pub cursor: RemoteCursor,
    /// Scaling.
    pub view: ViewMode,
    /// Whether the statistics overlay is shown.
    pub overlay: bool,
    /// Whether a picture has been handed to the GPU yet.
    pub has_picture: bool,
    /// What the operator's certificate allows (permissions, session time limit).
    pub rights: OperatorRights,
    /// When the session connected; the time limit counts from here.
    pub connected_at: Option<Instant>,
}

impl Live {
    /// Whether the operator's input goes to the customer's machine now: the certificate
    /// allows control, the customer has granted it and sharing is not paused.
    pub fn may_control(&self) -> bool {
        self.control
            && self.rights.may_control()
            && self.paused.is_none()
            && self.reconnecting.is_none()
    }

    /// The account may only watch, whatever the customer grants.
    pub fn view_only(&self) -> bool {
        !self.rights.may_control()
    }

    /// Whether the toolbar offers "Request control": the certificate allows control and the
    /// customer has not granted it.
    pub fn offers_control_request(&self) -> bool {
        !self.view_only() && !self.control
    }

    /// Whether "Request control" can be pressed now (no request waiting for an answer, and
    /// sharing not paused: the agent refuses control meanwhile).
    pub fn can_request_control(&self) -> bool {
        self.offers_control_request() && !self.asking_control && self.paused.is_none()
    }

    /// The notice shown while sharing is paused (it goes away when sharing resumes).
    pub fn pause_notice(&self) -> Option<String> {
        self.reconnecting
            .clone()
            .or_else(|| self.paused.map(paused_notice))
    }

    /// What the picture area says while there is no picture.
    pub fn picture_placeholder(&self) -> &'static str {
        if self.viewing_pending {
            WAITING_FOR_VIEWING
        } else {
            WAITING_FOR_PICTURE
        }
    }

    /// Seconds left before the session time limit, `None` without a limit.
    pub fn time_left(&self, now: Instant) -> Option<u64> {
        let elapsed = self
            .connected_at
            .map_or(0, |t| now.saturating_duration_since(t).as_secs());
        session_time_left(self.rights.max_session_secs, elapsed)
    }
}

/// The session is over.
#[derive(Debug, Clone)]
pub struct Ended {
    /// Why, for the operator.
    pub message: String,
    /// Whether it ended with an explicit close (as opposed to a failure or a broken link).
    pub normal: bool,
}

/// Which screen is up.
#[derive(Debug, Clone)]
pub enum Screen {
    /// The login form.
    Login,
    /// Logged in (or logging in), waiting for the customer.
    Waiting(Waiting),
    /// Seeing the customer's screen.
    Live(Box<Live>),
    /// The session ended or failed.
    Ended(Ended),
}

/// "Connected over ROUTE (through proxy PROXY)".
pub fn route_label(dialed: &Dialed) -> String {
    match &dialed.proxy {
        Some(p) => format!("Connected over {} (through proxy {p})", dialed.route),
        None => format!("Connected over {}", dialed.route),
    }
}

/// Everything the window shows.
#[derive(Debug)]
pub struct AppState {
    /// The login form, kept across sessions.
    pub form: LoginForm,
    /// The current screen.
    pub screen: Screen,
}

impl AppState {
    /// Starts at the login form.
    pub fn new(form: LoginForm) -> Self {
        Self {
            form,
            screen: Screen::Login,
        }
    }

    /// A session was started: wait for its code.
    pub fn connecting(&mut self) {
        self.form.error = None;
        self.screen = Screen::Waiting(Waiting {
            code: None,
            status: "connecting".into(),
            agent_key: None,
            route: None,
        });
    }

    /// Whether the client of the current session is still wanted.
    pub fn in_session(&self) -> bool {
        matches!(self.screen, Screen::Waiting(_) | Screen::Live(_))
    }

    /// Applies one event from the session client.
    pub fn apply(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::Status(status) => {
                if let Screen::Waiting(w) = &mut self.screen {
                    w.status = status;
                }
            }
            ClientEvent::Recording { required } => {
                if let Screen::Live(live) = &mut self.screen {
                    live.recording = Some(required);
                }
            }
            ClientEvent::Code { code, expires_at } => {
                if let Screen::Waiting(w) = &mut self.screen {
                    w.code = Some((code, expires_at));
                    w.status = "waiting for the customer".into();
                }
            }
            ClientEvent::Route(dialed) => {
                let label = route_label(&dialed);
                if let Screen::Waiting(w) = &mut self.screen {
                    w.route = Some(label.clone());
                }
                self.form.route = Some(label);
            }
            ClientEvent::OidcSignIn(s) => {
                if let Screen::Waiting(w) = &mut self.screen {
                    let open = s
                        .verification_uri_complete
                        .as_ref()
                        .unwrap_or(&s.verification_uri);
                    w.status = format!("sign in at {open} (code {})", s.user_code);
                }
            }
            ClientEvent::OidcBrowser { url, not_opened } => {
                if let Screen::Waiting(w) = &mut self.screen {
                    w.status = match not_opened {
                        None => "finish signing in in your browser".into(),
                        Some(why) => format!("open {url} in your browser to sign in ({why})"),
                    };
                }
            }
            ClientEvent::LoggedIn(rights) => {
                if let Screen::Waiting(w) = &mut self.screen {
                    w.status = format!("logged in as {} ({})", rights.operator, rights.summary());
                }
            }
            ClientEvent::Direct { address, rights } => {
                if let Screen::Waiting(w) = &mut self.screen {
                    w.status = format!(
                        "connecting directly to {address} as {} ({})",
                        rights.operator,
                        rights.summary()
                    );
                }
            }
            ClientEvent::AgentKeyPrompt {
                address,
                fingerprint,
            } => {
                if let Screen::Waiting(w) = &mut self.screen {
                    w.status = format!("first connection to {address}: check the agent's key");
                    w.agent_key = Some(AgentKeyQuestion {
                        address,
                        fingerprint: fingerprint.to_string(),
                    });
                }
            }
            ClientEvent::AgentKey(report) => {
                if let Screen::Waiting(w) = &mut self.screen {
                    w.agent_key = None;
                    if report.status.accepted() {
                        w.status = format!(
                            "agent key accepted ({}); waiting for the agent",
                            report.status.name().replace('_', " ")
                        );
                    }
                }
            }
            ClientEvent::Connected {
                peer_fingerprint,
                sas,
                rights,
            } => {
                self.screen = Screen::Live(Box::new(Live {
                    peer_fingerprint,
                    sas,
                    rights,
                    connected_at: Some(Instant::now()),
                    ..Default::default()
                }));
            }
            ClientEvent::Closed {
                reason,
                normal,
                close,
            } => {
                self.screen = Screen::Ended(Ended {
                    message: closed_message(&reason, close),
                    normal,
                });
            }
            ClientEvent::Failed(message) => {
                if matches!(&self.screen, Screen::Waiting(w) if w.code.is_none()) {
                    // Connecting or logging in failed (wrong password or code, relay down,
                    // locked out): back to the form, user name kept, with the relay's words.
                    self.form.error = Some(message);
                    self.screen = Screen::Login;
                } else {
                    self.screen = Screen::Ended(Ended {
                        message,
                        normal: false,
                    });
                }
            }
            other => {
                if let Screen::Live(live) = &mut self.screen {
                    live.apply(other);
                }
            }
        }
    }

    /// Back to the login form after a session.
    pub fn back_to_login(&mut self) {
        self.screen = Screen::Login;
    }

    /// The operator pressed "Request control": the command to send, if a request makes sense
    /// now (live, the certificate allows control, not granted, no request waiting).
    pub fn request_control(&mut self) -> Option<ClientCommand> {
        let Screen::Live(live) = &mut self.screen else {
            return None;
        };
        if !live.can_request_control() {
            return None;
        }
        live.asking_control = true;
        live.notice = None;
        Some(ClientCommand::RequestControl)
    }

    /// The operator answered the question about a new agent's key: the command to send, once.
    pub fn answer_agent_key(&mut self, answer: KeyAnswer) -> Option<ClientCommand> {
        let Screen::Waiting(w) = &mut self.screen else {
            return None;
        };
        w.agent_key.take()?;
        Some(ClientCommand::AgentKey(answer))
    }

    /// Hides the notice on the live screen.
    pub fn dismiss_notice(&mut self) {
        if let Screen::Live(live) = &mut self.screen {
            live.notice = None;
        }
    }

    /// The commands for operator input collected on the live screen: none unless the
    /// session is live, the certificate allows control and the customer has granted it.
    pub fn input_commands(&self, input: Vec<InputEvent>) -> Vec<ClientCommand> {
        match &self.screen {
            Screen::Live(live) if live.may_control() => {
                input.into_iter().map(ClientCommand::Input).collect()
            }
            _ => Vec::new(),
        }
    }
}

impl Live {
    fn apply(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::VideoConfig { width, height } => {
                // Video comes only after the customer allowed viewing.
                self.viewing_pending = false;
                self.remote_size = Some((width, height));
            }
            ClientEvent::ConsentPending(ConsentFor::Viewing) => self.viewing_pending = true,
            ClientEvent::ConsentPending(ConsentFor::Control) => self.asking_control = true,
            ClientEvent::Control { granted, withdrawn } => {
                let change = ControlChange::new(granted, self.control, withdrawn);
                // Input stops with this: `may_control` reads it before the next frame's input.
                self.control = granted;
                self.asking_control = false;
                self.notice = match change.answer {
                    ControlAnswer::Granted => None,
                    ControlAnswer::Declined | ControlAnswer::Revoked => Some(change.message()),
                };
            }
            ClientEvent::SharingPaused(reason) => self.paused = Some(reason),
            ClientEvent::SharingResumed => self.paused = None,
            ev @ ClientEvent::Reconnecting { .. } => self.reconnecting = link_text(&ev),
            ClientEvent::Reconnected { .. } => self.reconnecting = None,
            ClientEvent::Notice(message) => {
                self.asking_control = false;
                self.notice = Some(message);
            }
            ClientEvent::Stats(stats) => self.stats = Some(stats),
            ClientEvent::SendRate(rate) => self.send_rate = Some(rate),
            ClientEvent::Cursor {
                x,
                y,
                visible,
                shape,
            } => {
                self.cursor.pos = (x, y);
                self.cursor.visible = visible;
                if let Some(shape) = shape {
                    self.cursor.new_shape = Some(shape);
                }
            }
            // Frame sizes arrive with the pictures themselves; the rest is for other screens.
            _ => {}
        }
    }
}

/// The operator-facing sentence for an explicit close.
pub fn close_reason_text(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::EndedByOperator => "Session ended by operator.",
        CloseReason::EndedByCustomer => "The customer ended the session.",
        CloseReason::ProtocolError => {
            "Session ended: protocol error (the other side sent something invalid)."
        }
        CloseReason::Shutdown => "Session ended: the other side shut down.",
        CloseReason::Timeout => "Session ended: the other side stopped answering (timeout).",
        CloseReason::TimeLimit => {
            "Session ended: session time limit reached (set for your account by the help desk)."
        }
        CloseReason::NotPermitted => {
            "Session ended: not permitted for this operator (your account may not view customers' screens)."
        }
        CloseReason::DeclinedByCustomer => "The customer declined to share their screen.",
        CloseReason::NoAnswerFromCustomer => {
            "The customer did not answer the request to share their screen."
        }
        CloseReason::CertificateExpired => {
            "Session ended: your operator certificate expired (log in again for a new one)."
        }
        CloseReason::RecordingFailed => {
            "Session ended: the help desk requires recording, and the recording could not go on."
        }
    }
}

/// The operator-facing sentence for the end of a session.
fn closed_message(reason: &str, close: Option<CloseReason>) -> String {
    if let Some(close) = close {
        return close_reason_text(close).to_string();
    }
    let mut s = String::from("Session ");
    if reason.starts_with("ended") || reason.starts_with("cancelled") {
        s.push_str(reason);
    } else {
        s.push_str("ended: ");
        s.push_str(reason);
    }
    s.push('.');
    s
}

/// `mm:ss` until the deadline; minutes keep counting past 99.
pub fn format_countdown(remaining_secs: u64) -> String {
    format!("{:02}:{:02}", remaining_secs / 60, remaining_secs % 60)
}

/// Seconds left of a session limited to `max_session_secs` after `elapsed_secs`; `None`
/// when there is no limit.
pub fn session_time_left(max_session_secs: u64, elapsed_secs: u64) -> Option<u64> {
    (max_session_secs > 0).then(|| max_session_secs.saturating_sub(elapsed_secs))
}

/// The time left for the toolbar and overlay: `Time left 12:34`.
pub fn time_left_text(remaining_secs: u64) -> String {
    if remaining_secs == 0 {
        "Time limit reached".into()
    } else {
        format!("Time left {}", format_countdown(remaining_secs))
    }
}

/// Whether the time left is shown as a warning (the last five minutes).
pub fn time_left_is_short(remaining_secs: u64) -> bool {
    remaining_secs <= TIME_LEFT_WARNING_SECS
}

/// A fingerprint shortened for the overlay: first and last 8 hex digits.
pub fn short_fingerprint(fp: &str) -> String {
    let hex: String = fp.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if hex.len() <= 16 {
        return hex;
    }
    format!("{}…{}", &hex[..8], &hex[hex.len() - 8..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_core::cert::Permissions;
    use sightline_core::messages::MouseButton;
    use std::time::Duration;

    fn form() -> LoginForm {
        LoginForm {
            relay: "127.0.0.1:7615".into(),
            relay_key: "ab".repeat(32),
            user: "alice".into(),
            password: "hunter2".into(),
            second_factor: "123456".into(),
            direct: String::new(),
            record: false,
            provider: String::new(),
            focus_sign_in: false,
            error: None,
            route: None,
        }
    }

    #[test]
    fn sign_in_with_a_provider_needs_no_user_or_password() {
        let mut f = form();
        f.user.clear();
        f.password.clear();
        let proxy = ProxySettings::Never;
        let e = f
            .take_provider_params(PathBuf::from("/tmp"), &proxy)
            .unwrap_err();
        assert!(e.contains("single sign-on"), "{e}");
        f.provider = " corp ".into();
        let p = f
            .take_provider_params(PathBuf::from("/tmp"), &proxy)
            .unwrap();
        let oidc = p.oidc.unwrap();
        assert_eq!((oidc.provider.as_str(), oidc.in_browser), ("corp", true));
        f.relay_key = "nonsense".into();
        let e = f
            .take_provider_params(PathBuf::from("/tmp"), &proxy)
            .unwrap_err();
        assert!(e.contains("Relay key"), "{e}");
    }

    fn rights(permissions: Permissions, max_session_secs: u64) -> OperatorRights {
        OperatorRights {
            operator: "alice".into(),
            permissions,
            max_session_secs,
            certificate_expires: 2_000_000_000,
        }
    }

    fn full() -> OperatorRights {
        rights(Permissions::VIEW.union(Permissions::CONTROL), 0)
    }

    fn connected(rights: OperatorRights) -> ClientEvent {
        ClientEvent::Connected {
            peer_fingerprint: "ff".repeat(32),
            sas: "1234 5678".into(),
            rights,
        }
    }

    fn some_input() -> Vec<InputEvent> {
        vec![
            InputEvent::PointerMove { x: 0.5, y: 0.5 },
            InputEvent::Button {
                button: MouseButton::Left,
                pressed: true,
            },
            InputEvent::Key {
                key: "KeyA".into(),
                pressed: true,
            },
        ]
    }

    /// A state on the live screen after the given events.
    fn live_after(events: Vec<ClientEvent>) -> AppState {
        let mut s = AppState::new(form());
        s.connecting();
        for e in events {
            s.apply(e);
        }
        assert!(matches!(s.screen, Screen::Live(_)), "{:?}", s.screen);
        s
    }

    #[test]
    fn countdown_formatting() {
        assert_eq!(format_countdown(0), "00:00");
        assert_eq!(format_countdown(59), "00:59");
        assert_eq!(format_countdown(60), "01:00");
        assert_eq!(format_countdown(599), "09:59");
        assert_eq!(format_countdown(600), "10:00");
        assert_eq!(format_countdown(6000), "100:00");
    }

    #[test]
    fn fingerprint_is_shortened() {
        let fp = "0123456789abcdef".repeat(4);
        assert_eq!(short_fingerprint(&fp), "01234567…89abcdef");
        assert_eq!(short_fingerprint("abcd"), "abcd");
    }

    #[test]
    fn valid_form_gives_params_and_drops_the_password() {
        let mut f = form();
        assert!(f.complete());
        let p = f
            .take_params(PathBuf::from("/tmp/x"), &ProxySettings::Never)
            .expect("valid");
        assert_eq!(p.relay.to_string(), "127.0.0.1:7615");
        assert_eq!(p.user, "alice");
        assert_eq!(p.password.expose(), "hunter2");
        assert_eq!(p.second_factor.as_ref().map(Secret::expose), Some("123456"));
        assert!(!p.require_control);
        assert!(f.password.is_empty());
        assert!(f.second_factor.is_empty());
        assert_eq!(f.user, "alice");
        assert!(!f.complete());
    }

    #[test]
    fn second_factor_is_optional_and_trimmed() {
        let mut f = form();
        f.second_factor.clear();
        assert!(
            f.complete(),
            "accounts without two-factor log in without a code"
        );
        let p = f
            .take_params(PathBuf::new(), &ProxySettings::Never)
            .expect("valid");
        assert!(p.second_factor.is_none());
        let mut f = form();
        f.second_factor = "   ".into();
        assert!(f
            .take_params(PathBuf::new(), &ProxySettings::Never)
            .expect("valid")
            .second_factor
            .is_none());
        let mut f = form();
        f.second_factor = " abcd-efgh \n".into();
        let p = f
            .take_params(PathBuf::new(), &ProxySettings::Never)
            .expect("valid");
        assert_eq!(
            p.second_factor.as_ref().map(Secret::expose),
            Some("abcd-efgh")
        );
        assert!(f.second_factor.is_empty());
    }

    #[test]
    fn params_do_not_show_secrets() {
        let mut f = form();
        let shown = format!("{:?}", AppState::new(form()));
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("123456"));
        let p = f
            .take_params(PathBuf::new(), &ProxySettings::Never)
            .expect("valid");
        let shown = format!("{p:?}");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("123456"));
    }

    #[test]
    fn failed_login_returns_to_the_form_and_clears_the_secrets() {
        let mut s = AppState::new(form());
        let params = s
            .form
            .take_params(PathBuf::new(), &ProxySettings::Never)
            .expect("valid");
        drop(params);
        s.connecting();
        s.apply(ClientEvent::Status("logging in".into()));
        s.apply(ClientEvent::Failed("login failed".into()));
        assert!(matches!(s.screen, Screen::Login));
        assert_eq!(s.form.error.as_deref(), Some("login failed"));
        assert_eq!(s.form.user, "alice");
        assert_eq!(s.form.relay, "127.0.0.1:7615");
        assert!(s.form.password.is_empty());
        assert!(s.form.second_factor.is_empty());
        // The next attempt clears the message.
        s.connecting();
        assert!(s.form.error.is_none());
    }

    #[test]
    fn failure_after_the_code_ends_the_session() {
        let mut s = AppState::new(form());
        s.connecting();
        s.apply(ClientEvent::Code {
            code: "1234567890".parse().expect("code"),
            expires_at: 99,
        });
        s.apply(ClientEvent::Failed("handshake failed".into()));
        assert!(
            matches!(&s.screen, Screen::Ended(e) if e.message == "handshake failed" && !e.normal)
        );
        assert!(s.form.error.is_none());
    }

    #[test]
    fn logged_in_status_shows_the_rights() {
        let mut s = AppState::new(form());
        s.connecting();
        s.apply(ClientEvent::LoggedIn(rights(Permissions::VIEW, 1800)));
        match &s.screen {
            Screen::Waiting(w) => {
                assert_eq!(w.status, "logged in as alice (view; sessions up to 30 min)")
            }
            other => panic!("not waiting: {other:?}"),
        }
    }

    #[test]
    fn view_only_never_produces_input_commands() {
        let mut s = live_after(vec![
            ClientEvent::LoggedIn(rights(Permissions::VIEW, 0)),
            connected(rights(Permissions::VIEW, 0)),
            // The customer grants control, the account still may not use it.
            ClientEvent::Control {
                granted: true,
                withdrawn: None,
            },
        ]);
        let Screen::Live(live) = &s.screen else {
            panic!("not live")
        };
        assert!(live.view_only());
        assert!(live.control);
        assert!(!live.may_control());
        assert!(s.input_commands(some_input()).is_empty());
        s.apply(ClientEvent::Control {
            granted: false,
            withdrawn: None,
        });
        s.apply(ClientEvent::Control {
            granted: true,
            withdrawn: None,
        });
        assert!(s.input_commands(some_input()).is_empty());
    }

    #[test]
    fn the_agents_sending_rate_reaches_the_overlay_state() {
        let mut s = live_after(vec![connected(full())]);
        assert_eq!(live(&s).send_rate, None);
        let rate = SendRate {
            target_kbps: 1_800,
            send_kbps: 1_650,
            fps: 24,
            rtt_ms: 112,
            queue_ms: 9,
        };
        s.apply(ClientEvent::SendRate(rate));
        assert_eq!(live(&s).send_rate, Some(rate));
    }

    #[test]
    fn input_needs_the_customers_grant_too() {
        let mut s = live_after(vec![connected(full())]);
        assert!(s.input_commands(some_input()).is_empty(), "not granted yet");
        s.apply(ClientEvent::Control {
            granted: true,
            withdrawn: None,
        });
        let cmds = s.input_commands(some_input());
        assert_eq!(cmds.len(), 3);
        assert!(cmds.iter().all(|c| matches!(c, ClientCommand::Input(_))));
        s.apply(ClientEvent::Control {
            granted: false,
            withdrawn: None,
        });
        assert!(s.input_commands(some_input()).is_empty(), "revoked");
        // Not on the live screen at all.
        let mut s = AppState::new(form());
        assert!(s.input_commands(some_input()).is_empty());
        s.connecting();
        assert!(s.input_commands(some_input()).is_empty());
    }

    #[test]
    fn time_left_counts_from_the_connection() {
        let s = live_after(vec![connected(rights(Permissions::VIEW, 1800))]);
        let Screen::Live(live) = &s.screen else {
            panic!("not live")
        };
        let t0 = live.connected_at.expect("stamped");
        assert_eq!(live.time_left(t0), Some(1800));
        assert_eq!(live.time_left(t0 + Duration::from_millis(999)), Some(1800));
        assert_eq!(live.time_left(t0 + Duration::from_secs(1500)), Some(300));
        assert_eq!(live.time_left(t0 + Duration::from_secs(4000)), Some(0));
        let s = live_after(vec![connected(full())]);
        let Screen::Live(live) = &s.screen else {
            panic!("not live")
        };
        assert_eq!(live.time_left(Instant::now()), None, "no limit");
    }

    #[test]
    fn time_left_formatting() {
        assert_eq!(session_time_left(0, 5), None);
        assert_eq!(session_time_left(600, 0), Some(600));
        assert_eq!(session_time_left(600, 599), Some(1));
        assert_eq!(session_time_left(600, 700), Some(0));
        assert_eq!(time_left_text(3600), "Time left 60:00");
        assert_eq!(time_left_text(754), "Time left 12:34");
        assert_eq!(time_left_text(59), "Time left 00:59");
        assert_eq!(time_left_text(0), "Time limit reached");
        assert!(!time_left_is_short(301));
        assert!(time_left_is_short(300));
        assert!(time_left_is_short(1));
        assert!(time_left_is_short(0));
    }

    #[test]
    fn close_reason_texts() {
        let cases = [
            (CloseReason::EndedByOperator, "Session ended by operator."),
            (CloseReason::EndedByCustomer, "The customer ended the session."),
            (
                CloseReason::DeclinedByCustomer,
                "The customer declined to share their screen.",
            ),
            (
                CloseReason::NoAnswerFromCustomer,
                "The customer did not answer the request to share their screen.",
            ),
            (
                CloseReason::ProtocolError,
                "Session ended: protocol error (the other side sent something invalid).",
            ),
            (
                CloseReason::Shutdown,
                "Session ended: the other side shut down.",
            ),
            (
                CloseReason::Timeout,
                "Session ended: the other side stopped answering (timeout).",
            ),
            (
                CloseReason::TimeLimit,
                "Session ended: session time limit reached (set for your account by the help desk).",
            ),
            (
                CloseReason::NotPermitted,
                "Session ended: not permitted for this operator (your account may not view customers' screens).",
            ),
            (
                CloseReason::CertificateExpired,
                "Session ended: your operator certificate expired (log in again for a new one).",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(close_reason_text(reason), text);
        }
        // Without an explicit close: the client's reason text.
        assert_eq!(
            closed_message("abnormal end: connection reset", None),
            "Session ended: abnormal end: connection reset."
        );
        assert_eq!(
            closed_message("cancelled before the customer joined", None),
            "Session cancelled before the customer joined."
        );
    }

    fn live(s: &AppState) -> &Live {
        match &s.screen {
            Screen::Live(live) => live,
            other => panic!("not live: {other:?}"),
        }
    }

    #[test]
    fn request_control_needs_the_control_permission() {
        let mut s = live_after(vec![connected(rights(Permissions::VIEW, 0))]);
        assert!(
            !live(&s).offers_control_request(),
            "no button for view only"
        );
        assert!(s.request_control().is_none());
        assert!(!live(&s).asking_control);

        let mut s = live_after(vec![connected(full())]);
        assert!(live(&s).offers_control_request());
        assert!(live(&s).can_request_control());
        assert!(matches!(
            s.request_control(),
            Some(ClientCommand::RequestControl)
        ));
        assert!(live(&s).asking_control);
        assert!(live(&s).offers_control_request(), "still shown, disabled");
        assert!(!live(&s).can_request_control());
        assert!(s.request_control().is_none(), "one request at a time");
        s.apply(ClientEvent::ConsentPending(ConsentFor::Control));
        assert!(s.request_control().is_none());
        s.apply(ClientEvent::Control {
            granted: true,
            withdrawn: None,
        });
        assert!(!live(&s).asking_control);
        assert!(!live(&s).offers_control_request(), "granted: no button");
        assert!(s.request_control().is_none());
        // Not on the live screen.
        let mut s = AppState::new(form());
        assert!(s.request_control().is_none());
        s.connecting();
        assert!(s.request_control().is_none());
    }

    #[test]
    fn revocation_stops_input_and_says_so() {
        let mut s = live_after(vec![connected(full())]);
        assert!(s.request_control().is_some());
        s.apply(ClientEvent::Control {
            granted: true,
            withdrawn: None,
        });
        assert_eq!(live(&s).notice, None);
        assert_eq!(s.input_commands(some_input()).len(), 3);
        s.apply(ClientEvent::Control {
            granted: false,
            withdrawn: None,
        });
        assert!(s.input_commands(some_input()).is_empty(), "revoked");
        assert_eq!(
            live(&s).notice.as_deref(),
            Some("The customer took back control")
        );
        // The operator may ask again; the notice goes with the new request.
        assert!(live(&s).can_request_control());
        assert!(s.request_control().is_some());
        assert_eq!(live(&s).notice, None);
        s.apply(ClientEvent::Control {
            granted: false,
            withdrawn: None,
        });
        assert_eq!(
            live(&s).notice.as_deref(),
            Some("The customer declined control")
        );
        assert!(s.input_commands(some_input()).is_empty(), "declined");
        assert!(!live(&s).asking_control);
        s.dismiss_notice();
        assert_eq!(live(&s).notice, None);
    }

    #[test]
    fn a_withdrawal_says_why_and_a_pause_blocks_input_until_resumed() {
        use sightline_core::messages::{PauseReason, WithdrawReason};
        let mut s = live_after(vec![connected(full())]);
        assert!(s.request_control().is_some());
        s.apply(ClientEvent::Control {
            granted: true,
            withdrawn: None,
        });
        assert_eq!(s.input_commands(some_input()).len(), 3);
        s.apply(ClientEvent::Control {
            granted: false,
            withdrawn: Some(WithdrawReason::BannerGone),
        });
        assert!(s.input_commands(some_input()).is_empty(), "withdrawn");
        assert_eq!(
            live(&s).notice.as_deref(),
            Some("Control withdrawn: the customer's on-screen banner was removed")
        );
        s.apply(ClientEvent::SharingPaused(PauseReason::BannerGone));
        assert_eq!(
            live(&s).pause_notice().as_deref(),
            Some(
                "Paused: the customer's on-screen banner is gone; sharing resumes when it is back"
            )
        );
        assert!(
            !live(&s).can_request_control(),
            "the agent refuses control meanwhile"
        );
        assert!(s.request_control().is_none());
        // Even a grant (the client only passes on answers to its own requests) does not
        // send input while paused.
        s.apply(ClientEvent::Control {
            granted: true,
            withdrawn: None,
        });
        assert!(s.input_commands(some_input()).is_empty(), "paused");
        s.apply(ClientEvent::Control {
            granted: false,
            withdrawn: None,
        });
        s.apply(ClientEvent::SharingResumed);
        assert_eq!(live(&s).pause_notice(), None);
        assert!(live(&s).can_request_control());
        assert!(s.input_commands(some_input()).is_empty(), "asked for again");
        // A refusal by the agent (no control held) says why too.
        assert!(s.request_control().is_some());
        s.apply(ClientEvent::Control {
            granted: false,
            withdrawn: Some(WithdrawReason::RevokeKeyUnavailable),
        });
        assert_eq!(
            live(&s).notice.as_deref(),
            Some("Control refused: the customer's revoke hotkey is held by another program")
        );
        assert!(!live(&s).asking_control);
    }

    #[test]
    fn a_refused_request_shows_the_notice() {
        let mut s = live_after(vec![connected(full())]);
        assert!(s.request_control().is_some());
        s.apply(ClientEvent::Notice("no control".into()));
        assert!(!live(&s).asking_control);
        assert_eq!(live(&s).notice.as_deref(), Some("no control"));
    }

    #[test]
    fn waiting_for_the_customer_to_allow_viewing() {
        let mut s = live_after(vec![connected(full())]);
        assert_eq!(
            live(&s).picture_placeholder(),
            "Waiting for the first picture…"
        );
        s.apply(ClientEvent::ConsentPending(ConsentFor::Viewing));
        assert!(live(&s).viewing_pending);
        assert_eq!(
            live(&s).picture_placeholder(),
            "Waiting for the customer to allow viewing…"
        );
        // Control consent does not touch the viewing state.
        s.apply(ClientEvent::ConsentPending(ConsentFor::Control));
        assert!(live(&s).viewing_pending);
        // The customer said yes: video starts.
        s.apply(ClientEvent::VideoConfig {
            width: 800,
            height: 600,
        });
        assert!(!live(&s).viewing_pending);
        assert_eq!(
            live(&s).picture_placeholder(),
            "Waiting for the first picture…"
        );
    }

    #[test]
    fn declined_viewing_reaches_the_ended_screen() {
        let mut s = live_after(vec![
            connected(full()),
            ClientEvent::ConsentPending(ConsentFor::Viewing),
        ]);
        s.apply(ClientEvent::Closed {
            reason: CloseReason::DeclinedByCustomer.to_string(),
            normal: true,
            close: Some(CloseReason::DeclinedByCustomer),
        });
        match &s.screen {
            Screen::Ended(e) => {
                assert_eq!(e.message, "The customer declined to share their screen.");
                assert!(e.normal);
            }
            other => panic!("not ended: {other:?}"),
        }
    }

    #[test]
    fn time_limit_close_reaches_the_ended_screen() {
        let mut s = live_after(vec![connected(rights(Permissions::VIEW, 60))]);
        s.apply(ClientEvent::Closed {
            reason: CloseReason::TimeLimit.to_string(),
            normal: true,
            close: Some(CloseReason::TimeLimit),
        });
        match &s.screen {
            Screen::Ended(e) => {
                assert!(
                    e.message.contains("session time limit reached"),
                    "{}",
                    e.message
                );
                assert!(e.normal);
            }
            other => panic!("not ended: {other:?}"),
        }
    }

    #[test]
    fn default_port_is_added() {
        let first = |p: &SessionParams| p.relay.routes().routes()[0].to_string();
        let mut f = form();
        f.relay = "relay.example.com".into();
        let p = f
            .take_params(PathBuf::new(), &ProxySettings::Never)
            .expect("valid");
        assert_eq!(
            first(&p),
            format!("tcp://relay.example.com:{}", sightline_core::DEFAULT_PORT)
        );
        let mut f = form();
        f.relay = "::1".into();
        let p = f
            .take_params(PathBuf::new(), &ProxySettings::Never)
            .expect("valid");
        assert_eq!(first(&p), "tcp://[::1]:7615");
        let mut f = form();
        f.relay = "relay:port".into();
        assert!(f
            .take_params(PathBuf::new(), &ProxySettings::Never)
            .unwrap_err()
            .contains("Relay address"));
    }

    #[test]
    fn bad_fields_are_refused() {
        let mut f = form();
        f.relay_key = "abc".into();
        assert!(f
            .take_params(PathBuf::new(), &ProxySettings::Never)
            .unwrap_err()
            .contains("Relay key"));
        let mut f = form();
        f.relay = "  ".into();
        assert!(f
            .take_params(PathBuf::new(), &ProxySettings::Never)
            .unwrap_err()
            .contains("relay address"));
        let mut f = form();
        f.user.clear();
        assert!(f
            .take_params(PathBuf::new(), &ProxySettings::Never)
            .is_err());
        let mut f = form();
        f.password.clear();
        assert!(f
            .take_params(PathBuf::new(), &ProxySettings::Never)
            .is_err());
    }

    #[test]
    fn events_move_between_screens() {
        let mut s = AppState::new(form());
        s.connecting();
        assert!(s.in_session());
        let code: SessionCode = "1234567890".parse().expect("code");
        s.apply(ClientEvent::Code {
            code,
            expires_at: 99,
        });
        assert!(matches!(&s.screen, Screen::Waiting(w) if w.code.is_some()));
        s.apply(connected(full()));
        s.apply(ClientEvent::Control {
            granted: true,
            withdrawn: None,
        });
        s.apply(ClientEvent::VideoConfig {
            width: 640,
            height: 480,
        });
        match &s.screen {
            Screen::Live(l) => {
                assert!(l.control);
                assert_eq!(l.remote_size, Some((640, 480)));
            }
            other => panic!("not live: {other:?}"),
        }
        s.apply(ClientEvent::Closed {
            reason: "ended by customer".into(),
            normal: true,
            close: Some(CloseReason::EndedByCustomer),
        });
        match &s.screen {
            Screen::Ended(e) => assert_eq!(e.message, "The customer ended the session."),
            other => panic!("not ended: {other:?}"),
        }
        assert!(!s.in_session());
        s.back_to_login();
        assert!(matches!(s.screen, Screen::Login));
    }

    #[test]
    fn the_route_shows_on_the_waiting_screen_and_under_the_form() {
        let mut s = AppState::new(form());
        s.connecting();
        let list: RouteList = "wss://relay.example".parse().expect("routes");
        let proxy = "http://u:secret@proxy.corp:3128".parse().expect("proxy");
        s.apply(ClientEvent::Route(Dialed {
            route: list.routes()[0].clone(),
            proxy: Some(proxy),
        }));
        let want = "Connected over wss://relay.example:443/sightline (through proxy http://proxy.corp:3128)";
        match &s.screen {
            Screen::Waiting(w) => assert_eq!(w.route.as_deref(), Some(want)),
            other => panic!("not waiting: {other:?}"),
        }
        assert_eq!(s.form.route.as_deref(), Some(want));
        let mut f = form();
        f.relay = "ftp://relay.example".into();
        let err = f
            .take_params(PathBuf::new(), &ProxySettings::Never)
            .expect_err("bad");
        assert!(err.contains("unknown scheme"), "{err}");
    }

    #[test]
    fn the_direct_field_gives_a_direct_address() {
        let p = form()
            .take_params(PathBuf::new(), &ProxySettings::Never)
            .expect("valid");
        assert!(p.direct.is_none(), "empty field: through the relay");
        let mut f = form();
        f.direct = " [fd00::20] ".into();
        let p = f
            .take_params(PathBuf::new(), &ProxySettings::Never)
            .expect("valid");
        assert_eq!(
            p.direct.map(|a| a.to_string()).as_deref(),
            Some("[fd00::20]:7615")
        );
        let mut f = form();
        f.direct = "kiosk:0".into();
        let err = f
            .take_params(PathBuf::new(), &ProxySettings::Never)
            .expect_err("bad port");
        assert!(err.starts_with("Direct (LAN) address: "), "{err}");
        assert_eq!(f.password, "hunter2", "kept for the next attempt");
    }

    #[test]
    fn connecting_directly_shows_who_and_where() {
        let mut s = AppState::new(form());
        s.connecting();
        s.apply(ClientEvent::Direct {
            address: "192.168.1.20:7615".into(),
            rights: rights(Permissions::VIEW, 0),
        });
        match &s.screen {
            Screen::Waiting(w) => assert_eq!(
                w.status,
                "connecting directly to 192.168.1.20:7615 as alice (view; no session time limit)"
            ),
            other => panic!("not waiting: {other:?}"),
        }
        // A refusal before the session returns to the form with the reason.
        s.apply(ClientEvent::Failed(
            "the agent refused this operator: ...".into(),
        ));
        assert!(matches!(s.screen, Screen::Login));
        assert_eq!(
            s.form.error.as_deref(),
            Some("the agent refused this operator: ...")
        );
    }

    #[test]
    fn a_new_agent_key_is_asked_about_once_before_anything_is_shown() {
        use crate::agent_key::{AgentKeyReport, AgentKeyStatus, KeyAnswer};
        use sightline_core::identity::Fingerprint;
        let mut s = AppState::new(form());
        s.connecting();
        assert!(
            s.answer_agent_key(KeyAnswer::AcceptOnce).is_none(),
            "nothing asked"
        );
        s.apply(ClientEvent::AgentKeyPrompt {
            address: "192.168.1.20:7615".into(),
            fingerprint: Fingerprint([0xab; 32]),
        });
        let question = match &s.screen {
            Screen::Waiting(w) => w.agent_key.clone().expect("question"),
            other => panic!("not waiting: {other:?}"),
        };
        assert_eq!(question.address, "192.168.1.20:7615");
        assert_eq!(
            question.grouped().lines().next(),
            Some("abab abab abab abab")
        );
        assert_eq!(question.grouped().lines().count(), 4);
        assert!(matches!(
            s.answer_agent_key(KeyAnswer::AcceptAndRemember),
            Some(ClientCommand::AgentKey(KeyAnswer::AcceptAndRemember))
        ));
        assert!(
            s.answer_agent_key(KeyAnswer::Cancel).is_none(),
            "answered once"
        );
        // The client's report closes the question; a declined key ends on the form.
        s.apply(ClientEvent::AgentKeyPrompt {
            address: "192.168.1.20:7615".into(),
            fingerprint: Fingerprint([0xab; 32]),
        });
        s.apply(ClientEvent::AgentKey(AgentKeyReport {
            address: "192.168.1.20:7615".into(),
            fingerprint: Fingerprint([0xab; 32]),
            status: AgentKeyStatus::Declined,
            stored: None,
            expected: None,
        }));
        assert!(matches!(&s.screen, Screen::Waiting(w) if w.agent_key.is_none()));
        s.apply(ClientEvent::Failed("not connected".into()));
        assert!(matches!(s.screen, Screen::Login));
    }

    #[test]
    fn failure_before_the_code_shows_on_the_form() {
        let mut s = AppState::new(form());
        s.connecting();
        s.apply(ClientEvent::Failed("wrong password".into()));
        assert!(matches!(s.screen, Screen::Login));
        assert_eq!(s.form.error.as_deref(), Some("wrong password"));
    }
}
