//! The login screen: relay address, pinned relay key, user name, password and the second
//! factor (authenticator code or recovery code), with the last error shown under the form.
//! Drawing only; connecting is the app's job.

use super::state::{Action, LoginForm};
use eframe::egui::{self, Color32, RichText};

/// Hint in the second-factor field.
pub const SECOND_FACTOR_HINT: &str = "6-digit code from your authenticator app, or a recovery code";

/// Draws the form; returns [`Action::Connect`] on the button, on Enter in the authenticator
/// code field, or on Enter in the password field when a code is already typed (with the code
/// field empty, Enter in the password field moves there instead).
pub fn show(ui: &mut egui::Ui, form: &mut LoginForm) -> Option<Action> {
    let mut action = None;
    ui.vertical_centered(|ui| {
        ui.add_space((ui.available_height() * 0.15).min(120.0));
        ui.heading(RichText::new("Sightline").size(32.0).strong());
        ui.label("Log in to your relay to start a support session.");
        ui.add_space(24.0);
    });
    let width = ui.available_width().min(560.0);
    ui.vertical_centered(|ui| {
        ui.allocate_ui(egui::vec2(width, 0.0), |ui| {
            egui::Grid::new("login-form")
                .num_columns(2)
                .spacing([12.0, 10.0])
                .show(ui, |ui| {
                    let field = width - 140.0;
                    ui.label("Relay address");
                    ui.add(
                        egui::TextEdit::singleline(&mut form.relay)
                            .hint_text("relay.example.com:7615")
                            .desired_width(field),
                    );
                    ui.end_row();
                    ui.label("Relay key");
                    ui.add(
                        egui::TextEdit::singleline(&mut form.relay_key)
                            .hint_text("64 hex digits from `relay fingerprint`")
                            .font(egui::TextStyle::Monospace)
                            .desired_width(field),
                    );
                    ui.end_row();
                    ui.label("User name");
                    ui.add(egui::TextEdit::singleline(&mut form.user).desired_width(field));
                    ui.end_row();
                    ui.label("Password");
                    let pw = ui.add(
                        egui::TextEdit::singleline(&mut form.password)
                            .password(true)
                            .desired_width(field),
                    );
                    let mut to_code = false;
                    if pw.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                        if form.second_factor.trim().is_empty() {
                            to_code = true;
                        } else {
                            action = Some(Action::Connect);
                        }
                    }
                    ui.end_row();
                    ui.label("Authenticator code");
                    let code = ui.add(
                        egui::TextEdit::singleline(&mut form.second_factor)
                            .password(true)
                            .hint_text(SECOND_FACTOR_HINT)
                            .desired_width(field),
                    );
                    if to_code {
                        code.request_focus();
                    }
                    if code.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                        action = Some(Action::Connect);
                    }
                    ui.end_row();
                });
            ui.add_space(16.0);
            if ui
                .add_sized([120.0, 32.0], egui::Button::new("Connect"))
                .clicked()
            {
                action = Some(Action::Connect);
            }
            if let Some(error) = &form.error {
                ui.add_space(12.0);
                ui.label(RichText::new(error).color(Color32::from_rgb(0xe0, 0x50, 0x50)));
            }
        });
    });
    action
}
