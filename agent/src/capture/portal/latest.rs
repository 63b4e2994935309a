//! The newest captured frame, handed from the thread that receives frames to the capture loop:
//! a slow consumer gets the latest picture, never a queue of stale ones.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use sightline_media::BgraFrame;

/// One slot for the newest frame, and why the stream ended once it has.
#[derive(Debug, Default)]
pub(crate) struct Latest {
    slot: Mutex<Slot>,
    arrived: Condvar,
}

#[derive(Debug, Default)]
struct Slot {
    frame: Option<BgraFrame>,
    ended: Option<String>,
}

impl Latest {
    /// Replaces the frame not yet taken with `frame`.
    pub(crate) fn put(&self, frame: BgraFrame) {
        if let Ok(mut slot) = self.slot.lock() {
            slot.frame = Some(frame);
        }
        self.arrived.notify_all();
    }

    /// Records why the stream ended (the first reason wins); later takes return it.
    pub(crate) fn end(&self, why: String) {
        if let Ok(mut slot) = self.slot.lock() {
            slot.ended.get_or_insert(why);
        }
        self.arrived.notify_all();
    }

    /// Takes the newest frame, waiting up to `wait` for one; `Ok(None)` when none came. A
    /// frame that arrived before the end is still handed out; after that, the reason.
    pub(crate) fn take(&self, wait: Duration) -> Result<Option<BgraFrame>, String> {
        let failed = || "the capture thread failed".to_owned();
        let slot = self.slot.lock().map_err(|_| failed())?;
        let (mut slot, _) = self
            .arrived
            .wait_timeout_while(slot, wait, |s| s.frame.is_none() && s.ended.is_none())
            .map_err(|_| failed())?;
        match (slot.frame.take(), &slot.ended) {
            (Some(frame), _) => Ok(Some(frame)),
            (None, Some(why)) => Err(why.clone()),
            (None, None) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8) -> BgraFrame {
        BgraFrame {
            width: 1,
            height: 1,
            stride: 4,
            data: vec![n; 4],
        }
    }

    #[test]
    fn keeps_only_the_newest_then_reports_the_end() {
        let latest = Latest::default();
        assert_eq!(latest.take(Duration::ZERO), Ok(None));
        latest.put(frame(1));
        latest.put(frame(2));
        latest.end("gone".to_owned());
        latest.end("second reason".to_owned());
        let taken = latest.take(Duration::ZERO).unwrap().unwrap();
        assert_eq!(taken.data, [2; 4]);
        assert_eq!(latest.take(Duration::from_secs(5)), Err("gone".to_owned()));
    }
}
