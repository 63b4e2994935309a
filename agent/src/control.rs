//! Operator input on the customer's machine: an injector thread fed by a small queue, used only
//! while control is granted.
//!
//! Taking control back must be immediate whatever the operator sent before, so:
//! - The queue is bounded by events ([`MAX_QUEUED_EVENTS`]), by characters of text
//!   ([`MAX_QUEUED_CHARS`]) and by age ([`MAX_QUEUE_AGE`]): input that would wait longer is
//!   dropped, never typed late. Releases of keys and buttons are never dropped (a lost release
//!   would leave a key held and repeating).
//! - [`Control::revoke`] never waits: it raises the stop flag and empties the queue under the
//!   queue's lock, so nothing queued is injected afterwards. The thread checks the flag before
//!   every event and between the characters of a text, so at most one key or character that
//!   was already being injected completes. Then it releases every key and button the operator
//!   held and reports how long after the revoke the last event went in ([`Released`]).
//! - Keystrokes are paced ([`MAX_KEYSTROKES_PER_SEC`]), so the customer's applications are not
//!   buried under more than they can read: input already inside an application's queue when
//!   control ends cannot be called back.

use crate::capture::Monitor;
use crate::input::Injector;
use sightline_core::messages::InputEvent;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Most events waiting for the injector.
pub const MAX_QUEUED_EVENTS: usize = 256;
/// Most characters of `Text` waiting for the injector, over all queued events.
pub const MAX_QUEUED_CHARS: usize = 2048;
/// Input that waited longer than this is dropped instead of injected late.
pub const MAX_QUEUE_AGE: Duration = Duration::from_millis(500);
/// Keystrokes (key presses, characters of text) injected per second at most, after a burst of
/// [`KEYSTROKE_BURST`]. Far above typing speed, yet it keeps the customer's applications from
/// falling behind a flood: what an application has not read yet when control is taken back
/// still arrives, so the less is on its way, the less arrives after the customer's key.
pub const MAX_KEYSTROKES_PER_SEC: f64 = 200.0;
/// Keystrokes that may go in at once before the pace applies.
pub const KEYSTROKE_BURST: f64 = 20.0;

/// What became of an event handed to [`Control::inject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// It waits for the injector.
    Yes,
    /// Dropped: the queue holds too many events or too much text.
    Full,
    /// Dropped: control has ended.
    Stopped,
}

/// The injector's report once it has stopped and released what the operator held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// How long after the stop the last event was injected (`None`: nothing went in after it).
    pub last_event_after_stop: Option<Duration>,
    /// Events that were queued at the stop and never injected.
    pub discarded: usize,
    /// Events dropped over the whole grant because the queue was full or they were too old.
    pub dropped: usize,
}

/// A running injector; see the module documentation. Dropping it stops injection at once
/// (held keys are released on the injector's thread, without waiting for it).
#[derive(Debug)]
pub struct Control {
    shared: Arc<Shared>,
    released: Option<Receiver<Released>>,
}

/// Errors starting input injection.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The injector could not be created.
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// The thread could not be started.
    #[error("cannot start the input thread: {0}")]
    Thread(std::io::Error),
}

/// What the session side and the injector thread share.
#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Set by a revoke; read between events and between the characters of a text.
    stop: AtomicBool,
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<(Instant, InputEvent)>,
    /// Characters of text in `events`.
    chars: usize,
    /// When the stop came, and how many events it discarded.
    stopped: Option<(Instant, usize)>,
    /// Events dropped (full queue, too old).
    dropped: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Raises the stop flag and empties the queue, atomically with respect to the injector
    /// taking its next event.
    fn stop_now(&self) {
        let mut q = self.lock();
        if q.stopped.is_none() {
            self.stop.store(true, Ordering::SeqCst);
            let discarded = q.events.len();
            q.events.clear();
            q.chars = 0;
            q.stopped = Some((Instant::now(), discarded));
        }
        drop(q);
        self.wake.notify_all();
    }
}

/// Characters of text an event carries.
fn text_chars(ev: &InputEvent) -> usize {
    match ev {
        InputEvent::Text { text } => text.chars().count(),
        _ => 0,
    }
}

