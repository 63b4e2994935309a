//! The playback window's eframe glue: reads the mailbox, draws the header, the picture and
//! the controls, and turns buttons and keys (Space, Left, Right) into commands for the
//! playback thread. It decodes and reads nothing itself.

use super::clock::Speed;
use super::engine::{Command, PlaybackThread};
use super::header;
use super::input_track;
use super::mailbox::{Mailbox, Status};
use super::timeline::{self, format_time, Marks, TrackMarks};
use super::view::{PictureView, Scene};
use eframe::egui::{self, Key, Modifiers, RichText};
use sightline_recording::Recording;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How far Left and Right move, in microseconds.
const STEP_US: i64 = 5_000_000;
/// Repaint interval while playing, for the timeline between pictures.
const TICK: Duration = Duration::from_millis(40);
/// Commands kept while the thread's queue is full (seeks replace seeks).
const BACKLOG: usize = 64;

/// The playback window.
#[derive(Debug)]
pub struct PlaybackApp {
    rec: Arc<Recording>,
    thread: PlaybackThread,
    mailbox: Arc<Mailbox>,
    /// Commands not yet taken by the thread's queue.
    backlog: VecDeque<Command>,
    keyframes: Vec<u64>,
    track_marks: TrackMarks,
    view: PictureView,
    json: bool,
    /// The seek whose first picture was handed to the GPU in the last pass (and its time),
    /// reported once that pass is on screen.
    drawn: Option<(u64, u64)>,
    /// The last seek whose first picture was reported.
    reported: u64,
    /// Where the timeline is being dragged to (shown before the thread gets there).
    dragging: Option<u64>,
}

impl PlaybackApp {
    /// The window over a running playback thread.
    pub fn new(
        rec: Arc<Recording>,
        thread: PlaybackThread,
        mailbox: Arc<Mailbox>,
        json: bool,
    ) -> Self {
        let keyframes = rec.keyframes.iter().map(|k| k.at_us).collect();
        Self {
            rec,
            thread,
            mailbox,
            backlog: VecDeque::new(),
            keyframes,
            track_marks: TrackMarks::default(),
            view: PictureView::default(),
            json,
            drawn: None,
            reported: 0,
            dragging: None,
        }
    }

    /// Queues a command; a full queue keeps it for the next pass.
    fn send(&mut self, cmd: Command) {
        if let (Command::Seek(_), Some(Command::Seek(_))) = (cmd, self.backlog.back()) {
            self.backlog.pop_back();
        }
        if self.backlog.len() < BACKLOG {
            self.backlog.push_back(cmd);
        }
        while let Some(cmd) = self.backlog.pop_front() {
            if let Err(cmd) = self.thread.send(cmd) {
                self.backlog.push_front(cmd);
                break;
            }
        }
    }

    /// Space and the arrows, taken before egui's widgets see them.
    fn keys(&mut self, ctx: &egui::Context, status: &Status, position: u64) -> Vec<Command> {
        let mut commands = Vec::new();
        let consume = |key| ctx.input_mut(|i| i.consume_key(Modifiers::NONE, key));
        if consume(Key::Space) {
            commands.push(toggle(status));
        }
        let duration = self.rec.duration_us;
        if consume(Key::ArrowLeft) {
            commands.push(Command::Seek(timeline::step(position, -STEP_US, duration)));
        }
        if consume(Key::ArrowRight) {
            commands.push(Command::Seek(timeline::step(position, STEP_US, duration)));
        }
        commands
    }

