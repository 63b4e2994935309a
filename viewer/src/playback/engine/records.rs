//! Reading the records in order and taking each in: pictures decoded, the pointer and the
//! end reason kept; the end of what can be read stops playback there.

use super::{Engine, Pointer};
use crate::playback::clock::PlayClock;
use sightline_media::Yuv420Frame;
use sightline_recording::Item;
use std::sync::Arc;
use std::time::Instant;

impl Engine {
    /// The time of the next record, reading it if needed; `None` at the end (or where the
    /// recording cannot be read further), which stops playback there.
    pub(super) fn peek(&mut self) -> Option<u64> {
        if let Some((at_us, _)) = &self.next {
            return Some(*at_us);
        }
        if self.ended {
            return None;
        }
        match self.stream.as_mut().and_then(Iterator::next) {
            Some(Ok((at_us, item))) => {
                self.next = Some((at_us, item));
                Some(at_us)
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "playback stops where the recording cannot be read");
                self.problem = Some(e.to_string());
                self.stop_at_end();
                None
            }
            None => {
                self.stop_at_end();
                None
            }
        }
    }

    pub(super) fn stop_at_end(&mut self) {
        self.ended = true;
        self.stream = None;
        let end = match self.problem {
            // Stopped early: where the last record read was.
            Some(_) => self.last_at,
            None => self.rec.duration_us,
        };
        self.clock = PlayClock::stopped(end, self.clock.speed(), Instant::now());
        self.publish();
    }

    /// Takes in the record at `at_us`; the picture it completes, if any.
    pub(super) fn apply(&mut self, at_us: u64, item: Item) -> Option<Arc<Yuv420Frame>> {
        self.last_at = at_us;
        match item {
            Item::Packet {
                seq,
                keyframe,
                data,
                ..
            } => return self.pictures.packet(seq, keyframe, &data).map(Arc::new),
            Item::Config { .. } => self.pictures.restart(),
            Item::Cursor {
                x,
                y,
                visible,
                shape,
            } => {
                self.pointer = Some(Pointer { x, y, visible });
                if let Some(shape) = shape {
                    let n = self.shape.as_ref().map_or(1, |(n, _)| n + 1);
                    self.shape = Some((n, Arc::new(shape)));
                }
            }
            Item::End(reason) => self.end_reason = Some(reason),
            _ => {}
        }
        None
    }
}
