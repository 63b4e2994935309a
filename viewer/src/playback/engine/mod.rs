//! The playback thread: reads the recording, decodes, and paces. It takes [`Command`]s on a
//! bounded channel and leaves the newest picture and the status in the [`Mailbox`]; the
//! window only draws what it finds there.
//!
//! A seek starts decoding at the keyframe at or before the target and decodes forward to the
//! target without pacing, so the picture at the target is shown at once; commands are read
//! between packets, so a newer seek (a drag along the timeline) abandons an older one. Playing
//! then shows each record when the [`PlayClock`] reaches its time.

mod records;
mod seek;

use super::clock::{PlayClock, Speed};
use super::mailbox::{Mailbox, Pointer, Shown, Status};
use super::pictures::Pictures;
use sightline_core::messages::CursorShape;
use sightline_media::Yuv420Frame;
use sightline_recording::{Item, Items, Recording};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Commands queued for the thread; more than this and the window keeps them for later.
const QUEUE: usize = 32;

/// How late a picture may be before the clock waits for the decoder (see
/// [`PlayClock::catch_up`]).
const LATE: Duration = Duration::from_millis(250);

/// What the window asks of the playback thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Play from where it is (from the beginning after the end).
    Play,
    /// Stop where it is.
    Pause,
    /// Show the picture at this time (microseconds since the recording started).
    Seek(u64),
    /// Play at this speed.
    Speed(Speed),
    /// End the thread.
    Quit,
}

/// Where and how playback starts.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    /// Recording time to start at.
    pub at_us: u64,
    /// Whether to play at once.
    pub playing: bool,
    /// The speed.
    pub speed: Speed,
}

/// The thread's handle. Dropping it asks the thread to end and never waits for it.
#[derive(Debug)]
pub struct PlaybackThread {
    commands: SyncSender<Command>,
    _thread: JoinHandle<()>,
}

impl PlaybackThread {
    /// Starts playback of `rec`, reporting into `mailbox`.
    pub fn spawn(
        rec: Arc<Recording>,
        start: Start,
        mailbox: Arc<Mailbox>,
    ) -> std::io::Result<PlaybackThread> {
        let pictures = Pictures::new().map_err(std::io::Error::other)?;
        let (commands, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("playback".into())
            .spawn(move || Engine::new(rec, rx, mailbox, pictures, start).run(start.at_us))?;
        Ok(PlaybackThread {
            commands,
            _thread: thread,
        })
    }

    /// Queues a command without waiting; gives it back when the queue is full (or the thread
    /// has ended).
    pub fn send(&self, cmd: Command) -> Result<(), Command> {
        self.commands.try_send(cmd).map_err(|e| match e {
            std::sync::mpsc::TrySendError::Full(c)
            | std::sync::mpsc::TrySendError::Disconnected(c) => c,
        })
    }
}

impl Drop for PlaybackThread {
    fn drop(&mut self) {
        // A full queue still ends the thread: dropping the sender disconnects it once the
        // queued commands are read.
        let _ = self.commands.try_send(Command::Quit);
    }
}

/// Whether the thread goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

struct Engine {
    rec: Arc<Recording>,
    commands: Receiver<Command>,
    mailbox: Arc<Mailbox>,
    pictures: Pictures,
    stream: Option<Items>,
    /// The next record, read but not yet shown.
    next: Option<(u64, Item)>,
    clock: PlayClock,
    /// Time of the last record taken in.
    last_at: u64,
    /// The last picture decoded since decoding (re)started, and its time.
    picture: Option<(u64, Arc<Yuv420Frame>)>,
    seek: u64,
    ended: bool,
    problem: Option<String>,
    end_reason: Option<String>,
    pointer: Option<Pointer>,
    shape: Option<(u64, Arc<CursorShape>)>,
}

impl Engine {
    fn new(
        rec: Arc<Recording>,
        commands: Receiver<Command>,
        mailbox: Arc<Mailbox>,
        pictures: Pictures,
        start: Start,
    ) -> Self {
        let mut clock = PlayClock::stopped(start.at_us, start.speed, Instant::now());
        if start.playing {
            clock.play(Instant::now());
        }
        Self {
            rec,
            commands,
            mailbox,
            pictures,
            stream: None,
            next: None,
            clock,
            last_at: 0,
            picture: None,
            seek: 0,
            ended: false,
            problem: None,
            end_reason: None,
            pointer: None,
            shape: None,
        }
    }

    fn run(mut self, start_us: u64) {
        if self.seek(start_us) == Flow::Quit {
            return;
        }
        loop {
            let due = match self.clock.running() {
                true => self.peek().and_then(|at| self.clock.due(at)),
                false => None,
            };
            let received = match due {
                None => self.commands.recv().map_err(|_| ()).map(Some),
                Some(due) => {
                    let wait = due.saturating_duration_since(Instant::now());
                    match self.commands.recv_timeout(wait) {
                        Ok(cmd) => Ok(Some(cmd)),
                        Err(RecvTimeoutError::Timeout) => Ok(None),
                        Err(RecvTimeoutError::Disconnected) => Err(()),
                    }
                }
            };
            let flow = match received {
                Err(()) => Flow::Quit,
                Ok(Some(cmd)) => self.command(cmd),
                Ok(None) => {
                    self.play_next();
                    Flow::Continue
                }
            };
            if flow == Flow::Quit {
                return;
            }
        }
    }

    fn command(&mut self, cmd: Command) -> Flow {
        match cmd {
            Command::Quit => return Flow::Quit,
            Command::Seek(at_us) => return self.seek(at_us),
            Command::Play if self.ended => {
                self.clock.play(Instant::now());
                return self.seek(0);
            }
            other => self.control(other),
        }
        self.publish();
        Flow::Continue
    }

    /// Play, pause and speed: only the clock changes.
    fn control(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Play => self.clock.play(now),
            Command::Pause => self.clock.pause(now),
            Command::Speed(speed) => self.clock.set_speed(speed, now),
            Command::Seek(_) | Command::Quit => {}
        }
    }

    /// Shows the next record, which is due.
    fn play_next(&mut self) {
        let Some((at_us, item)) = self.next.take() else {
            return;
        };
        let picture = self.apply(at_us, item);
        let late = self.clock.catch_up(at_us, Instant::now(), LATE);
        if late {
            tracing::debug!(at_us, "decoding is behind the clock; slowing down");
        }
        match picture {
            Some(picture) => {
                self.picture = Some((at_us, picture.clone()));
                self.mailbox.put_frame(Shown {
                    at_us,
                    picture,
                    seek: self.seek,
                });
            }
            None => self.publish(),
        }
        if late {
            self.publish();
        }
    }

    fn publish(&self) {
        self.mailbox.set_status(Status {
            clock: self.clock,
            ended: self.ended,
            problem: self.problem.clone(),
            end_reason: self.end_reason.clone(),
            pointer: self.pointer,
            shape: self.shape.clone(),
        });
    }
}
