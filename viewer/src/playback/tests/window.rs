//! The playback window without a display: what it writes (header, time, controls, the input
//! overlay, the end note) and what Space and the arrows do, over a real playback thread.

use super::sample::sample;
use super::{open, paused_at, play, status_where};
use crate::playback::app::PlaybackApp;
use eframe::egui;
use std::time::Instant;

/// Every text one pass draws, after `events`.
fn drawn_text(ctx: &egui::Context, app: &mut PlaybackApp, events: Vec<egui::Event>) -> String {
    let mut text = String::new();
    // Two passes: the first one only sizes things.
    for events in [events, Vec::new()] {
        let input = egui::RawInput {
            events,
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::vec2(1280.0, 800.0),
            )),
            ..Default::default()
        };
        let mut out = ctx.run_ui(input, |ui| app.pass(ui));
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

fn key(key: egui::Key) -> Vec<egui::Event> {
    vec![egui::Event::Key {
        key,
        physical_key: None,
        pressed: true,
        repeat: false,
        modifiers: egui::Modifiers::NONE,
    }]
}

#[test]
fn the_window_shows_the_session_and_obeys_the_keys() {
    let rec = open(sample());
    let (thread, mailbox) = play(rec.clone(), paused_at(1_000_000));
    status_where(&mailbox, |s| s.pointer.is_some());
    let mut app = PlaybackApp::new(rec, thread, mailbox.clone(), false);
    let ctx = egui::Context::default();

    let text = drawn_text(&ctx, &mut app, Vec::new());
    for expected in [
        "Alice Example (alice)",
        "Example Support · session 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a · started 2027-01-15 08:00:00 UTC · relay relay.example.com:7615",
        "complete",
        "0:01.0 / 0:09.9",
        "Play",
        "0.5×",
        "8×",
        // The key pressed at 0.5 s.
        "operator: key KeyA ↓",
    ] {
        assert!(text.contains(expected), "{expected:?} is not in:\n{text}");
    }

    // Space plays, Right seeks 5 s on.
    drawn_text(&ctx, &mut app, key(egui::Key::Space));
    status_where(&mailbox, |s| s.clock.running());
    assert!(drawn_text(&ctx, &mut app, Vec::new()).contains("Pause"));
    drawn_text(&ctx, &mut app, key(egui::Key::Space));
    let paused = status_where(&mailbox, |s| !s.clock.running());
    let before = paused.clock.position(Instant::now());
    drawn_text(&ctx, &mut app, key(egui::Key::ArrowRight));
    status_where(&mailbox, |s| {
        s.clock.position(Instant::now()) == before + 5_000_000
    });
    drawn_text(&ctx, &mut app, key(egui::Key::ArrowLeft));
    status_where(&mailbox, |s| s.clock.position(Instant::now()) == before);

    // Past the end: stopped there, and the window says why the session ended.
    drawn_text(&ctx, &mut app, key(egui::Key::ArrowRight));
    status_where(&mailbox, |s| {
        s.clock.position(Instant::now()) == before + 5_000_000
    });
    drawn_text(&ctx, &mut app, key(egui::Key::ArrowRight));
    status_where(&mailbox, |s| s.ended);
    let text = drawn_text(&ctx, &mut app, Vec::new());
    assert!(text.contains("0:09.9 / 0:09.9"), "{text}");
    assert!(
        text.contains("End of the recording (the operator ended the session)"),
        "{text}"
    );
}
