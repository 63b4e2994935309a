//! The live screen: a toolbar, the remote picture (drawn on the GPU by
//! [`VideoCallback`](super::video::VideoCallback)), the remote pointer over it, and the
//! statistics overlay. Before the first picture it says what it waits for (the customer's
//! consent to viewing, or the picture). An operator whose certificate allows control asks the
//! customer for it with "Request control"; while the customer grants it and the operator's
//! pointer is on the picture, the operator's input is collected here for the session client.
//! A refusal, the customer taking control back or the agent withdrawing it (with the reason)
//! shows a notice under the toolbar and stops the input at once; while the agent has paused
//! sharing a second amber bar says why, until sharing resumes. An account without the control
//! permission sees a "View only" badge and its input is never collected.

use super::geometry;
use super::input::{self, InputForwarder, Target};
use super::state::{short_fingerprint, time_left_is_short, time_left_text, Action, Live, ViewMode};
use super::video::VideoCallback;
use crate::limits;
use eframe::egui::{
    self, Align2, Color32, EventFilter, Id, Rect, RichText, Sense, TextureHandle, TextureOptions,
};
use sightline_core::messages::{CursorShape, InputEvent};
use sightline_media::Yuv420Frame;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Colour of the session time left in its last minutes.
const WARNING_RED: Color32 = Color32::from_rgb(0xe0, 0x50, 0x50);

/// Background of the notices under the toolbar (control declined, taken back or withdrawn;
/// sharing paused).
const NOTICE_AMBER: Color32 = Color32::from_rgb(0x8a, 0x5a, 0x00);

/// Per-session drawing state that is not part of the app state: the input forwarder, where
/// the picture was last drawn, the pointer image texture.
#[derive(Default)]
pub struct LiveView {
    forwarder: InputForwarder,
    /// Whether the pointer was over the picture (and nothing covering it) last frame.
    pointer_on_picture: bool,
    /// Where the whole picture was last drawn, in points.
    picture: Option<Rect>,
    cursor_texture: Option<TextureHandle>,
}

impl std::fmt::Debug for LiveView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveView")
            .field("pointer_on_picture", &self.pointer_on_picture)
            .field("picture", &self.picture)
            .finish_non_exhaustive()
    }
}

/// What the live screen produced this frame.
#[derive(Debug, Default)]
pub struct LiveOutput {
    /// A button the operator pressed.
    pub action: Option<Action>,
    /// Input for the customer's machine.
    pub input: Vec<InputEvent>,
    /// Size of a picture handed to the GPU this frame.
    pub uploaded: Option<(u32, u32)>,
}

impl LiveView {
    /// Everything that was held down, released (the session is leaving the live screen).
    pub fn release_all(&mut self) -> Vec<InputEvent> {
        self.forwarder.release_all()
    }

