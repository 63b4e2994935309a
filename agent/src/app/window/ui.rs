//! The agent's window, drawn with egui: the help desk's name, the code field, then the
//! session's story with the open question's buttons and the customer's two commands. Keys do
//! what the terminal's answers do: Y allows, N refuses, R takes control back, E ends.

use super::child::{Heard, Session};
use super::state::{Phase, WindowState};
use eframe::egui::{self, Key, RichText};
use std::ffi::OsString;
use std::time::{Duration, Instant};

/// How long closing the window waits for the session's explicit close.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// The window's application.
#[derive(Debug)]
pub struct AgentWindow {
    state: WindowState,
    args: Vec<OsString>,
    session: Option<Session>,
    /// Whether the code field was given the keyboard focus yet (once per visit).
    focus_asked: bool,
}

impl AgentWindow {
    pub fn new(help_desk: Option<String>, args: Vec<OsString>) -> Self {
        Self {
            state: WindowState::new(help_desk),
            args,
            session: None,
            focus_asked: false,
        }
    }

    fn start(&mut self, code: &str, ctx: &egui::Context) {
        let wake = {
            let ctx = ctx.clone();
            move || ctx.request_repaint()
        };
        match Session::start(&self.args, code, wake) {
            Ok(s) => self.session = Some(s),
            Err(e) => {
                self.state.error = Some(format!("cannot start the agent: {e}"));
                self.state.phase = Phase::EnterCode;
            }
        }
    }

    fn poll(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let now = Instant::now();
        let mut ended = false;
        for heard in session.drain() {
            match heard {
                Heard::Event(v) => self.state.on_event(&v, now),
                Heard::Ended => ended = true,
            }
        }
        if ended || session.exited() {
            self.state.on_exit();
            self.focus_asked = false;
            if let Some(s) = self.session.take() {
                s.finish(CLOSE_GRACE);
            }
        }
    }

    fn send(&mut self, line: Option<&str>) {
        if let (Some(line), Some(s)) = (line, self.session.as_mut()) {
            s.send(line);
        }
    }

    fn draw(&mut self, ui: &mut egui::Ui) {
        ui.heading(self.state.title());
        ui.add_space(8.0);
        match self.state.phase {
            Phase::EnterCode => self.code_field(ui),
            Phase::Connecting | Phase::Connected | Phase::Ended => self.session_view(ui),
        }
    }

    fn code_field(&mut self, ui: &mut egui::Ui) {
        if let Some(e) = &self.state.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
            ui.add_space(4.0);
        }
        ui.label("Session code from your help desk:");
        let field = ui.add(
            egui::TextEdit::singleline(&mut self.state.code)
                .hint_text("123 456 7890")
                .desired_width(200.0),
        );
        if !field.has_focus() && !self.focus_asked {
            field.request_focus();
            self.focus_asked = true;
        }
        let enter = ui.input(|i| i.key_pressed(Key::Enter));
        if ui.button("Connect").clicked() || enter {
            if let Ok(code) = self.state.submit_code() {
                let ctx = ui.ctx().clone();
                self.start(&code, &ctx);
            }
        }
    }

    fn session_view(&mut self, ui: &mut egui::Ui) {
        let now = Instant::now();
        let (yes, no, revoke, end) = ui.input(|i| {
            (
                i.key_pressed(Key::Y),
                i.key_pressed(Key::N),
                i.key_pressed(Key::R),
                i.key_pressed(Key::E),
            )
        });
        if let Some(q) = self.state.question.clone() {
            let left = self.state.seconds_left(now).unwrap_or(0);
            ui.group(|ui| {
                ui.label(RichText::new(&q.text).strong());
                ui.label(format!("{left} s to answer; no answer means no."));
                ui.horizontal(|ui| {
                    if ui.button("Allow (Y)").clicked() || yes {
                        let line = self.state.answer(true);
                        self.send(line);
                    }
                    if ui.button("Refuse (N)").clicked() || no {
                        let line = self.state.answer(false);
                        self.send(line);
                    }
                });
            });
            ui.ctx().request_repaint_after(Duration::from_millis(500));
        }
        ui.horizontal(|ui| {
            let take_back = self.state.take_back();
            if ui
                .add_enabled(
                    take_back.is_some(),
                    egui::Button::new("Take back control (R)"),
                )
                .clicked()
                || (revoke && take_back.is_some())
            {
                self.send(take_back);
            }
            let end_line = self.state.end_line();
            if ui
                .add_enabled(end_line.is_some(), egui::Button::new("End session (E)"))
                .clicked()
                || (end && end_line.is_some())
            {
                self.send(end_line);
            }
            if self.state.phase == Phase::Ended && ui.button("Close").clicked() {
                ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
            }
        });
        ui.separator();
        egui::ScrollArea::vertical()
            .stick_to_bottom(true)
            .show(ui, |ui| {
                for line in &self.state.log {
                    ui.label(line);
                }
            });
    }
}

impl eframe::App for AgentWindow {
    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.poll();
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default().show(ui, |ui| self.draw(ui));
    }

    fn on_exit(&mut self) {
        if let Some(s) = self.session.take() {
            s.finish(CLOSE_GRACE);
        }
    }
}
