//! The header above the picture: whose session this is (operator, organisation, session id,
//! when it started, through which relay) and whether the recording is complete, with why an
//! incomplete one stops where it does.

use super::input_track::printable;
use eframe::egui::{self, Color32, RichText};
use sightline_recording::{MetaInfo, Recording};

/// How many characters of each name the header shows (the file says what they are).
const NAME_CHARS: usize = 64;

/// Colour of the "incomplete" badge.
const AMBER: Color32 = Color32::from_rgb(0x8a, 0x5a, 0x00);

/// `started_unix_us` as `YYYY-MM-DD HH:MM:SS UTC` (or the raw number if out of range).
pub fn format_started(unix_us: u64) -> String {
    let secs = i64::try_from(unix_us / 1_000_000).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{unix_us} µs after 1970"),
    }
}

/// The operator as shown: the display name and the account.
pub fn operator_text(meta: &MetaInfo) -> String {
    let operator = printable(&meta.operator, NAME_CHARS);
    if meta.display_name.is_empty() || meta.display_name == meta.operator {
        operator
    } else {
        format!("{} ({operator})", printable(&meta.display_name, NAME_CHARS))
    }
}

/// The details line: organisation, session, start, relay.
pub fn details_text(meta: &MetaInfo) -> String {
    format!(
        "{} · session {} · started {} · relay {}",
        printable(&meta.organisation, NAME_CHARS),
        hex::encode(meta.session_id),
        format_started(meta.started_unix_us),
        printable(&meta.relay, NAME_CHARS)
    )
}

/// Draws the header.
pub fn show(ui: &mut egui::Ui, rec: &Recording) {
    ui.horizontal(|ui| {
        ui.label(RichText::new("Recording").strong());
        ui.label(RichText::new(operator_text(&rec.meta)).strong());
        ui.separator();
        ui.label(details_text(&rec.meta));
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if rec.complete {
                ui.label(RichText::new("complete").color(Color32::from_rgb(0x40, 0xc0, 0x60)))
                    .on_hover_text("The recording was finished: its index and end are present.");
            } else {
                let why = rec
                    .stopped
                    .clone()
                    .unwrap_or_else(|| "the recording was not finished".into());
                incomplete_badge(ui).on_hover_text(format!(
                    "The viewer that recorded it stopped before finishing the file; it plays up to where it ends ({why})."
                ));
            }
            if !rec.meta.include_input {
                ui.label(RichText::new("input not recorded").weak());
            }
        });
    });
}

fn incomplete_badge(ui: &mut egui::Ui) -> egui::Response {
    egui::Frame::new()
        .fill(AMBER)
        .corner_radius(4.0)
        .inner_margin(egui::Margin::symmetric(6, 2))
        .show(ui, |ui| {
            ui.label(RichText::new("incomplete").strong().color(Color32::WHITE));
        })
        .response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_are_utc() {
        assert_eq!(format_started(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            format_started(1_800_000_000_123_456),
            "2027-01-15 08:00:00 UTC"
        );
        assert!(format_started(u64::MAX).contains("µs after 1970"));
    }

    #[test]
    fn names_from_the_file_are_one_short_line() {
        let meta = MetaInfo {
            format: 1,
            session_id: [0xab; 16],
            operator: "alice".into(),
            display_name: "Alice\nExample".into(),
            organisation: "x".repeat(100),
            relay: "relay:7615".into(),
            agent_key_spki: Vec::new(),
            agent_fingerprint: sightline_core::identity::Fingerprint::of_spki_der(&[]),
            started_unix_us: 0,
            include_input: true,
            software: String::new(),
        };
        assert_eq!(operator_text(&meta), "Alice\\nExample (alice)");
        let details = details_text(&meta);
        assert!(
            details.starts_with(&format!("{}… · session abab", "x".repeat(64))),
            "{details}"
        );
        assert!(
            details.ends_with("started 1970-01-01 00:00:00 UTC · relay relay:7615"),
            "{details}"
        );
    }
}
