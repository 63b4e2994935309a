//! Seeking: decoding forward to the target without pacing, from the keyframe at or before it
//! or from where decoding stands, while reading the commands that come in meanwhile.

use super::{Command, Engine, Flow, Shown};
use std::sync::mpsc::TryRecvError;
use std::time::Instant;

/// What came in while a seek was decoding.
enum Interrupt {
    None,
    Seek(u64),
    Quit,
}

impl Engine {
    /// Shows the picture at `target`: decodes forward to it from the keyframe at or before
    /// it, or from where decoding stands when no keyframe lies in between.
    pub(super) fn seek(&mut self, target: u64) -> Flow {
        let mut target = self.begin_seek(target);
        loop {
            match self.interrupt() {
                Interrupt::Quit => return Flow::Quit,
                Interrupt::Seek(at_us) => target = self.begin_seek(at_us),
                Interrupt::None => {}
            }
            let Some(at_us) = self.peek() else { break };
            if at_us > target && self.picture.is_some() {
                break;
            }
            let Some((at_us, item)) = self.next.take() else {
                break;
            };
            if let Some(picture) = self.apply(at_us, item) {
                self.picture = Some((at_us, picture));
                if at_us > target {
                    break;
                }
            }
        }
        let position = self
            .picture
            .as_ref()
            .map_or(target, |(at, _)| target.max(*at));
        if !self.ended {
            self.clock.jump(position, Instant::now());
        }
        if let Some((at_us, picture)) = &self.picture {
            self.mailbox.put_frame(Shown {
                at_us: *at_us,
                picture: picture.clone(),
                seek: self.seek,
            });
        }
        self.publish();
        Flow::Continue
    }

    /// A new seek to `target` (clamped to the recording): decoding goes on from where it
    /// stands when that is on the way (a short step forward, a drag to the right within one
    /// keyframe interval); otherwise it starts over at the keyframe at or before `target`.
    fn begin_seek(&mut self, target: u64) -> u64 {
        let target = target.min(self.rec.duration_us);
        self.seek += 1;
        let key_at = self.rec.keyframe_at_or_before(target).map(|k| k.at_us);
        let on_the_way = self.stream.is_some()
            && self.picture.is_some()
            && target >= self.last_at
            && key_at.is_none_or(|k| k <= self.last_at);
        if !on_the_way {
            self.restart_at(target);
        }
        target
    }

    /// Forgets what was read and opens the records at the keyframe at or before `target`.
    fn restart_at(&mut self, target: u64) {
        self.next = None;
        self.picture = None;
        self.ended = false;
        self.problem = None;
        self.end_reason = None;
        // Unknown until the next pointer record. The shape is kept: it rarely changes and
        // is only sent when it does, so the last one known is the best guess.
        self.pointer = None;
        self.pictures.restart();
        let key = self.rec.keyframe_at_or_before(target);
        self.last_at = key.map_or(0, |k| k.at_us);
        self.stream = match self.rec.items_from(key.map_or(0, |k| k.offset)) {
            Ok(items) => Some(items),
            Err(e) => {
                self.problem = Some(e.to_string());
                None
            }
        };
    }

    /// Commands that came in during a seek: play, pause and speed take effect, the newest
    /// seek replaces the one under way.
    fn interrupt(&mut self) -> Interrupt {
        let mut seek = None;
        loop {
            match self.commands.try_recv() {
                Ok(Command::Quit) | Err(TryRecvError::Disconnected) => return Interrupt::Quit,
                Ok(Command::Seek(at_us)) => seek = Some(at_us),
                Ok(cmd) => self.control(cmd),
                Err(TryRecvError::Empty) => break,
            }
        }
        seek.map_or(Interrupt::None, Interrupt::Seek)
    }
}
