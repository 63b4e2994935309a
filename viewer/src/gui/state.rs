//! The window's state, apart from any drawing: which screen is up, what the session client
//! has reported, what the operator typed into the login form. Client events are applied here
//! in one place; the screens only read this state and return [`Action`]s.

use crate::client::{ClientEvent, SessionParams, Stats};
use sightline_core::code::SessionCode;
use sightline_core::identity::Fingerprint;
use sightline_core::messages::CursorShape;
use sightline_core::relay_proto::Secret;
use std::path::PathBuf;

/// What the operator asked for on a screen; applied by the app after drawing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Log in and ask for a session with the form's values.
    Connect,
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
}

/// The login form's fields and its last validation error.
#[derive(Debug, Default)]
pub struct LoginForm {
    /// Relay address `HOST[:PORT]`.
    pub relay: String,
    /// Pinned relay key fingerprint, 64 hex digits.
    pub relay_key: String,
    /// Operator account.
    pub user: String,
    /// Password, masked on screen; moved out on connect.
    pub password: String,
    /// Why the last connect attempt was refused, shown under the form.
    pub error: Option<String>,
}

impl LoginForm {
    /// Whether every field has something in it (for logging in at once).
    pub fn complete(&self) -> bool {
        ![&self.relay, &self.relay_key, &self.user, &self.password]
            .iter()
            .any(|s| s.trim().is_empty())
    }

    /// Checks the fields and builds the session parameters. The password moves out of the
    /// form into a [`Secret`] that wipes it when dropped.
    pub fn take_params(&mut self, data_dir: PathBuf) -> Result<SessionParams, String> {
        let relay = self.relay.trim();
        if relay.is_empty() {
            return Err("Enter the relay address (host:port).".into());
        }
        let relay = if relay.contains(':') {
            relay.to_string()
        } else {
            format!("{relay}:{}", sightline_core::DEFAULT_PORT)
        };
        let relay_key = self
            .relay_key
            .trim()
            .parse::<Fingerprint>()
            .map_err(|e| format!("Relay key: {e}."))?;
        let user = self.user.trim();
        if user.is_empty() {
            return Err("Enter your user name.".into());
        }
        if self.password.is_empty() {
            return Err("Enter your password.".into());
        }
        Ok(SessionParams {
            relay,
            relay_key,
            user: user.to_string(),
            password: Secret::new(std::mem::take(&mut self.password)),
            data_dir,
        })
    }
}

/// Waiting for the customer to type the code.
#[derive(Debug, Clone, Default)]
pub struct Waiting {
    /// The code and its expiry (Unix seconds), once the relay has issued it.
    pub code: Option<(SessionCode, u64)>,
    /// Progress text ("connecting", "logging in", ...).
    pub status: String,
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
    /// Whether the customer allows control.
    pub control: bool,
    /// Latest statistics.
    pub stats: Option<Stats>,
    /// The remote pointer.
    pub cursor: RemoteCursor,
    /// Scaling.
    pub view: ViewMode,
    /// Whether the statistics overlay is shown.
    pub overlay: bool,
    /// Whether a picture has been handed to the GPU yet.
    pub has_picture: bool,
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
            ClientEvent::Code { code, expires_at } => {
                if let Screen::Waiting(w) = &mut self.screen {
                    w.code = Some((code, expires_at));
                    w.status = "waiting for the customer".into();
                }
            }
            ClientEvent::Connected {
                peer_fingerprint,
                sas,
            } => {
                self.screen = Screen::Live(Box::new(Live {
                    peer_fingerprint,
                    sas,
                    ..Default::default()
                }));
            }
            ClientEvent::Closed { reason, normal } => {
                self.screen = Screen::Ended(Ended {
                    message: closed_message(&reason),
                    normal,
                });
            }
            ClientEvent::Failed(message) => {
                self.screen = Screen::Ended(Ended {
                    message,
                    normal: false,
                });
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
}

impl Live {
    fn apply(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::VideoConfig { width, height } => self.remote_size = Some((width, height)),
            ClientEvent::Control { granted } => self.control = granted,
            ClientEvent::Stats(stats) => self.stats = Some(stats),
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

/// The operator-facing sentence for a close reason.
fn closed_message(reason: &str) -> String {
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

    fn form() -> LoginForm {
        LoginForm {
            relay: "127.0.0.1:7615".into(),
            relay_key: "ab".repeat(32),
            user: "alice".into(),
            password: "hunter2".into(),
            error: None,
        }
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
        let p = f.take_params(PathBuf::from("/tmp/x")).expect("valid");
        assert_eq!(p.relay, "127.0.0.1:7615");
        assert_eq!(p.user, "alice");
        assert_eq!(p.password.expose(), "hunter2");
        assert!(f.password.is_empty());
        assert!(!f.complete());
    }

    #[test]
    fn default_port_is_added() {
        let mut f = form();
        f.relay = "relay.example.com".into();
        let p = f.take_params(PathBuf::new()).expect("valid");
        assert_eq!(
            p.relay,
            format!("relay.example.com:{}", sightline_core::DEFAULT_PORT)
        );
    }

    #[test]
    fn bad_fields_are_refused() {
        let mut f = form();
        f.relay_key = "abc".into();
        assert!(f
            .take_params(PathBuf::new())
            .unwrap_err()
            .contains("Relay key"));
        let mut f = form();
        f.relay = "  ".into();
        assert!(f
            .take_params(PathBuf::new())
            .unwrap_err()
            .contains("relay address"));
        let mut f = form();
        f.user.clear();
        assert!(f.take_params(PathBuf::new()).is_err());
        let mut f = form();
        f.password.clear();
        assert!(f.take_params(PathBuf::new()).is_err());
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
        s.apply(ClientEvent::Connected {
            peer_fingerprint: "ff".repeat(32),
            sas: "1 2 3".into(),
        });
        s.apply(ClientEvent::Control { granted: true });
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
        });
        match &s.screen {
            Screen::Ended(e) => assert_eq!(e.message, "Session ended by customer."),
            other => panic!("not ended: {other:?}"),
        }
        assert!(!s.in_session());
        s.back_to_login();
        assert!(matches!(s.screen, Screen::Login));
    }

    #[test]
    fn failure_ends_with_its_text() {
        let mut s = AppState::new(form());
        s.connecting();
        s.apply(ClientEvent::Failed("wrong password".into()));
        assert!(
            matches!(&s.screen, Screen::Ended(e) if e.message == "wrong password" && !e.normal)
        );
    }
}
