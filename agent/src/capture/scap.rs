//! The scap capture backend: the PipeWire screen-cast portal on Linux (Wayland sessions),
//! ScreenCaptureKit on macOS, Windows.Graphics.Capture on Windows.
//!
//! scap pushes frames from its own threads; [`Capturer::capture`] is a pull. A worker thread
//! owns the scap capturer (created there, so nothing platform-bound crosses threads), converts
//! each frame to BGRX and keeps only the newest in a slot: a slow consumer gets the latest
//! picture, never a queue of stale ones. `capture` takes the newest frame if one arrived (then
//! compares it with the last, as the X11 backend does) or returns the last one unchanged.
//!
//! scap draws the pointer into the picture; [`Capturer::cursor`] therefore reports it as not
//! visible, so the viewer does not draw a second one. scap 0.0.8 reports some failures by
//! panicking; the worker catches them and turns them into errors.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use ::scap::capturer::{Capturer as ScapStream, Options, Resolution};
use ::scap::frame::{Frame, FrameType};
use sightline_media::BgraFrame;

use super::history::FrameHistory;
use super::{choose, CaptureError, Captured, Capturer, CursorState, Monitor};

/// How long `open` waits for the capture to start: on Linux the user answers the portal's
/// screen-sharing dialog in that time.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the first `capture` waits for the first picture.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames per second asked of the platform; the caller's loop decides what it encodes.
const FPS: u32 = 30;

/// Lists the monitors scap can capture. scap 0.0.8 tells neither a display's size nor which
/// one is primary before capturing: sizes are 0 until the first picture (the capturer's
/// [`Capturer::monitor`] then has them) and the first display counts as primary. On Linux the
/// portal's dialog picks the monitor, so the list is one entry.
pub(super) fn monitors() -> Result<Vec<Monitor>, CaptureError> {
    check_support()?;
    let unknown_size = |index: usize, name: String| Monitor {
        index,
        name,
        x: 0,
        y: 0,
        width: 0,
        height: 0,
        primary: index == 0,
    };
    #[cfg(target_os = "linux")]
    {
        Ok(vec![unknown_size(
            0,
            "chosen in the screen-sharing dialog".to_owned(),
        )])
    }
    #[cfg(not(target_os = "linux"))]
    {
        guarded("listing displays", || {
            display_targets()
                .into_iter()
                .enumerate()
                .map(|(index, (title, _))| unknown_size(index, title))
                .collect()
        })
    }
}

/// The displays scap offers, in its order: each one's title and target.
#[cfg(not(target_os = "linux"))]
fn display_targets() -> Vec<(String, ::scap::Target)> {
    ::scap::get_all_targets()
        .into_iter()
        .filter_map(|t| match &t {
            ::scap::Target::Display(d) => Some((d.title.clone(), t.clone())),
            ::scap::Target::Window(_) => None,
        })
        .collect()
}

fn check_support() -> Result<(), CaptureError> {
    if !::scap::is_supported() {
        return Err(CaptureError::Unsupported(
            "this system's screen-capture API is too old for scap",
        ));
    }
    if !::scap::has_permission() && !::scap::request_permission() {
        return Err(CaptureError::Backend(
            "permission to record the screen was not granted (allow it in the system's privacy \
             settings, then restart the agent)"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Runs `f`, turning a panic inside scap into an error.
#[cfg(not(target_os = "linux"))]
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, CaptureError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        CaptureError::Backend(format!(
            "{what} failed in scap: {}",
            panic_text(payload.as_ref())
        ))
    })
}

/// The message of a caught panic (scap's `expect` texts say what failed: no D-Bus session, the
/// portal refused, no permission).
fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown failure")
}

/// What the worker shares with the capturer.
#[derive(Debug, Default)]
struct Shared {
    slot: Mutex<Slot>,
    arrived: Condvar,
    stop: AtomicBool,
}

#[derive(Debug, Default)]
struct Slot {
    /// The newest frame not yet taken.
    frame: Option<BgraFrame>,
    /// Why the stream ended, once it has.
    ended: Option<String>,
}

/// Captures one monitor through scap.
#[derive(Debug)]
pub(super) struct ScapCapturer {
    monitor: Monitor,
    shared: Arc<Shared>,
    history: FrameHistory,
}

