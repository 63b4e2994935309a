//! The timeline under the picture: the played part, a tick per keyframe, the playhead, and a
//! row of marks below it where the operator's input happened (coloured by kind). Clicking or
//! dragging on either row seeks. The mapping between positions and times and the time format
//! are pure functions, tested without a window.

use super::input_track::{self, InputKind};
use eframe::egui::{self, pos2, vec2, Color32, CursorIcon, Rect, Sense, Stroke};
use sightline_core::messages::InputEvent;

/// Height of the time bar, in points.
const BAR_HEIGHT: f32 = 22.0;
/// Height of the input row, in points.
const TRACK_HEIGHT: f32 = 12.0;

/// The recording time at horizontal position `x` on a timeline from `left` to `right`,
/// clamped to the recording.
pub fn time_at(x: f32, left: f32, right: f32, duration_us: u64) -> u64 {
    let width = right - left;
    if width.is_nan() || width <= 0.0 || !x.is_finite() {
        return 0;
    }
    let fraction = f64::from(((x - left) / width).clamp(0.0, 1.0));
    // Rounded, so that the right edge is the end exactly.
    (fraction * duration_us as f64).round() as u64
}

/// Where recording time `at_us` lies on a timeline from `left` to `right`.
pub fn x_of(at_us: u64, left: f32, right: f32, duration_us: u64) -> f32 {
    if duration_us == 0 {
        return left;
    }
    let fraction = (at_us.min(duration_us) as f64 / duration_us as f64) as f32;
    left + fraction * (right - left)
}

/// `position` moved by `delta_us` (either way), kept within the recording.
pub fn step(position: u64, delta_us: i64, duration_us: u64) -> u64 {
    position.saturating_add_signed(delta_us).min(duration_us)
}

/// A recording time as `m:ss.t` (`h:mm:ss.t` from an hour on), tenths rounded down.
pub fn format_time(at_us: u64) -> String {
    let tenths = at_us / 100_000;
    let (t, secs) = (tenths % 10, tenths / 10);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}.{t}")
    } else {
        format!("{m}:{s:02}.{t}")
    }
}

/// What the timeline shows.
#[derive(Debug, Clone, Copy)]
pub struct Marks<'a> {
    /// The playhead.
    pub position: u64,
    /// The recording's length.
    pub duration_us: u64,
    /// Keyframe times, in order.
    pub keyframes: &'a [u64],
    /// The operator's input, in order.
    pub inputs: &'a [(u64, InputEvent)],
}

/// The input row's marks for one width, kept until the width changes (a long session has
/// many thousands of events; they are bucketed once, not on every frame).
#[derive(Debug, Default)]
pub struct TrackMarks {
    columns: usize,
    marks: Vec<(usize, InputKind)>,
}

impl TrackMarks {
    fn for_width(&mut self, marks: &Marks<'_>, columns: usize) -> &[(usize, InputKind)] {
        if self.columns != columns {
            self.columns = columns;
            self.marks = input_track::columns(marks.inputs, marks.duration_us, columns);
        }
        &self.marks
    }
}