    /// Draws the screen. `picture` is a newly decoded picture, if one arrived.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        live: &mut Live,
        picture: Option<Arc<Yuv420Frame>>,
    ) -> LiveOutput {
        let mut out = LiveOutput {
            input: self.collect_input(ui.ctx(), live),
            ..Default::default()
        };
        if let Some(shape) = live.cursor.new_shape.take() {
            self.set_cursor_shape(ui.ctx(), live, &shape);
        }
        if let Some(p) = &picture {
            live.remote_size = Some((p.width, p.height));
            live.has_picture = true;
            out.uploaded = Some((p.width, p.height));
        }
        let time_left = live.time_left(Instant::now());
        if time_left.is_some() {
            // Tick the clock once a second.
            ui.ctx().request_repaint_after(Duration::from_secs(1));
        }
        egui::Panel::top("live-toolbar").show(ui, |ui| {
            out.action = toolbar(ui, live, time_left);
        });
        if let Some(paused) = live.pause_notice() {
            egui::Panel::top("live-paused")
                .frame(
                    egui::Frame::new()
                        .fill(NOTICE_AMBER)
                        .inner_margin(egui::Margin::symmetric(8, 4)),
                )
                .show(ui, |ui| {
                    ui.label(RichText::new(paused).strong().color(Color32::WHITE));
                });
        }
        if let Some(notice) = &live.notice {
            egui::Panel::top("live-notice")
                .frame(
                    egui::Frame::new()
                        .fill(NOTICE_AMBER)
                        .inner_margin(egui::Margin::symmetric(8, 4)),
                )
                .show(ui, |ui| {
                    if let Some(a) = notice_bar(ui, notice) {
                        out.action = Some(a);
                    }
                });
        }
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE.fill(Color32::from_gray(16)))
            .show(ui, |ui| self.picture_area(ui, live, picture));
        if live.overlay {
            overlay(ui.ctx(), live, time_left);
        }
        out
    }

    /// Translates this frame's input, using where the picture was last frame, and takes the
    /// keyboard events away from egui while the remote side has the keyboard.
    fn collect_input(&mut self, ctx: &egui::Context, live: &Live) -> Vec<InputEvent> {
        let Some(picture) = self.picture else {
            return self.forwarder.release_all();
        };
        let pointer = live.may_control() && self.pointer_on_picture;
        // Keys only while the window has the keyboard: a key released elsewhere never
        // reaches us, and the forwarder releases what it holds when this turns false.
        let keyboard = pointer && ctx.input(|i| i.focused);
        let target = Target {
            picture,
            pointer,
            keyboard,
            modifiers: ctx.input(|i| i.modifiers),
        };
        let events = ctx.input(|i| i.events.clone());
        let input = self.forwarder.translate(&events, target);
        if keyboard {
            ctx.input_mut(|i| i.events.retain(|e| !input::is_keyboard_event(e)));
        }
        if !live.may_control() {
            // Revoked (or never allowed): the agent drops our input anyway, forget what we
            // think is held, and hand nothing on.
            self.forwarder.release_all();
            return Vec::new();
        }
        input
    }

    fn picture_area(&mut self, ui: &mut egui::Ui, live: &Live, picture: Option<Arc<Yuv420Frame>>) {
        let Some(size) = live.remote_size.filter(|_| live.has_picture) else {
            ui.centered_and_justified(|ui| {
                ui.label(RichText::new(live.picture_placeholder()).size(18.0).weak());
            });
            return;
        };
        let capturing = live.may_control() && self.pointer_on_picture;
        let (rect, clip, response) = match live.view {
            ViewMode::Fit => {
                let rect = geometry::fit(ui.max_rect(), size);
                let response = ui.interact(rect, picture_id(), Sense::click_and_drag());
                (rect, ui.clip_rect(), response)
            }
            ViewMode::OneToOne => {
                let source = if capturing {
                    // The wheel and drags belong to the remote side; scroll bars stay.
                    egui::scroll_area::ScrollSource::SCROLL_BAR
                } else {
                    egui::scroll_area::ScrollSource::default()
                };
                egui::ScrollArea::both()
                    .scroll_source(source)
                    .auto_shrink([false, false])
                    .show(ui, |ui| {
                        let points = geometry::one_to_one(size, ui.ctx().pixels_per_point());
                        let (rect, _) = ui.allocate_exact_size(points, Sense::hover());
                        let response = ui.interact(rect, picture_id(), Sense::click_and_drag());
                        (rect, ui.clip_rect(), response)
                    })
                    .inner
            }
        };
        if let Some((visible, uv)) = geometry::visible_part(rect, clip) {
            ui.painter().add(
                VideoCallback {
                    upload: picture,
                    uv,
                }
                .into_shape(visible),
            );
            self.draw_cursor(&ui.painter_at(visible), rect, live, size);
        }
        self.picture = Some(rect);
        self.pointer_on_picture = response.contains_pointer();
        if live.may_control() && (self.pointer_on_picture || self.forwarder.buttons_held()) {
            // Tab, arrows and Escape go to the remote side, not to egui's focus navigation.
            response.request_focus();
            ui.ctx().memory_mut(|m| {
                m.set_focus_lock_filter(
                    response.id,
                    EventFilter {
                        tab: true,
                        horizontal_arrows: true,
                        vertical_arrows: true,
                        escape: true,
                    },
                )
            });
        } else if response.has_focus() {
            response.surrender_focus();
        }
    }

    fn set_cursor_shape(&mut self, ctx: &egui::Context, live: &mut Live, shape: &CursorShape) {
        let (w, h) = (shape.width, shape.height);
        // The client already dropped bad shapes; checked again right before the allocation.
        if let Err(why) = limits::check_cursor_shape(shape) {
            tracing::debug!(%why, "ignoring malformed pointer shape");
            return;
        }
        let image = egui::ColorImage::from_rgba_unmultiplied([w.into(), h.into()], &shape.rgba);
        match &mut self.cursor_texture {
            Some(t) => t.set(image, TextureOptions::LINEAR),
            None => {
                self.cursor_texture =
                    Some(ctx.load_texture("remote-pointer", image, TextureOptions::LINEAR));
            }
        }
        live.cursor.size = (w, h);
        live.cursor.hotspot = (shape.hot_x.min(w), shape.hot_y.min(h));
    }

    fn draw_cursor(&self, painter: &egui::Painter, picture: Rect, live: &Live, size: (u32, u32)) {
        if !live.cursor.visible || size.0 == 0 {
            return;
        }
        let tip = geometry::denormalise(live.cursor.pos.0, live.cursor.pos.1, picture);
        // Points per remote pixel, so the pointer scales with the picture.
        let scale = picture.width() / size.0 as f32;
        match &self.cursor_texture {
            Some(texture) => {
                let (hx, hy) = live.cursor.hotspot;
                let (w, h) = live.cursor.size;
                let min = tip - egui::vec2(f32::from(hx), f32::from(hy)) * scale;
                let rect = Rect::from_min_size(min, egui::vec2(f32::from(w), f32::from(h)) * scale);
                let uv = Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
                painter.image(texture.id(), rect, uv, Color32::WHITE);
            }
            None => {
                painter.circle(
                    tip,
                    4.0,
                    Color32::WHITE,
                    egui::Stroke::new(1.5, Color32::BLACK),
                );
            }
        }
    }
}