impl ScapCapturer {
    /// Starts capturing monitor `monitor` (`None`: the primary); on Linux this shows the
    /// portal's dialog and waits for the user's answer.
    pub(super) fn open(monitor: Option<usize>) -> Result<Self, CaptureError> {
        let monitor = choose(&monitors()?, monitor)?;
        let shared = Arc::new(Shared::default());
        let (ready_tx, ready_rx) = sync_channel::<Result<(), String>>(1);
        let worker_shared = Arc::clone(&shared);
        let index = monitor.index;
        thread::Builder::new()
            .name("scap-capture".to_owned())
            .spawn(move || {
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    run_worker(index, &worker_shared, &ready_tx)
                }));
                let reason = match outcome {
                    Ok(Ok(())) => "the capture stopped".to_owned(),
                    Ok(Err(e)) => e,
                    Err(payload) => format!("scap failed: {}", panic_text(payload.as_ref())),
                };
                // The opener may be waiting still (a failure before the stream started).
                let _ = ready_tx.try_send(Err(reason.clone()));
                if let Ok(mut slot) = worker_shared.slot.lock() {
                    slot.ended = Some(reason);
                }
                worker_shared.arrived.notify_all();
            })
            .map_err(|e| CaptureError::Backend(format!("cannot start the capture thread: {e}")))?;
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => Ok(ScapCapturer {
                monitor,
                shared,
                history: FrameHistory::default(),
            }),
            Ok(Err(reason)) => Err(CaptureError::Backend(reason)),
            Err(RecvTimeoutError::Timeout) => {
                shared.stop.store(true, Ordering::Relaxed);
                Err(CaptureError::Timeout(START_TIMEOUT))
            }
            Err(RecvTimeoutError::Disconnected) => Err(CaptureError::Backend(
                "the capture thread ended before starting".to_owned(),
            )),
        }
    }

    fn slot(&self) -> Result<MutexGuard<'_, Slot>, CaptureError> {
        self.shared
            .slot
            .lock()
            .map_err(|_| CaptureError::Backend("the capture thread failed".to_owned()))
    }
}

/// The worker: builds the stream, reports readiness, then moves frames into the slot until
/// told to stop or the stream ends.
fn run_worker(
    index: usize,
    shared: &Shared,
    ready: &std::sync::mpsc::SyncSender<Result<(), String>>,
) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    let target = {
        let _ = index; // the portal's dialog picks the monitor
        None
    };
    #[cfg(not(target_os = "linux"))]
    let target = Some(
        display_targets()
            .into_iter()
            .nth(index)
            .map(|(_, t)| t)
            .ok_or_else(|| format!("display {index} is gone"))?,
    );
    let options = Options {
        fps: FPS,
        show_cursor: true,
        show_highlight: false,
        target,
        crop_area: None,
        output_type: FrameType::BGRAFrame,
        output_resolution: Resolution::Captured,
        excluded_targets: None,
    };
    let mut stream = ScapStream::build(options).map_err(|e| e.to_string())?;
    stream.start_capture();
    let _ = ready.try_send(Ok(()));
    let result = loop {
        if shared.stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        let Ok(frame) = stream.get_next_frame() else {
            break Err("the capture stream ended".to_owned());
        };
        if let Some(frame) = to_bgra(frame) {
            let Ok(mut slot) = shared.slot.lock() else {
                break Ok(());
            };
            slot.frame = Some(frame);
            drop(slot);
            shared.arrived.notify_all();
        }
    };
    stream.stop_capture();
    result
}

impl Capturer for ScapCapturer {
    fn backend(&self) -> &'static str {
        "scap"
    }

    fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    fn capture(&mut self) -> Result<Captured, CaptureError> {
        let first = self.history.unchanged().is_none();
        let newest = {
            let mut slot = self.slot()?;
            if first {
                slot = self
                    .shared
                    .arrived
                    .wait_timeout_while(slot, FIRST_FRAME_TIMEOUT, |s| {
                        s.frame.is_none() && s.ended.is_none()
                    })
                    .map_err(|_| CaptureError::Backend("the capture thread failed".to_owned()))?
                    .0;
            }
            match (slot.frame.take(), &slot.ended) {
                (Some(frame), _) => Some(frame),
                (None, Some(reason)) => return Err(CaptureError::Backend(reason.clone())),
                (None, None) => None,
            }
        };
        match newest {
            Some(frame) => {
                self.monitor.width = frame.width;
                self.monitor.height = frame.height;
                Ok(self.history.submit(frame))
            }
            None => self
                .history
                .unchanged()
                .ok_or(CaptureError::Timeout(FIRST_FRAME_TIMEOUT)),
        }
    }

    fn cursor(&mut self) -> Result<CursorState, CaptureError> {
        // The pointer is part of the picture (show_cursor); nothing to draw separately.
        Ok(CursorState {
            x: 0.0,
            y: 0.0,
            visible: false,
            shape: None,
        })
    }
}