/// Draws the timeline across the available width; the time to seek to when it is clicked
/// or dragged.
pub fn show(ui: &mut egui::Ui, marks: Marks<'_>, track_marks: &mut TrackMarks) -> Option<u64> {
    let width = ui.available_width();
    let (rect, response) = ui.allocate_exact_size(
        vec2(width, BAR_HEIGHT + TRACK_HEIGHT + 2.0),
        Sense::click_and_drag(),
    );
    let bar = Rect::from_min_size(rect.min, vec2(width, BAR_HEIGHT));
    let track = Rect::from_min_size(pos2(rect.min.x, bar.max.y + 2.0), vec2(width, TRACK_HEIGHT));
    let (left, right, duration) = (rect.min.x, rect.max.x, marks.duration_us);
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    painter.rect_filled(bar, 3.0, visuals.extreme_bg_color);
    let head = x_of(marks.position, left, right, duration);
    let played = Rect::from_min_max(bar.min, pos2(head, bar.max.y));
    painter.rect_filled(played, 3.0, visuals.selection.bg_fill.gamma_multiply(0.6));
    let tick = Stroke::new(1.5, visuals.text_color().gamma_multiply(0.7));
    for &k in marks.keyframes {
        let x = x_of(k, left, right, duration);
        painter.line_segment([pos2(x, bar.min.y), pos2(x, bar.min.y + 8.0)], tick);
    }
    painter.rect_filled(track, 2.0, visuals.faint_bg_color);
    for &(column, kind) in track_marks.for_width(&marks, width as usize) {
        let x = left + column as f32 + 0.5;
        let (top, colour) = mark_style(kind, track);
        painter.line_segment(
            [pos2(x, top), pos2(x, track.max.y)],
            Stroke::new(1.0, colour),
        );
    }
    painter.line_segment(
        [pos2(head, bar.min.y), pos2(head, track.max.y)],
        Stroke::new(2.0, visuals.strong_text_color()),
    );
    let pointer = response.interact_pointer_pos().or(response.hover_pos());
    if let Some(p) = response.hover_pos() {
        let at = time_at(p.x, left, right, duration);
        let text = match input_track::near(marks.inputs, at, duration / width.max(1.0) as u64 * 3) {
            Some(ev) => format!("{} · {}", format_time(at), input_track::describe(ev)),
            None => format_time(at),
        };
        response
            .clone()
            .on_hover_cursor(CursorIcon::PointingHand)
            .on_hover_text_at_pointer(text);
    }
    (response.clicked() || response.dragged())
        .then_some(pointer)
        .flatten()
        .map(|p| time_at(p.x, left, right, duration))
}

/// Where a mark starts and its colour: moves are short and faint, the rest full height.
fn mark_style(kind: InputKind, track: Rect) -> (f32, Color32) {
    let full = track.min.y;
    match kind {
        InputKind::Move => (track.center().y, Color32::from_gray(110)),
        InputKind::Button => (full, Color32::from_rgb(0xf0, 0x90, 0x30)),
        InputKind::Key => (full, Color32::from_rgb(0x50, 0x9a, 0xf0)),
        InputKind::Text => (full, Color32::from_rgb(0x50, 0xc0, 0x70)),
        InputKind::Wheel => (full, Color32::from_rgb(0xb0, 0x70, 0xe0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_in_minutes_or_hours() {
        assert_eq!(format_time(0), "0:00.0");
        assert_eq!(format_time(1_099_999), "0:01.0");
        assert_eq!(format_time(65_300_000), "1:05.3");
        assert_eq!(format_time(3_723_400_000), "1:02:03.4");
        assert_eq!(format_time(u64::MAX), "5124095576:01:49.5");
    }

    #[test]
    fn positions_and_times_map_both_ways() {
        let d = 10_000_000;
        assert_eq!(time_at(100.0, 100.0, 600.0, d), 0);
        assert_eq!(time_at(600.0, 100.0, 600.0, d), d);
        assert_eq!(time_at(350.0, 100.0, 600.0, d), 5_000_000);
        assert_eq!(time_at(-50.0, 100.0, 600.0, d), 0, "clamped left");
        assert_eq!(time_at(9e9, 100.0, 600.0, d), d, "clamped right");
        assert_eq!(time_at(f32::NAN, 100.0, 600.0, d), 0);
        assert_eq!(time_at(300.0, 100.0, 100.0, d), 0, "no width");
        assert_eq!(x_of(2_500_000, 100.0, 600.0, d), 225.0);
        assert_eq!(x_of(u64::MAX, 100.0, 600.0, d), 600.0);
        assert_eq!(x_of(7, 100.0, 600.0, 0), 100.0, "an empty recording");
    }

    #[test]
    fn steps_stay_within_the_recording() {
        assert_eq!(step(3_000_000, -5_000_000, 10_000_000), 0);
        assert_eq!(step(3_000_000, 5_000_000, 10_000_000), 8_000_000);
        assert_eq!(step(8_000_000, 5_000_000, 10_000_000), 10_000_000);
        assert_eq!(step(u64::MAX, i64::MAX, u64::MAX), u64::MAX);
    }
}
