//! The screen after a session: why it ended (or what failed) and the way back to login.

use super::state::{Action, Ended};
use eframe::egui::{self, Color32, RichText};

/// Draws the screen.
pub fn show(ui: &mut egui::Ui, ended: &Ended) -> Option<Action> {
    let mut action = None;
    ui.vertical_centered(|ui| {
        ui.add_space((ui.available_height() * 0.2).min(160.0));
        let (title, color) = if ended.normal {
            ("Session ended", ui.visuals().text_color())
        } else {
            ("Session failed", Color32::from_rgb(0xe0, 0x50, 0x50))
        };
        ui.heading(RichText::new(title).size(28.0).color(color));
        ui.add_space(12.0);
        ui.label(RichText::new(&ended.message).size(18.0));
        ui.add_space(24.0);
        if ui
            .add_sized([160.0, 32.0], egui::Button::new("Back to login"))
            .clicked()
        {
            action = Some(Action::BackToLogin);
        }
    });
    action
}