fn picture_id() -> Id {
    Id::unique("sightline-remote-picture")
}

fn toolbar(ui: &mut egui::Ui, live: &Live, time_left: Option<u64>) -> Option<Action> {
    let mut action = None;
    ui.horizontal(|ui| {
        let fit = live.view == ViewMode::Fit;
        if ui
            .selectable_label(fit, "Fit")
            .on_hover_text("Scale to the window")
            .clicked()
            && !fit
        {
            action = Some(Action::ToggleViewMode);
        }
        if ui
            .selectable_label(!fit, "1:1")
            .on_hover_text("One remote pixel per screen pixel")
            .clicked()
            && fit
        {
            action = Some(Action::ToggleViewMode);
        }
        ui.separator();
        if ui.button("Fullscreen").on_hover_text("F11").clicked() {
            action = Some(Action::ToggleFullscreen);
        }
        if ui.selectable_label(live.overlay, "Statistics").clicked() {
            action = Some(Action::ToggleOverlay);
        }
        ui.separator();
        if live.view_only() {
            view_only_badge(ui);
        } else if live.offers_control_request() {
            let (text, hover) = if live.asking_control {
                ("Asking the customer…", "Waiting for the customer's answer")
            } else {
                (
                    "Request control",
                    "Ask the customer to let you use their keyboard and mouse",
                )
            };
            if ui
                .add_enabled(live.can_request_control(), egui::Button::new(text))
                .on_hover_text(hover)
                .on_disabled_hover_text(hover)
                .clicked()
            {
                action = Some(Action::RequestControl);
            }
        } else {
            ui.label(control_text(live.control));
        }
        ui.separator();
        ui.label(format!("Verification code: {}", live.sas))
            .on_hover_text("The customer sees the same code. Compare them on the phone.");
        if let Some(left) = time_left {
            ui.separator();
            ui.label(time_left_rich(ui, left))
                .on_hover_text("Session time limit set for your account by the help desk");
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button(RichText::new("End session").strong()).clicked() {
                action = Some(Action::End);
            }
        });
    });
    action
}

/// The notice under the toolbar, with a button to hide it.
fn notice_bar(ui: &mut egui::Ui, notice: &str) -> Option<Action> {
    let mut action = None;
    ui.horizontal(|ui| {
        ui.label(RichText::new(notice).strong().color(Color32::WHITE));
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.small_button("Dismiss").clicked() {
                action = Some(Action::DismissNotice);
            }
        });
    });
    action
}

/// For an operator whose certificate allows control: whether the customer granted it.
fn control_text(granted: bool) -> RichText {
    if granted {
        RichText::new("Control granted").color(Color32::from_rgb(0x40, 0xc0, 0x60))
    } else {
        RichText::new("Control not granted").weak()
    }
}

/// The badge of an account without the control permission.
fn view_only_badge(ui: &mut egui::Ui) {
    egui::Frame::new()
        .fill(Color32::from_rgb(0x8a, 0x5a, 0x00))
        .corner_radius(4.0)
        .inner_margin(egui::Margin::symmetric(6, 2))
        .show(ui, |ui| {
            ui.label(RichText::new("View only").strong().color(Color32::WHITE));
        })
        .response
        .on_hover_text("Your account may not control customers' machines.");
}

fn time_left_rich(ui: &egui::Ui, remaining_secs: u64) -> RichText {
    let text = RichText::new(time_left_text(remaining_secs)).monospace();
    if time_left_is_short(remaining_secs) {
        text.color(WARNING_RED).strong()
    } else {
        text.color(ui.visuals().text_color())
    }
}