/// Releases only take away: they are never dropped for lack of room or time.
fn is_release(ev: &InputEvent) -> bool {
    matches!(
        ev,
        InputEvent::Key { pressed: false, .. } | InputEvent::Button { pressed: false, .. }
    )
}

impl Control {
    /// Starts injecting on `monitor`.
    pub fn start(monitor: Monitor) -> Result<Self, ControlError> {
        let shared = Arc::new(Shared::default());
        let (ready_tx, ready_rx) = sync_channel(1);
        let (released_tx, released) = sync_channel(1);
        let worker = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("input".into())
            .spawn(move || {
                // enigo's connection stays on this thread.
                let injector = match Injector::new(&monitor) {
                    Ok(i) => {
                        let _ = ready_tx.send(Ok(()));
                        i
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = released_tx.send(run(injector, &worker));
            })
            .map_err(ControlError::Thread)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                shared,
                released: Some(released),
            }),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(ControlError::Thread(std::io::Error::other(
                "input thread ended",
            ))),
        }
    }

    /// Queues an event for the injector without waiting.
    pub fn inject(&self, ev: InputEvent) -> Queued {
        let mut q = self.shared.lock();
        if q.stopped.is_some() {
            return Queued::Stopped;
        }
        let chars = text_chars(&ev);
        let room = q.events.len() < MAX_QUEUED_EVENTS && q.chars + chars <= MAX_QUEUED_CHARS;
        if !room && !is_release(&ev) {
            q.dropped += 1;
            return Queued::Full;
        }
        q.chars += chars;
        q.events.push_back((Instant::now(), ev));
        drop(q);
        self.shared.wake.notify_one();
        Queued::Yes
    }

    /// Ends control at once and never waits: nothing queued is injected after this returns,
    /// and at most the one key or character being injected right now completes. The returned
    /// [`Stopping`] tells when the operator's held keys and buttons have been released.
    pub fn revoke(mut self) -> Stopping {
        self.shared.stop_now();
        Stopping {
            released: self.released.take(),
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.shared.stop_now();
    }
}

/// A revoked injector finishing: releasing held keys and buttons on its thread.
#[derive(Debug)]
pub struct Stopping {
    released: Option<Receiver<Released>>,
}

impl Stopping {
    /// Waits up to `timeout` for the injector to finish; its report, or `None` if it did not
    /// finish in time (a hung display) or already reported.
    pub fn wait(mut self, timeout: Duration) -> Option<Released> {
        self.released.take()?.recv_timeout(timeout).ok()
    }
}

/// A token bucket for keystrokes.
#[derive(Debug)]
struct Pacer {
    tokens: f64,
    last: Instant,
}

impl Pacer {
    fn new() -> Self {
        Self {
            tokens: KEYSTROKE_BURST,
            last: Instant::now(),
        }
    }

    /// Waits for the next keystroke's turn; `true` when control was stopped meanwhile.
    fn wait(&mut self, shared: &Shared) -> bool {
        loop {
            if shared.stopped() {
                return true;
            }
            let now = Instant::now();
            let earned = now.duration_since(self.last).as_secs_f64() * MAX_KEYSTROKES_PER_SEC;
            self.tokens = (self.tokens + earned).min(KEYSTROKE_BURST);
            self.last = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return false;
            }
            let wait = Duration::from_secs_f64((1.0 - self.tokens) / MAX_KEYSTROKES_PER_SEC);
            // Woken early by a stop.
            let q = shared.lock();
            if shared.stopped() {
                return true;
            }
            let _ = shared.wake.wait_timeout(q, wait);
        }
    }
}

/// The injector thread: takes events until the stop, then releases what the operator holds.
fn run(mut injector: Injector, shared: &Shared) -> Released {
    let mut last_injected: Option<Instant> = None;
    let mut pacer = Pacer::new();
    while let Some(ev) = next_event(shared) {
        let mut keystroke = || pacer.wait(shared);
        match injector.apply_until(&ev, &mut keystroke) {
            Ok(()) => last_injected = Some(Instant::now()),
            Err(crate::input::InputError::Stopped) => {
                last_injected = Some(Instant::now());
                break;
            }
            Err(e) => tracing::warn!(error = %e, "input event dropped"),
        }
    }
    if let Err(e) = injector.release_all() {
        tracing::warn!(error = %e, "releasing held keys failed");
    }
    let q = shared.lock();
    let (stopped_at, discarded) = q.stopped.unwrap_or((Instant::now(), 0));
    Released {
        last_event_after_stop: last_injected.and_then(|t| t.checked_duration_since(stopped_at)),
        discarded,
        dropped: q.dropped,
    }
}

