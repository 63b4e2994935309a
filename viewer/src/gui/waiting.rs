//! The waiting screen: the session code, very large and grouped for reading aloud, a copy
//! button, the time left before the code expires, progress text and Cancel; over it, on a
//! first direct connection, the dialog that shows the agent's key fingerprint and asks
//! whether to accept it (once, or for good) before anything of the session is shown.

use super::state::{format_countdown, Action, AgentKeyQuestion, Waiting};
use crate::agent_key::KeyAnswer;
use eframe::egui::{self, RichText};
use std::time::Duration;

/// Draws the screen; `now` is Unix seconds.
pub fn show(ui: &mut egui::Ui, waiting: &Waiting, now: u64) -> Option<Action> {
    let mut action = None;
    ui.vertical_centered(|ui| {
        ui.add_space((ui.available_height() * 0.15).min(120.0));
        match &waiting.code {
            Some((code, expires_at)) => {
                ui.label(RichText::new("Read this code to the customer").size(20.0));
                ui.add_space(16.0);
                ui.label(
                    RichText::new(code.grouped())
                        .size(96.0)
                        .monospace()
                        .strong(),
                );
                ui.add_space(8.0);
                if ui
                    .add_sized([100.0, 28.0], egui::Button::new("Copy"))
                    .clicked()
                {
                    action = Some(Action::CopyCode);
                }
                ui.add_space(16.0);
                let left = expires_at.saturating_sub(now);
                let text = if left == 0 {
                    "The code has expired.".to_string()
                } else {
                    format!("Expires in {}", format_countdown(left))
                };
                ui.label(RichText::new(text).size(20.0).monospace());
                // Redraw when the next second ticks over, not in a busy loop.
                ui.ctx().request_repaint_after(Duration::from_secs(1));
            }
            None => {
                ui.spinner();
            }
        }
        ui.add_space(16.0);
        ui.label(RichText::new(capitalise(&waiting.status)).weak());
        if let Some(route) = &waiting.route {
            ui.label(RichText::new(route).weak());
        }
        ui.add_space(24.0);
        if ui
            .add_sized([120.0, 32.0], egui::Button::new("Cancel"))
            .clicked()
        {
            action = Some(Action::End);
        }
    });
    if let Some(question) = &waiting.agent_key {
        action = agent_key_dialog(ui, question).or(action);
    }
    action
}

/// The dialog about a new agent's key; an answer closes it.
fn agent_key_dialog(ui: &mut egui::Ui, q: &AgentKeyQuestion) -> Option<Action> {
    let mut action = None;
    egui::Modal::new(egui::Id::unique("agent-key-dialog")).show(ui.ctx(), |ui| {
        ui.set_max_width(520.0);
        ui.heading("New LAN-only agent");
        ui.add_space(8.0);
        ui.label(format!(
            "This viewer has not connected to {} before. The agent proved this key:",
            q.address
        ));
        ui.add_space(8.0);
        ui.label(RichText::new(q.grouped()).size(18.0).monospace().strong());
        ui.add_space(8.0);
        ui.label(
            "Compare it with what `agent fingerprint` prints on the kiosk (ask its \
             administrator). Accept it only if they are the same.",
        );
        ui.add_space(12.0);
        ui.horizontal(|ui| {
            let answers = [
                ("Accept once", KeyAnswer::AcceptOnce),
                ("Accept and remember", KeyAnswer::AcceptAndRemember),
                ("Cancel", KeyAnswer::Cancel),
            ];
            for (label, answer) in answers {
                if ui.button(label).clicked() {
                    action = Some(Action::AnswerAgentKey(answer));
                }
            }
        });
    });
    action
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