fn overlay(ctx: &egui::Context, live: &Live, time_left: Option<u64>) {
    egui::Area::new(Id::unique("live-overlay"))
        .anchor(Align2::RIGHT_TOP, egui::vec2(-12.0, 48.0))
        .interactable(false)
        .show(ctx, |ui| {
            egui::Frame::popup(ui.style())
                .fill(Color32::from_black_alpha(200))
                .show(ui, |ui| {
                    ui.style_mut().override_text_style = Some(egui::TextStyle::Monospace);
                    match &live.stats {
                        Some(s) => {
                            ui.label(format!("{:>6.1} fps", s.fps));
                            ui.label(format!("{:>6.1} ms capture→decoded", s.latency_ms));
                            ui.label(format!("{:>6.0} kbit/s", s.kbps));
                        }
                        None => {
                            ui.label("no statistics yet");
                        }
                    }
                    if let Some(r) = &live.send_rate {
                        ui.label(format!(
                            "{:>6} kbit/s sent (target {})",
                            r.send_kbps, r.target_kbps
                        ));
                        ui.label(format!(
                            "{:>6} ms round trip, {} queued",
                            r.rtt_ms, r.queue_ms
                        ));
                    }
                    if let Some((w, h)) = live.remote_size {
                        ui.label(format!("remote {w}×{h}"));
                    }
                    ui.label(format!(
                        "agent key {}",
                        short_fingerprint(&live.peer_fingerprint)
                    ));
                    ui.label(format!("verification {}", live.sas));
                    if let Some(required) = live.recording {
                        let what = if required {
                            "● recorded (required)"
                        } else {
                            "● recorded"
                        };
                        ui.label(RichText::new(what).color(Color32::from_rgb(0xe0, 0x50, 0x50)));
                    }
                    let names = live.rights.permission_names();
                    ui.label(format!(
                        "permissions {}",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ));
                    if let Some(left) = time_left {
                        ui.label(time_left_rich(ui, left));
                    }
                    if live.view_only() {
                        ui.label(RichText::new("View only").strong());
                    } else {
                        ui.label(control_text(live.control));
                    }
                });
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::OperatorRights;
    use sightline_core::cert::Permissions;

    /// Every text the live screen draws for `live`, without a window or GPU.
    fn drawn_text(live: &mut Live) -> String {
        let ctx = egui::Context::default();
        let mut view = LiveView::default();
        let mut text = String::new();
        // Two passes: the first one only sizes things.
        for _ in 0..2 {
            let mut out = ctx.run_ui(egui::RawInput::default(), |ui| {
                view.show(ui, live, None);
            });
            // No renderer takes the font atlas here.
            out.textures_delta.clear();
            text.clear();
            for clipped in &out.shapes {
                collect_text(&clipped.shape, &mut text);
            }
        }
        text
    }

    fn collect_text(shape: &egui::Shape, out: &mut String) {
        match shape {
            egui::Shape::Text(t) => {
                out.push_str(t.galley.text());
                out.push('\n');
            }
            egui::Shape::Vec(shapes) => shapes.iter().for_each(|s| collect_text(s, out)),
            _ => {}
        }
    }

    fn live(permissions: Permissions) -> Live {
        Live {
            sas: "1234 5678".into(),
            rights: OperatorRights {
                operator: "alice".into(),
                permissions,
                max_session_secs: 0,
                certificate_expires: 0,
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_screen_says_what_it_waits_for_and_offers_control() {
        let mut l = live(Permissions::VIEW.union(Permissions::CONTROL));
        l.viewing_pending = true;
        let text = drawn_text(&mut l);
        assert!(
            text.contains("Waiting for the customer to allow viewing…"),
            "{text}"
        );
        assert!(text.contains("Request control"), "{text}");

        l.viewing_pending = false;
        l.asking_control = true;
        let text = drawn_text(&mut l);
        assert!(text.contains("Waiting for the first picture…"), "{text}");
        assert!(text.contains("Asking the customer…"), "{text}");
        assert!(!text.contains("Request control"), "{text}");

        l.asking_control = false;
        l.notice = Some("The customer took back control".into());
        let text = drawn_text(&mut l);
        assert!(text.contains("The customer took back control"), "{text}");
        assert!(text.contains("Request control"), "{text}");

        l.control = true;
        l.notice = None;
        let text = drawn_text(&mut l);
        assert!(text.contains("Control granted"), "{text}");
        assert!(!text.contains("Request control"), "{text}");
    }

    #[test]
    fn a_pause_and_a_withdrawal_say_why() {
        use sightline_core::messages::PauseReason;
        let mut l = live(Permissions::VIEW.union(Permissions::CONTROL));
        l.paused = Some(PauseReason::BannerGone);
        l.notice = Some("Control withdrawn: the customer's on-screen banner was removed".into());
        let text = drawn_text(&mut l);
        assert!(
            text.contains(
                "Paused: the customer's on-screen banner is gone; sharing resumes when it is back"
            ),
            "{text}"
        );
        assert!(
            text.contains("Control withdrawn: the customer's on-screen banner was removed"),
            "{text}"
        );
        l.paused = None;
        let text = drawn_text(&mut l);
        assert!(!text.contains("Paused:"), "{text}");
    }

    #[test]
    fn view_only_has_no_request_button() {
        let text = drawn_text(&mut live(Permissions::VIEW));
        assert!(text.contains("View only"), "{text}");
        assert!(!text.contains("Request control"), "{text}");
    }
}