impl Drop for ScapCapturer {
    fn drop(&mut self) {
        // Never blocks: the worker notices at its next frame, stops the stream and exits.
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// Byte order of a scap frame's pixels.
#[derive(Debug, Clone, Copy)]
enum Order {
    Bgrx,
    Rgbx,
    Xbgr,
    Rgb,
}

/// Converts a scap frame to BGRX; `None` for empty frames (macOS idle) and YUV.
fn to_bgra(frame: Frame) -> Option<BgraFrame> {
    match frame {
        Frame::BGRA(f) => convert(f.width, f.height, f.data, Order::Bgrx),
        Frame::BGRx(f) => convert(f.width, f.height, f.data, Order::Bgrx),
        Frame::BGR0(f) => convert(f.width, f.height, f.data, Order::Bgrx),
        Frame::RGBx(f) => convert(f.width, f.height, f.data, Order::Rgbx),
        Frame::XBGR(f) => convert(f.width, f.height, f.data, Order::Xbgr),
        Frame::RGB(f) => convert(f.width, f.height, f.data, Order::Rgb),
        Frame::YUVFrame(_) => {
            tracing::debug!("scap sent a YUV frame though BGRA was asked for; dropped");
            None
        }
    }
}

/// Packs `data` (rows of `width` pixels in `order`, possibly followed by padding or slack) into
/// a BGRX frame with stride `width * 4`.
fn convert(width: i32, height: i32, data: Vec<u8>, order: Order) -> Option<BgraFrame> {
    let w = usize::try_from(width).ok().filter(|&w| w > 0)?;
    let h = usize::try_from(height).ok().filter(|&h| h > 0)?;
    let bpp = if matches!(order, Order::Rgb) { 3 } else { 4 };
    // Rows may be padded: infer the stride when the buffer divides evenly into rows.
    let src_stride = if data.len().is_multiple_of(h) && data.len() / h >= w * bpp {
        data.len() / h
    } else {
        w * bpp
    };
    if data.len() < src_stride * (h - 1) + w * bpp {
        tracing::debug!(
            "scap frame of {} bytes is too small for {w}x{h}",
            data.len()
        );
        return None;
    }
    let stride = w * 4;
    let out = if matches!(order, Order::Bgrx) && src_stride == stride {
        let mut data = data;
        data.truncate(stride * h);
        data
    } else {
        let mut out = Vec::with_capacity(stride * h);
        for row in data.chunks(src_stride).take(h) {
            for px in row.chunks_exact(bpp).take(w) {
                let bgrx = match (order, px) {
                    (Order::Bgrx, [b, g, r, x]) => [*b, *g, *r, *x],
                    (Order::Rgbx, [r, g, b, x]) => [*b, *g, *r, *x],
                    (Order::Xbgr, [x, b, g, r]) => [*b, *g, *r, *x],
                    (Order::Rgb, [r, g, b]) => [*b, *g, *r, 0xff],
                    _ => [0, 0, 0, 0xff],
                };
                out.extend_from_slice(&bgrx);
            }
        }
        out
    };
    Some(BgraFrame {
        width: u32::try_from(w).ok()?,
        height: u32::try_from(h).ok()?,
        stride,
        data: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_byte_orders_to_bgrx() {
        let f = convert(1, 1, vec![1, 2, 3, 4], Order::Rgbx).unwrap();
        assert_eq!(f.data, [3, 2, 1, 4]);
        let f = convert(1, 1, vec![4, 3, 2, 1], Order::Xbgr).unwrap();
        assert_eq!(f.data, [3, 2, 1, 4]);
        let f = convert(2, 1, vec![1, 2, 3, 4, 5, 6], Order::Rgb).unwrap();
        assert_eq!(f.data, [3, 2, 1, 255, 6, 5, 4, 255]);
        let f = convert(1, 2, vec![9, 8, 7, 6, 0, 0, 5, 4, 3, 2, 0, 0], Order::Bgrx).unwrap();
        assert_eq!((f.stride, f.data), (4, vec![9, 8, 7, 6, 5, 4, 3, 2]));
        assert!(convert(0, 0, vec![], Order::Bgrx).is_none());
        assert!(convert(2, 2, vec![0; 8], Order::Bgrx).is_none());
    }
}
