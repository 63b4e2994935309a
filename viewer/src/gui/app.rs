//! The eframe application: owns the session client, feeds its events into the
//! [`AppState`], picks the screen to draw and applies the operator's [`Action`]s in one
//! place. Network and decoding run on the client's threads; this thread only draws.

use super::json_out::JsonEvents;
use super::live::LiveView;
use super::state::{Action, AppState, Ended, LoginForm, Screen, ViewMode};
use super::{ended, login, waiting, Options};
use crate::agent_key::AgentKeyCheck;
use crate::certstore::StoredCert;
use crate::client::{
    self, ClientCommand, ClientEvent, ClientHandle, DirectParams, OperatorRights, Start,
};
use crate::direct;
use crate::known_hosts::AgentKeyPolicy;
use crate::player::Player;
use eframe::egui::{self, Key, Modifiers, ViewportCommand};
use sightline_core::identity::Fingerprint;
use sightline_net::clock;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long closing the window waits for the session to send its close message.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Whether the first picture of the session has been reported (`--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstFrame {
    NotYet,
    /// Handed to the GPU in the last pass; reported once that pass is on screen.
    Drawn(u32, u32),
    Reported,
}

/// The viewer window.
#[derive(Debug)]
pub struct ViewerApp {
    state: AppState,
    data_dir: PathBuf,
    session: Option<ClientHandle>,
    live_view: LiveView,
    json: JsonEvents,
    first_frame: FirstFrame,
    /// What to do on the first pass (a password or `--direct` was given on the command line).
    auto_connect: Option<Action>,
    /// The certificate stored at the last relay login, when it is valid now (checked again
    /// whenever the login screen comes back).
    stored: Option<(StoredCert, OperatorRights)>,
    /// The pinned relay key from the flags or config file: a stored certificate from another
    /// relay's CA is not offered.
    pinned: Option<Fingerprint>,
    /// `--send-input`: the script for the first session (it asks for control itself).
    player: Option<Player>,
    /// The flags about a direct connection's agent key; a first connection without them asks
    /// the operator in a dialog.
    agent_key: AgentKeyPolicy,
    /// Which proxy the relay's routes go through.
    proxy: sightline_net::proxy::ProxySettings,
}

impl ViewerApp {
    /// The app at its login screen, prefilled from the options.
    pub fn new(opts: Options) -> Self {
        let pinned = opts
            .relay_key
            .as_deref()
            .and_then(|k| k.trim().parse::<Fingerprint>().ok());
        let mut form = LoginForm {
            relay: opts.relay.unwrap_or_default(),
            relay_key: opts.relay_key.unwrap_or_default(),
            user: opts.user.unwrap_or_default(),
            direct: opts.direct.unwrap_or_default(),
            record: opts.record,
            focus_sign_in: opts.provider.is_some(),
            provider: opts.provider.unwrap_or_default(),
            ..Default::default()
        };
        let mut auto_connect = None;
        if opts.direct_at_once {
            auto_connect = Some(Action::ConnectDirect);
        } else if let Some(password) = &opts.password {
            form.password = password.expose().to_string();
            if let Some(code) = &opts.second_factor {
                form.second_factor = code.expose().to_string();
            }
            auto_connect = form.complete().then_some(Action::Connect);
        }
        let mut app = Self {
            state: AppState::new(form),
            data_dir: opts.data_dir,
            session: None,
            live_view: LiveView::default(),
            json: JsonEvents::new(opts.json),
            first_frame: FirstFrame::NotYet,
            auto_connect,
            stored: None,
            pinned,
            player: opts.script.map(Player::new),
            agent_key: opts.agent_key,
            proxy: opts.proxy,
        };
        app.refresh_stored();
        app
    }

    /// Reads the stored certificate again (a relay login may have replaced it).
    fn refresh_stored(&mut self) {
        self.stored = match direct::inspect_store(&self.data_dir, self.pinned.as_ref()) {
            Ok(found) => Some(found),
            Err(why) => {
                tracing::debug!(%why, "no stored certificate to offer");
                None
            }
        };
    }

    /// Connects to the "Direct (LAN)" address with the stored certificate.
    fn connect_direct(&mut self, ctx: &egui::Context) {
        let address = match self.state.form.direct_address() {
            Ok(Some(a)) => a,
            Ok(None) => {
                self.state.form.error =
                    Some("Enter the agent's address under Direct (LAN).".into());
                return;
            }
            Err(e) => {
                self.state.form.error = Some(e);
                return;
            }
        };
        let Some((stored, _)) = self.stored.clone() else {
            self.state.form.error = Some(
                "No valid operator certificate is stored: log in to the relay with the form below."
                    .into(),
            );
            return;
        };
        self.start(
            ctx,
            Start::Direct(DirectParams {
                address,
                stored: Box::new(stored),
                require_control: false,
                data_dir: self.data_dir.clone(),
                agent_key: self.agent_key_check(),
            }),
        );
    }

    /// The window asks about a first connection's key.
    fn agent_key_check(&self) -> AgentKeyCheck {
        AgentKeyCheck {
            policy: self.agent_key,
            ask: true,
        }
    }

    fn connect(&mut self, ctx: &egui::Context) {
        let mut params = match self
            .state
            .form
            .take_params(self.data_dir.clone(), &self.proxy)
        {
            Ok(p) => p,
            Err(e) => {
                self.state.form.error = Some(e);
                return;
            }
        };
        params.agent_key = self.agent_key_check();
        self.start(ctx, Start::Relay(params));
    }

    fn sign_in_with_provider(&mut self, ctx: &egui::Context) {
        let taken = self
            .state
            .form
            .take_provider_params(self.data_dir.clone(), &self.proxy);
        match taken {
            Ok(mut params) => {
                params.agent_key = self.agent_key_check();
                self.start(ctx, Start::Relay(params));
            }
            Err(e) => self.state.form.error = Some(e),
        }
    }

    fn start(&mut self, ctx: &egui::Context, mut start: Start) {
        // A script asks for control: refused right after login for a view-only operator.
        start.require_control(self.player.as_ref().is_some_and(Player::is_waiting));
        let repaint = ctx.clone();
        let notify: Arc<dyn Fn() + Send + Sync> = Arc::new(move || repaint.request_repaint());
        match client::spawn(start, notify) {
            Ok(handle) => {
                self.session = Some(handle);
                self.live_view = LiveView::default();
                self.first_frame = FirstFrame::NotYet;
                self.json.new_session();
                self.state.connecting();
            }
            Err(e) => self.state.form.error = Some(format!("Cannot start the session: {e}.")),
        }
    }

    /// Takes the client's events into the state; forgets the client once its session is over.
    fn poll_client(&mut self) {
        let Some(handle) = &self.session else { return };
        for event in handle.poll_events() {
            self.json.client_event(&event);
            if let Some(player) = &mut self.player {
                player.observe(&event, || handle.command_sender());
            }
            self.state.apply(event);
        }
        if !self.state.in_session() {
            self.session = None;
            self.refresh_stored();
        }
    }

    fn send(&self, cmd: ClientCommand) {
        if let Some(h) = &self.session {
            if !h.send(cmd) {
                tracing::debug!("session client queue full or gone");
            }
        }
    }

    fn apply(&mut self, action: Action, ctx: &egui::Context) {
        match action {
            Action::Connect => self.connect(ctx),
            Action::ConnectDirect => self.connect_direct(ctx),
            Action::SignInWithProvider => self.sign_in_with_provider(ctx),
            Action::End => self.end(),
            Action::BackToLogin => {
                self.state.back_to_login();
                self.refresh_stored();
            }
            Action::CopyCode => {
                if let Screen::Waiting(w) = &self.state.screen {
                    if let Some((code, _)) = &w.code {
                        ctx.copy_text(code.grouped());
                    }
                }
            }
            Action::ToggleFullscreen => {
                let full = ctx.input(|i| i.viewport().fullscreen.unwrap_or(false));
                ctx.send_viewport_cmd(ViewportCommand::Fullscreen(!full));
            }
            Action::ToggleViewMode => {
                if let Screen::Live(live) = &mut self.state.screen {
                    live.view = match live.view {
                        ViewMode::Fit => ViewMode::OneToOne,
                        ViewMode::OneToOne => ViewMode::Fit,
                    };
                }
            }
            Action::ToggleOverlay => {
                if let Screen::Live(live) = &mut self.state.screen {
                    live.overlay = !live.overlay;
                }
            }
            Action::RequestControl => {
                if let Some(cmd) = self.state.request_control() {
                    let sent = self.session.as_ref().is_some_and(|h| h.send(cmd));
                    if !sent {
                        tracing::debug!("session client queue full or gone");
                        // Nothing went out: let the operator press it again.
                        if let Screen::Live(live) = &mut self.state.screen {
                            live.asking_control = false;
                        }
                    }
                }
            }
            Action::DismissNotice => self.state.dismiss_notice(),
            Action::AnswerAgentKey(answer) => {
                if let Some(cmd) = self.state.answer_agent_key(answer) {
                    self.send(cmd);
                }
            }
        }
    }

    fn end(&mut self) {
        let releases = self.live_view.release_all();
        for cmd in self.state.input_commands(releases) {
            self.send(cmd);
        }
        let before_code = matches!(&self.state.screen, Screen::Waiting(w) if w.code.is_none());
        if before_code {
            // Still connecting or logging in, where the client does not read commands yet:
            // drop it (which queues End for when it does) rather than hang on a dead relay.
            self.session = None;
            let reason = "cancelled before the customer joined".to_string();
            let closed = ClientEvent::Closed {
                reason,
                normal: true,
                close: None,
            };
            self.json.client_event(&closed);
            self.state.apply(closed);
        } else {
            self.send(ClientCommand::End);
        }
    }

    fn draw(&mut self, ui: &mut egui::Ui) -> Option<Action> {
        let panel = |ui: &mut egui::Ui, f: &mut dyn FnMut(&mut egui::Ui) -> Option<Action>| {
            egui::CentralPanel::default().show(ui, |ui| f(ui)).inner
        };
        match &mut self.state.screen {
            Screen::Login => {
                let stored = self.stored.as_ref().map(|(_, rights)| rights);
                panel(ui, &mut |ui| login::show(ui, &mut self.state.form, stored))
            }
            Screen::Waiting(w) => {
                let now = clock::now_unix();
                panel(ui, &mut |ui| waiting::show(ui, w, now))
            }
            Screen::Ended(e) => {
                let e: &Ended = e;
                panel(ui, &mut |ui| ended::show(ui, e))
            }
            Screen::Live(live) => {
                let picture = self
                    .session
                    .as_ref()
                    .and_then(|h| h.frames.take())
                    .map(|f| f.picture);
                let out = self.live_view.show(ui, live, picture);
                // Only what the certificate and the customer allow leaves the window.
                for cmd in self.state.input_commands(out.input) {
                    if let Some(h) = &self.session {
                        h.send(cmd);
                    }
                }
                if let (Some((w, h)), FirstFrame::NotYet) = (out.uploaded, self.first_frame) {
                    self.first_frame = FirstFrame::Drawn(w, h);
                    // One more pass, after this one is on screen, to report it.
                    ui.ctx().request_repaint();
                }
                out.action
            }
        }
    }
}

impl eframe::App for ViewerApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        if let Some(action) = self.auto_connect.take() {
            self.apply(action, ctx);
        }
        self.poll_client();
        if let FirstFrame::Drawn(w, h) = self.first_frame {
            self.first_frame = FirstFrame::Reported;
            self.json.first_frame(w, h);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        let mut actions = Vec::new();
        // F11 is the window's own, never forwarded.
        if ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::F11)) {
            actions.push(Action::ToggleFullscreen);
        }
        actions.extend(self.draw(ui));
        for action in actions {
            self.apply(action, &ctx);
        }
    }

    fn on_exit(&mut self) {
        let Some(handle) = self.session.take() else {
            return;
        };
        // Closing the window ends the session with an explicit close; give the client a
        // moment to send it before the process exits.
        handle.send(ClientCommand::End);
        let deadline = Instant::now() + CLOSE_GRACE;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match handle.next_event(left) {
                Some(ev @ (ClientEvent::Closed { .. } | ClientEvent::Failed(_))) => {
                    self.json.client_event(&ev);
                    return;
                }
                Some(_) => {}
                None => return,
            }
        }
    }
}
