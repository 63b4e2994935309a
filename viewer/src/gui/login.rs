//! The login screen: relay address, pinned relay key, user name, password, the second factor
//! (authenticator code or recovery code), the optional "Single sign-on" provider with its
//! "Sign in with …" button (the system browser), and the optional "Direct (LAN)" agent address, with
//! the last error shown under the form. With an agent address and a valid stored certificate,
//! a "Connect directly" box above the form needs no login. Drawing only; connecting is the
//! app's job.

use super::state::{Action, LoginForm};
use crate::client::OperatorRights;
use eframe::egui::{self, Color32, RichText};
use sightline_net::cli;

/// Hint in the second-factor field.
pub const SECOND_FACTOR_HINT: &str = "6-digit code from your authenticator app, or a recovery code";

/// Hint in the "Single sign-on" field.
pub const PROVIDER_HINT: &str =
    "optional: your help desk's identity provider on the relay, e.g. corp";

/// The button that signs in with the provider in the system browser: `Sign in with corp`.
pub fn sign_in_label(provider: &str) -> String {
    format!("Sign in with {provider}")
}

/// Hint in the "Direct (LAN)" field.
pub const DIRECT_HINT: &str = "optional: LAN-only agent, e.g. 192.168.1.20:7615";

/// The heading of the direct-connection box: `Connect directly to 192.168.1.20:7615`.
pub fn direct_heading(address: &str) -> String {
    format!("Connect directly to {address}")
}

/// The line under it: who the stored certificate names and until when it is valid.
pub fn direct_details(rights: &OperatorRights) -> String {
    format!(
        "as {} ({}), with the certificate from your last relay login, valid until {}",
        rights.operator,
        rights.summary(),
        cli::utc(rights.certificate_expires)
    )
}

/// Draws the form; returns [`Action::Connect`] on the button, on Enter in the authenticator
/// code field, or on Enter in the password field when a code is already typed (with the code
/// field empty, Enter in the password field moves there instead). With an agent address
/// filled in and `stored` (the rights of a valid stored certificate), a box above the form
/// offers [`Action::ConnectDirect`].
pub fn show(
    ui: &mut egui::Ui,
    form: &mut LoginForm,
    stored: Option<&OperatorRights>,
) -> Option<Action> {
    let mut action = None;
    let direct = form.direct.trim().to_string();
    let offer_direct = !direct.is_empty() && stored.is_some();
    ui.vertical_centered(|ui| {
        ui.add_space((ui.available_height() * 0.15).min(120.0));
        ui.heading(RichText::new("Sightline").size(32.0).strong());
        if offer_direct {
            ui.label(
                "Connect to the LAN-only agent, or log in to your relay for a new certificate.",
            );
        } else {
            ui.label("Log in to your relay to start a support session.");
        }
        ui.add_space(24.0);
    });
    let width = ui.available_width().min(560.0);
    if let (true, Some(rights)) = (offer_direct, stored) {
        ui.vertical_centered(|ui| {
            ui.allocate_ui(egui::vec2(width, 0.0), |ui| {
                egui::Frame::group(ui.style()).show(ui, |ui| {
                    ui.set_width(width - 16.0);
                    ui.vertical_centered(|ui| {
                        let shown = form
                            .direct_address()
                            .ok()
                            .flatten()
                            .map_or(direct.clone(), |a| a.to_string());
                        ui.label(RichText::new(direct_heading(&shown)).size(18.0).strong());
                        ui.label(direct_details(rights));
                        ui.add_space(8.0);
                        if ui
                            .add_sized([120.0, 32.0], egui::Button::new("Connect"))
                            .clicked()
                        {
                            action = Some(Action::ConnectDirect);
                        }
                    });
                });
            });
            ui.add_space(24.0);
        });
    }
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
                            .hint_text("relay.example.com, or tcp:// tls:// ws:// wss:// URLs")
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
                    ui.label("Single sign-on");
                    let sso = ui.add(
                        egui::TextEdit::singleline(&mut form.provider)
                            .hint_text(PROVIDER_HINT)
                            .desired_width(field),
                    );
                    if sso.lost_focus()
                        && ui.input(|i| i.key_pressed(egui::Key::Enter))
                        && !form.provider.trim().is_empty()
                    {
                        action = Some(Action::SignInWithProvider);
                    }
                    ui.end_row();
                    ui.label("Direct (LAN)");
                    ui.add(
                        egui::TextEdit::singleline(&mut form.direct)
                            .hint_text(DIRECT_HINT)
                            .desired_width(field),
                    );
                    ui.end_row();
                    ui.label("");
                    ui.checkbox(
                        &mut form.record,
                        "Record the session (where the help desk allows it)",
                    );
                    ui.end_row();
                });
            ui.add_space(16.0);
            let (label, size) = if direct.is_empty() {
                ("Connect", [120.0, 32.0])
            } else {
                ("Log in and connect directly", [220.0, 32.0])
            };
            if ui.add_sized(size, egui::Button::new(label)).clicked() {
                action = Some(Action::Connect);
            }
            let provider = form.provider.trim();
            if !provider.is_empty() {
                ui.add_space(8.0);
                let label = sign_in_label(provider);
                let button = ui.add_sized([260.0, 32.0], egui::Button::new(label));
                // Prefilled (`--sign-in-with`): Enter signs in.
                if std::mem::take(&mut form.focus_sign_in) {
                    button.request_focus();
                }
                if button.clicked() {
                    action = Some(Action::SignInWithProvider);
                }
            }
            if let Some(error) = &form.error {
                ui.add_space(12.0);
                ui.label(RichText::new(error).color(Color32::from_rgb(0xe0, 0x50, 0x50)));
            }
            if let Some(route) = &form.route {
                ui.add_space(8.0);
                ui.label(RichText::new(route).weak());
            }
        });
    });
    action
}
