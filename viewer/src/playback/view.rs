//! The picture area of the playback window: the recorded screen fitted to the window (drawn on
//! the GPU by [`VideoCallback`]), the customer's recorded pointer over it (its recorded shape,
//! or a dot before one is known), the operator's recorded pointer as a ring, and a small
//! overlay with the operator's latest input.

use super::input_track;
use super::mailbox::{Pointer, Status};
use crate::gui::geometry;
use crate::gui::video::VideoCallback;
use crate::limits;
use eframe::egui::{self, Color32, Rect, RichText, Stroke, TextureHandle, TextureOptions};
use sightline_core::messages::{CursorShape, InputEvent};
use sightline_media::Yuv420Frame;
use std::sync::Arc;

/// How long the overlay keeps showing an input event, in recording time.
const OVERLAY_US: u64 = 3_000_000;
/// Colour of the operator's pointer ring.
const OPERATOR: Color32 = Color32::from_rgb(0x30, 0xd0, 0xe0);

/// What the picture area keeps between frames.
#[derive(Default)]
pub struct PictureView {
    /// Size of the last picture handed to the GPU (what the GPU shows).
    size: Option<(u32, u32)>,
    /// The recorded pointer shape as a texture.
    shape: Option<ShapeTexture>,
}

/// A recorded pointer shape on the GPU.
struct ShapeTexture {
    /// The number of the shape it holds ([`Status::shape`]).
    number: u64,
    texture: TextureHandle,
    size: (u16, u16),
    hotspot: (u16, u16),
}

impl std::fmt::Debug for PictureView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PictureView")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// What to draw this frame.
#[derive(Debug)]
pub struct Scene<'a> {
    /// A new picture to upload, if one arrived.
    pub upload: Option<Arc<Yuv420Frame>>,
    /// The playback status.
    pub status: &'a Status,
    /// The position shown on the timeline.
    pub position: u64,
    /// The operator's recorded input.
    pub inputs: &'a [(u64, InputEvent)],
}

impl PictureView {
    /// Draws the picture area into `ui`.
    pub fn show(&mut self, ui: &mut egui::Ui, scene: Scene<'_>) {
        if let Some(p) = &scene.upload {
            self.size = Some((p.width, p.height));
        }
        self.update_shape(ui.ctx(), scene.status.shape.as_ref());
        let Some(size) = self.size else {
            let text = match (&scene.status.problem, scene.status.ended) {
                (Some(why), _) => format!("The recording cannot be played here: {why}"),
                (None, true) => "There is no picture in this recording.".to_string(),
                (None, false) => "Loading the picture…".to_string(),
            };
            ui.centered_and_justified(|ui| ui.label(RichText::new(text).size(18.0).weak()));
            return;
        };
        let rect = geometry::fit(ui.max_rect(), size);
        if let Some((visible, uv)) = geometry::visible_part(rect, ui.clip_rect()) {
            let painter = ui.painter_at(visible);
            painter.add(
                VideoCallback {
                    upload: scene.upload,
                    uv,
                }
                .into_shape(visible),
            );
            if let Some(p) = scene.status.pointer.filter(|p| p.visible) {
                self.draw_pointer(&painter, rect, size, p);
            }
            if let Some((x, y)) = input_track::operator_pointer(scene.inputs, scene.position) {
                draw_operator_pointer(&painter, rect, x, y);
            }
        }
        if let Some((_, ev)) = input_track::latest(scene.inputs, scene.position, OVERLAY_US) {
            input_overlay(ui, rect, &input_track::describe(ev));
        }
    }

    /// Loads a new recorded pointer shape into a texture.
    fn update_shape(&mut self, ctx: &egui::Context, shape: Option<&(u64, Arc<CursorShape>)>) {
        let Some((n, shape)) = shape else { return };
        if self.shape.as_ref().is_some_and(|held| held.number == *n) {
            return;
        }
        // The file's data: checked before it becomes an image.
        if let Err(why) = limits::check_cursor_shape(shape) {
            tracing::debug!(%why, "ignoring a malformed recorded pointer shape");
            return;
        }
        let (w, h) = (shape.width, shape.height);
        let image = egui::ColorImage::from_rgba_unmultiplied([w.into(), h.into()], &shape.rgba);
        let texture = ctx.load_texture("recorded-pointer", image, TextureOptions::LINEAR);
        let hotspot = (shape.hot_x.min(w), shape.hot_y.min(h));
        self.shape = Some(ShapeTexture {
            number: *n,
            texture,
            size: (w, h),
            hotspot,
        });
    }

    fn draw_pointer(&self, painter: &egui::Painter, picture: Rect, size: (u32, u32), p: Pointer) {
        let Ok((x, y)) = limits::check_cursor_position(p.x, p.y) else {
            return;
        };
        let tip = geometry::denormalise(x, y, picture);
        // Points per recorded pixel, so the pointer scales with the picture.
        let scale = picture.width() / size.0.max(1) as f32;
        match &self.shape {
            Some(shape) => {
                let ((w, h), (hx, hy)) = (shape.size, shape.hotspot);
                let min = tip - egui::vec2(f32::from(hx), f32::from(hy)) * scale;
                let rect = Rect::from_min_size(min, egui::vec2(f32::from(w), f32::from(h)) * scale);
                let uv = Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
                painter.image(shape.texture.id(), rect, uv, Color32::WHITE);
            }
            None => {
                painter.circle(tip, 4.0, Color32::WHITE, Stroke::new(1.5, Color32::BLACK));
            }
        }
    }
}

/// The operator's pointer: a ring, so it is not mistaken for the customer's.
fn draw_operator_pointer(painter: &egui::Painter, picture: Rect, x: f32, y: f32) {
    let Ok((x, y)) = limits::check_cursor_position(x, y) else {
        return;
    };
    let at = geometry::denormalise(x, y, picture);
    painter.circle_stroke(at, 9.0, Stroke::new(2.0, OPERATOR));
    painter.circle_stroke(at, 10.5, Stroke::new(1.0, Color32::BLACK));
}

/// The latest input event, at the picture's bottom left.
fn input_overlay(ui: &egui::Ui, picture: Rect, text: &str) {
    egui::Area::new(egui::Id::unique("playback-input-overlay"))
        .fixed_pos(picture.left_bottom() + egui::vec2(12.0, -40.0))
        .interactable(false)
        .show(ui.ctx(), |ui| {
            egui::Frame::popup(ui.style())
                .fill(Color32::from_black_alpha(200))
                .show(ui, |ui| {
                    ui.label(
                        RichText::new(format!("operator: {text}"))
                            .monospace()
                            .color(OPERATOR),
                    );
                });
        });
}