    /// The control row and the timeline.
    fn controls(&mut self, ui: &mut egui::Ui, status: &Status, position: u64) -> Vec<Command> {
        let mut commands = Vec::new();
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            // Words, not ▶ and ⏸: egui's built-in fonts have no glyphs for them.
            let label = if status.clock.running() {
                "Pause"
            } else {
                "Play"
            };
            if ui.button(label).on_hover_text("Space").clicked() {
                commands.push(toggle(status));
            }
            let time = format!(
                "{} / {}",
                format_time(position),
                format_time(self.rec.duration_us)
            );
            ui.label(RichText::new(time).monospace());
            ui.separator();
            ui.label("Speed");
            for speed in Speed::ALL {
                let selected = status.clock.speed() == speed;
                if ui.selectable_label(selected, speed.label()).clicked() && !selected {
                    commands.push(Command::Speed(speed));
                }
            }
            ui.separator();
            ui.label(RichText::new("Left/Right: -5 s / +5 s").weak());
            if let Some(note) = end_note(status) {
                ui.separator();
                ui.label(note);
            }
        });
        let marks = Marks {
            position: self.dragging.unwrap_or(position),
            duration_us: self.rec.duration_us,
            keyframes: &self.keyframes,
            inputs: &self.rec.inputs,
        };
        match timeline::show(ui, marks, &mut self.track_marks) {
            Some(at) => {
                if self.dragging != Some(at) {
                    commands.push(Command::Seek(at));
                }
                self.dragging = Some(at);
            }
            None => self.dragging = None,
        }
        ui.add_space(4.0);
        commands
    }
}

/// Play when stopped, pause when playing.
fn toggle(status: &Status) -> Command {
    if status.clock.running() {
        Command::Pause
    } else {
        Command::Play
    }
}

/// What the control row says once playback has stopped at the end.
fn end_note(status: &Status) -> Option<RichText> {
    if let Some(why) = &status.problem {
        return Some(
            RichText::new(format!("The recording ends here: {why}"))
                .color(egui::Color32::from_rgb(0xe0, 0x90, 0x30)),
        );
    }
    if !status.ended {
        return None;
    }
    Some(match &status.end_reason {
        Some(reason) => RichText::new(format!(
            "End of the recording ({})",
            input_track::printable(reason, 120)
        ))
        .weak(),
        None => RichText::new("End of the recording").weak(),
    })
}

impl PlaybackApp {
    /// Prints `frame` for a first picture handed to the GPU in the last pass, which is on
    /// screen now.
    fn report_drawn(&mut self) {
        if let Some((seek, at_us)) = self.drawn.take() {
            self.reported = seek;
            if self.json {
                super::print_json(&serde_json::json!({"event": "frame", "at_us": at_us}));
            }
        }
    }

    /// One pass: the mailbox read, everything drawn, the commands sent.
    fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        let status = self.mailbox.status();
        let position = status
            .clock
            .position(Instant::now())
            .min(self.rec.duration_us);
        let mut commands = self.keys(&ctx, &status, position);
        let shown = self.mailbox.take_frame();
        if let Some(s) = &shown {
            if s.seek > self.reported {
                self.drawn = Some((s.seek, s.at_us));
                // One more pass, after this one is on screen, to report it.
                ctx.request_repaint();
            }
        }
        egui::Panel::top("playback-header").show(ui, |ui| header::show(ui, &self.rec));
        egui::Panel::bottom("playback-controls").show(ui, |ui| {
            commands.extend(self.controls(ui, &status, position));
        });
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE.fill(egui::Color32::from_gray(16)))
            .show(ui, |ui| {
                self.view.show(
                    ui,
                    Scene {
                        upload: shown.map(|s| s.picture),
                        status: &status,
                        position: self.dragging.unwrap_or(position),
                        inputs: &self.rec.inputs,
                    },
                )
            });
        for cmd in commands {
            self.send(cmd);
        }
        if status.clock.running() || !self.backlog.is_empty() {
            ctx.request_repaint_after(TICK);
        }
    }
}

impl eframe::App for PlaybackApp {
    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.report_drawn();
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

#[cfg(test)]
impl PlaybackApp {
    /// One pass as eframe runs it, for tests without a window.
    pub(super) fn pass(&mut self, ui: &mut egui::Ui) {
        self.report_drawn();
        self.show(ui);
    }
}
