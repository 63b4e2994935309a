//! What the playback thread leaves for the window: the newest decoded picture in a one-slot
//! mailbox (taking it empties the slot; a newer one replaces one not yet taken, so the window
//! never draws or queues stale pictures) and the playback status (clock, pointer, end), read
//! as a copy. Both behind short locks that never wait on decoding.

use super::clock::PlayClock;
use sightline_core::messages::CursorShape;
use sightline_media::Yuv420Frame;
use std::sync::{Arc, Mutex, PoisonError};

/// A picture for the window.
#[derive(Debug, Clone)]
pub struct Shown {
    /// Its time in the recording, microseconds since the recording started.
    pub at_us: u64,
    /// The picture.
    pub picture: Arc<Yuv420Frame>,
    /// Which start or seek it belongs to (counts up from 1): the window reports the first
    /// picture of each one (`--json` `frame`), even when later ones replaced it in the slot.
    pub seek: u64,
}

/// The recorded remote pointer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pointer {
    /// Horizontal position, 0..=1.
    pub x: f32,
    /// Vertical position, 0..=1.
    pub y: f32,
    /// Whether it was on the shared screen.
    pub visible: bool,
}

/// Where playback stands.
#[derive(Debug, Clone)]
pub struct Status {
    /// The playback clock (the timeline's position, running or not, the speed).
    pub clock: PlayClock,
    /// Playback reached the end of what can be read.
    pub ended: bool,
    /// Why playback stopped before the end of the recording (a damaged part), if it did.
    pub problem: Option<String>,
    /// The session's end reason, once playback has passed the End record.
    pub end_reason: Option<String>,
    /// The recorded pointer, when known at this point of the recording.
    pub pointer: Option<Pointer>,
    /// The latest pointer shape and a number that changes with it.
    pub shape: Option<(u64, Arc<CursorShape>)>,
}

/// The slot and the status, shared by the playback thread and the window.
pub struct Mailbox {
    frame: Mutex<Option<Shown>>,
    status: Mutex<Status>,
    /// Called after each change (the window asks for a repaint).
    notify: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox").finish_non_exhaustive()
    }
}

impl Mailbox {
    /// An empty slot and `status`; `notify` is called after each change.
    pub fn new(status: Status, notify: Box<dyn Fn() + Send + Sync>) -> Self {
        Self {
            frame: Mutex::new(None),
            status: Mutex::new(status),
            notify,
        }
    }

    /// Leaves a picture, replacing one not yet taken.
    pub fn put_frame(&self, shown: Shown) {
        // A poisoned lock only means the other side panicked; the slot itself is whole.
        *self.frame.lock().unwrap_or_else(PoisonError::into_inner) = Some(shown);
        (self.notify)();
    }

    /// Takes the newest picture not yet taken.
    pub fn take_frame(&self) -> Option<Shown> {
        self.frame
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Replaces the status.
    pub fn set_status(&self, status: Status) {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = status;
        (self.notify)();
    }

    /// A copy of the status.
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
