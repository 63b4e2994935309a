//! `viewer play FILE --identity KEYFILE`: a session recording in the viewer's window. The
//! recorded screen is decoded (dav1d) and paced on a playback thread and drawn with the live
//! session's GPU path; the recorded pointer, the operator's input (a row of marks under the
//! timeline, the latest event over the picture) and the session's metadata are shown with it.
//! Play and pause (Space), five speeds, and seeking (click or drag on the timeline, Left and
//! Right by 5 s) start decoding at the keyframe at or before the target.
//!
//! Layout: [`engine`] (the thread: commands in, pictures out), [`pictures`] (packets to
//! dav1d), [`clock`] (pacing arithmetic), [`mailbox`] (what the thread leaves for the window),
//! [`app`] (the eframe glue), [`header`], [`timeline`], [`view`] (what is drawn),
//! [`input_track`] (describing the operator's input).
//!
//! The recording is opened before the window: a wrong key, a file that is not a recording or
//! one damaged at its start is an error on stderr (and `{"event":"error"}` with `--json`),
//! with no window. A damaged or truncated part later on stops playback there, with the reason
//! under the timeline.

mod app;
pub mod clock;
pub mod engine;
mod header;
pub mod input_track;
pub mod mailbox;
mod pictures;
pub mod timeline;
mod view;

#[cfg(test)]
mod tests;

use crate::gui::video;
use clock::{PlayClock, Speed};
use engine::{PlaybackThread, Start};
use mailbox::{Mailbox, Status};
use sightline_recording::{Recording, RecordingError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// What `viewer play` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// The recording.
    pub file: PathBuf,
    /// The auditor's age identity file.
    pub identity: PathBuf,
    /// Where to start, in seconds (`--seek`).
    pub seek_secs: Option<f64>,
    /// Start paused (`--paused`).
    pub paused: bool,
    /// JSON lines on stdout (`--json`).
    pub json: bool,
}

/// Why the recording could not be played.
#[derive(Debug, thiserror::Error)]
pub enum PlaybackError {
    /// `--seek` is not a time.
    #[error("--seek: {0} is not a number of seconds at or after 0")]
    BadSeek(f64),
    /// The identity file or the recording could not be opened.
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// The playback thread or the decoder could not start.
    #[error("cannot start playback: {0}")]
    Thread(std::io::Error),
    /// The window could not run.
    #[error(transparent)]
    Window(#[from] crate::gui::GuiError),
}

/// Opens the recording and plays it in a window until the window is closed.
pub fn run(opts: Options) -> Result<(), PlaybackError> {
    let result = open_and_play(&opts);
    if let Err(e) = &result {
        if opts.json {
            print_json(&serde_json::json!({"event": "error", "message": e.to_string()}));
        }
    }
    result
}

fn open_and_play(opts: &Options) -> Result<(), PlaybackError> {
    let start_us = start_us(opts.seek_secs)?;
    let identities = sightline_recording::parse_identity_file(&opts.identity)?;
    let rec = Arc::new(Recording::open(&opts.file, &identities)?);
    if opts.json {
        let (width, height) = rec.size.unwrap_or((0, 0));
        print_json(&serde_json::json!({
            "event": "playback",
            "duration_us": rec.duration_us,
            "width": width,
            "height": height,
            "complete": rec.complete,
            "keyframes": rec.keyframes.len(),
            "inputs": rec.inputs.len(),
        }));
    }
    let start = Start {
        at_us: start_us.min(rec.duration_us),
        playing: !opts.paused,
        speed: Speed::Normal,
    };
    let title = format!(
        "Sightline playback: {}",
        opts.file.file_name().unwrap_or_default().to_string_lossy()
    );
    window(&title, rec, start, opts.json)
}

/// `--seek` in microseconds.
fn start_us(seek_secs: Option<f64>) -> Result<u64, PlaybackError> {
    match seek_secs {
        None => Ok(0),
        Some(s) if s.is_finite() && s >= 0.0 => Ok((s * 1e6).round() as u64),
        Some(s) => Err(PlaybackError::BadSeek(s)),
    }
}

/// Runs the window; the playback thread starts once the window can draw (its repaint
/// requests go to the window).
fn window(title: &str, rec: Arc<Recording>, start: Start, json: bool) -> Result<(), PlaybackError> {
    let native = crate::gui::native_options(title);
    let mut start_error = None;
    let outcome = eframe::run_native(
        title,
        native,
        Box::new(|cc| {
            let render = cc
                .wgpu_render_state
                .as_ref()
                .ok_or(crate::gui::GuiError::NoWgpu)?;
            let resources = video::VideoResources::new(&render.device, render.target_format);
            render.renderer.write().callback_resources.insert(resources);
            let ctx = cc.egui_ctx.clone();
            let status = Status {
                clock: PlayClock::stopped(start.at_us, start.speed, Instant::now()),
                ended: false,
                problem: None,
                end_reason: None,
                pointer: None,
                shape: None,
            };
            let mailbox = Arc::new(Mailbox::new(
                status,
                Box::new(move || ctx.request_repaint()),
            ));
            match PlaybackThread::spawn(rec.clone(), start, mailbox.clone()) {
                Ok(thread) => Ok(Box::new(app::PlaybackApp::new(rec, thread, mailbox, json))),
                Err(e) => {
                    let message = e.to_string();
                    start_error = Some(e);
                    Err(message.into())
                }
            }
        }),
    );
    if let Some(e) = start_error {
        return Err(PlaybackError::Thread(e));
    }
    outcome
        .map_err(|e| crate::gui::GuiError::Window(e.to_string()))
        .map_err(PlaybackError::from)
}

/// One JSON line on stdout (`--json`); a closed stdout is ignored.
pub(crate) fn print_json(v: &serde_json::Value) {
    sightline_net::cli::Output::new(true).event(v.clone(), String::new);
}