/// The next event to inject, waiting for one; `None` once stopped. Events older than
/// [`MAX_QUEUE_AGE`] are dropped here (releases excepted).
fn next_event(shared: &Shared) -> Option<InputEvent> {
    let mut q = shared.lock();
    loop {
        if shared.stopped() {
            return None;
        }
        while let Some((at, ev)) = q.events.pop_front() {
            q.chars -= text_chars(&ev);
            if at.elapsed() <= MAX_QUEUE_AGE || is_release(&ev) {
                return Some(ev);
            }
            q.dropped += 1;
        }
        q = shared.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> InputEvent {
        InputEvent::Text {
            text: "x".repeat(n),
        }
    }

    fn control_without_thread() -> Control {
        let (_tx, rx) = sync_channel(1);
        Control {
            shared: Arc::new(Shared::default()),
            released: Some(rx),
        }
    }

    #[test]
    fn the_queue_is_bounded_by_events_and_characters_but_keeps_releases() {
        let c = control_without_thread();
        assert_eq!(c.inject(text(MAX_QUEUED_CHARS)), Queued::Yes);
        assert_eq!(c.inject(text(1)), Queued::Full, "no room for more text");
        for _ in 1..MAX_QUEUED_EVENTS {
            let ev = InputEvent::PointerMove { x: 0.5, y: 0.5 };
            assert_eq!(c.inject(ev), Queued::Yes);
        }
        let press = InputEvent::Key {
            key: "KeyA".into(),
            pressed: true,
        };
        assert_eq!(c.inject(press), Queued::Full, "no room for more events");
        let release = InputEvent::Key {
            key: "ShiftLeft".into(),
            pressed: false,
        };
        assert_eq!(c.inject(release), Queued::Yes, "a release always goes in");
        assert_eq!(c.shared.lock().dropped, 2);
    }

    #[test]
    fn a_revoke_discards_the_queue_at_once_and_refuses_more() {
        let c = control_without_thread();
        let shared = Arc::clone(&c.shared);
        for _ in 0..10 {
            c.inject(text(100));
        }
        let _stopping = c.revoke();
        let q = shared.lock();
        assert!(q.events.is_empty());
        assert_eq!(q.chars, 0);
        assert_eq!(q.stopped.map(|(_, n)| n), Some(10));
        drop(q);
        assert!(
            next_event(&shared).is_none(),
            "the injector gets nothing more"
        );
    }

    #[test]
    fn keystrokes_come_in_a_burst_then_paced_and_a_stop_ends_the_wait() {
        let shared = Shared::default();
        let mut pacer = Pacer::new();
        for _ in 0..KEYSTROKE_BURST as usize {
            assert!(!pacer.wait(&shared));
        }
        assert!(pacer.tokens < 1.0, "the burst is spent");
        shared.stop_now();
        assert!(pacer.wait(&shared), "a stop ends the wait at once");
    }

    #[test]
    fn old_input_is_dropped_not_typed_late() {
        let shared = Shared::default();
        let stale = Instant::now() - MAX_QUEUE_AGE - Duration::from_millis(10);
        {
            let mut q = shared.lock();
            q.events.push_back((stale, text(5)));
            q.chars = 5;
            let release = InputEvent::Button {
                button: sightline_core::messages::MouseButton::Left,
                pressed: false,
            };
            q.events.push_back((stale, release.clone()));
            q.events.push_back((Instant::now(), text(1)));
            q.chars += 1;
        }
        assert!(matches!(
            next_event(&shared),
            Some(InputEvent::Button { pressed: false, .. })
        ));
        assert_eq!(next_event(&shared), Some(text(1)));
        let q = shared.lock();
        assert_eq!((q.dropped, q.chars), (1, 0));
    }
}
