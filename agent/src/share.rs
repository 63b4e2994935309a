//! Screen sharing: a capture thread and an encoder thread.
//!
//! The capture thread grabs the monitor at the target frame rate, skips pictures where nothing
//! changed, converts changed ones to YUV and leaves them in a one-picture slot (a newer picture
//! replaces one the encoder has not taken yet, so stale pictures are dropped, never queued).
//! It also reports the pointer separately from the video.
//!
//! The encoder thread encodes what it finds in the slot. rav1e holds a few pictures back even
//! in low-latency mode, so after a change the encoder re-submits the last picture (cheap,
//! identical inter frames) until the change has come out, instead of waiting for the next
//! change: an edit on an otherwise idle screen reaches the viewer promptly, and a truly idle
//! screen costs no packets at all.
//!
//! Congestion control ([`sightline_core::congestion`]) decides when the next picture may be
//! encoded and at what bitrate: the viewer acknowledges every packet, and while too many bytes
//! are unacknowledged the encoder waits and the slot keeps only the newest picture, so frames
//! are dropped rather than queued and latency does not build up on a narrow link.

use crate::capture::{self, CaptureError, Capturer, Monitor};
use sightline_core::congestion::{Congestion, CongestionConfig};
use sightline_core::messages::{Message, VideoCodec};
use sightline_media::encode::{Backend, EncoderSettings, VideoEncoder};
use sightline_media::{convert, Yuv420Frame};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::Sender;

/// What to share and how fast.
#[derive(Debug, Clone, Copy)]
pub struct ShareConfig {
    /// Monitor index (`None`: primary).
    pub monitor: Option<usize>,
    /// Target pictures per second.
    pub fps: u32,
    /// The encoder backend.
    pub encoder: Backend,
}

/// Errors starting to share.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// The screen cannot be captured.
    #[error(transparent)]
    Capture(#[from] capture::CaptureError),
    /// A thread could not be started.
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
}

struct Picture {
    frame: Yuv420Frame,
    capture_us: u64,
}

#[derive(Default)]
struct Slot {
    picture: Mutex<Option<Picture>>,
    /// Signalled on a new picture, and on an acknowledgement (the window may have opened).
    ready: Condvar,
}

/// The congestion controller and the monotonic clock its times are measured on.
struct Pacing {
    cc: Mutex<Congestion>,
    epoch: Instant,
}

impl Pacing {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// A running share. Dropping it stops both threads (without waiting for them).
pub struct ShareHandle {
    stop: Arc<AtomicBool>,
    keyframe: Arc<AtomicBool>,
    slot: Arc<Slot>,
    pacing: Arc<Pacing>,
    _threads: [JoinHandle<()>; 2],
    /// The shared monitor.
    pub monitor: Monitor,
    /// The encoder backend in use.
    pub encoder: Backend,
    /// The capture backend in use (`x11`, `portal`, `scap`).
    pub capture: &'static str,
}

impl std::fmt::Debug for ShareHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareHandle")
            .field("monitor", &self.monitor)
            .field("encoder", &self.encoder)
            .finish_non_exhaustive()
    }
}

impl ShareHandle {
    /// Asks for a keyframe as soon as possible.
    pub fn request_keyframe(&self) {
        self.keyframe.store(true, Ordering::SeqCst);
    }

    /// The viewer has received video packet `seq` (and those before it).
    pub fn ack(&self, seq: u64) {
        let now = self.pacing.now();
        if let Ok(mut cc) = self.pacing.cc.lock() {
            cc.on_ack(now, seq);
        }
        self.slot.ready.notify_all();
    }
}

impl Drop for ShareHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Opens the monitor and starts sharing into `to_peer`.
pub fn start(cfg: ShareConfig, to_peer: Sender<Message>) -> Result<ShareHandle, ShareError> {
    let capturer = capture::open(cfg.monitor)?;
    let monitor = capturer.monitor().clone();
    let capture = capturer.backend();
    let stop = Arc::new(AtomicBool::new(false));
    let keyframe = Arc::new(AtomicBool::new(true));
    let slot = Arc::new(Slot::default());
    let fps = cfg.fps.clamp(1, 120);
    let interval = Duration::from_secs_f64(1.0 / f64::from(fps));
    let pacing = Arc::new(Pacing {
        cc: Mutex::new(Congestion::new(CongestionConfig {
            max_fps: fps,
            ..CongestionConfig::default()
        })),
        epoch: Instant::now(),
    });

    let capture_thread = {
        let (stop, slot, to_peer) = (stop.clone(), slot.clone(), to_peer.clone());
        std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || capture_loop(capturer, interval, &stop, &slot, &to_peer))
            .map_err(|e| ShareError::Thread("capture", e))?
    };
    let encoder_thread = {
        let (stop, slot, keyframe, pacing) =
            (stop.clone(), slot.clone(), keyframe.clone(), pacing.clone());
        let backend = cfg.encoder;
        std::thread::Builder::new()
            .name("encoder".into())
            .spawn(move || {
                let shared = EncodeShared {
                    stop: &stop,
                    keyframe: &keyframe,
                    slot: &slot,
                    pacing: &pacing,
                    to_peer: &to_peer,
                };
                encode_loop(backend, fps, interval, &shared)
            })
            .map_err(|e| ShareError::Thread("encoder", e))?
    };
    Ok(ShareHandle {
        stop,
        keyframe,
        slot,
        pacing,
        _threads: [capture_thread, encoder_thread],
        monitor,
        encoder: cfg.encoder,
        capture,
    })
}

fn capture_loop(
    mut capturer: Box<dyn Capturer>,
    interval: Duration,
    stop: &AtomicBool,
    slot: &Slot,
    to_peer: &Sender<Message>,
) {
    let mut yuv: Option<Yuv420Frame> = None;
    let mut first = true;
    let mut first_wait: Option<Instant> = None;
    let mut last_cursor: Option<(f32, f32, bool)> = None;
    while !stop.load(Ordering::SeqCst) && !to_peer.is_closed() {
        let tick = Instant::now();
        match capturer.capture() {
            Ok(captured) if captured.changed || first => {
                if let Some(since) = first_wait.take().filter(|_| first) {
                    tracing::info!(
                        "the desktop's first picture came after {:?}",
                        since.elapsed()
                    );
                }
                first = false;
                let capture_us = now_us();
                let converted = match yuv.take() {
                    Some(mut buf)
                        if buf.width == captured.frame.width
                            && buf.height == captured.frame.height =>
                    {
                        convert::bgra_to_yuv420_into(&captured.frame, &mut buf).map(|()| buf)
                    }
                    _ => convert::bgra_to_yuv420(&captured.frame),
                };
                match converted {
                    Ok(frame) => {
                        yuv = Some(frame.clone());
                        if let Ok(mut p) = slot.picture.lock() {
                            *p = Some(Picture { frame, capture_us });
                        }
                        slot.ready.notify_one();
                    }
                    Err(e) => tracing::warn!(error = %e, "colour conversion failed"),
                }
            }
            Ok(_) => {}
            Err(CaptureError::NoPictureYet) => {
                if first_wait.is_none() {
                    first_wait = Some(Instant::now());
                    tracing::info!("waiting for the desktop's first picture");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "screen capture failed; sharing stops");
                let _ = to_peer.blocking_send(Message::Close {
                    reason: sightline_core::messages::CloseReason::Shutdown,
                });
                return;
            }
        }
        match capturer.cursor() {
            Ok(c) => {
                let pos = (c.x, c.y, c.visible);
                if last_cursor != Some(pos) || c.shape.is_some() {
                    last_cursor = Some(pos);
                    // Pointer updates are advisory: drop one rather than wait for the network.
                    let _ = to_peer.try_send(Message::Cursor {
                        x: c.x,
                        y: c.y,
                        visible: c.visible,
                        shape: c.shape,
                    });
                }
            }
            Err(e) => tracing::debug!(error = %e, "cursor query failed"),
        }
        if let Some(rest) = interval.checked_sub(tick.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    slot.ready.notify_all();
}

/// What the encode thread shares with the rest of the share.
struct EncodeShared<'a> {
    stop: &'a AtomicBool,
    keyframe: &'a AtomicBool,
    slot: &'a Slot,
    pacing: &'a Pacing,
    to_peer: &'a Sender<Message>,
}

/// How often the viewer hears what the congestion control is doing.
const RATE_REPORT_EVERY: Duration = Duration::from_secs(1);

fn encode_loop(backend: Backend, fps: u32, interval: Duration, shared: &EncodeShared<'_>) {
    let EncodeShared {
        stop,
        keyframe,
        slot,
        pacing,
        to_peer,
    } = *shared;
    let mut encoder: Option<Box<dyn VideoEncoder>> = None;
    let mut last: Option<Yuv420Frame> = None;
    let mut seq = 0u64;
    // Capture time of the newest changed picture whose packet has not come out yet: while it
    // is set, the last picture is re-submitted so that rav1e's hold-back drains.
    let mut awaiting: Option<u64> = None;
    // Tags of re-submitted pictures whose packets have not come out. Their content was current
    // when they were submitted and still is when they come out (a change would have produced a
    // fresh picture), so their packets are stamped with the time they leave, not a stale one.
    let mut repeats: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut last_encode: Option<Instant> = None;
    let mut last_report = Instant::now();
    while !stop.load(Ordering::SeqCst) && !to_peer.is_closed() {
        let pending = usize::from(awaiting.is_some());
        let want_key = keyframe.load(Ordering::SeqCst);
        // Congestion control: while the window is full, or the frame rate the current bitrate
        // allows has been reached, leave the picture in the slot (a newer one replaces it) and
        // wait for an acknowledgement or the next slot.
        let (may_send, min_gap, target_kbps) = match pacing.cc.lock() {
            Ok(cc) => (
                cc.may_send(),
                Duration::from_secs_f64(1.0 / f64::from(cc.max_fps())),
                cc.target_kbps(),
            ),
            Err(_) => return,
        };
        // Re-submissions that drain rav1e's hold-back are not new pictures: they go at once.
        let too_soon = last_encode
            .filter(|_| pending == 0)
            .map(|t| min_gap.saturating_sub(t.elapsed()));
        if !may_send || too_soon.is_some_and(|d| !d.is_zero()) {
            let wait = too_soon
                .filter(|d| !d.is_zero())
                .unwrap_or(interval)
                .min(interval);
            let Ok(guard) = slot.picture.lock() else {
                return;
            };
            if slot.ready.wait_timeout(guard, wait).is_err() {
                return;
            }
            continue;
        }
        // Wait for a new picture unless the encoder still holds a change back (then repeat the
        // last picture at once) or a keyframe is wanted.
        let fresh = {
            let Ok(mut guard) = slot.picture.lock() else {
                return;
            };
            if guard.is_none() && pending == 0 && !(want_key && last.is_some()) {
                guard = match slot.ready.wait_timeout(guard, interval) {
                    Ok((g, _)) => g,
                    Err(_) => return,
                };
            }
            guard.take()
        };
        let (frame, capture_us) = match (fresh, &last) {
            (Some(p), _) => {
                awaiting = Some(p.capture_us);
                (p.frame, p.capture_us)
            }
            (None, Some(prev)) if pending > 0 || want_key => {
                // Unique tag even if the clock did not move.
                let mut tag = now_us();
                while repeats.contains(&tag) || awaiting == Some(tag) {
                    tag += 1;
                }
                repeats.insert(tag);
                (prev.clone(), tag)
            }
            _ => continue,
        };
        let resized = encoder.as_ref().is_none_or(|e| {
            e.settings().width != frame.width || e.settings().height != frame.height
        });
        if resized {
            let settings = EncoderSettings {
                width: frame.width,
                height: frame.height,
                fps,
                // Backends that can follow the congestion control start at its target; rav1e
                // keeps constant quality and adapts by frame rate alone.
                bitrate_kbps: Some(target_kbps).filter(|_| backend != Backend::Rav1e),
                threads: 0,
            };
            match backend.encoder(settings) {
                Ok(e) => encoder = Some(e),
                Err(e) => {
                    tracing::error!(error = %e, encoder = %backend, "cannot start the encoder");
                    return;
                }
            }
            let config = Message::VideoConfig {
                codec: VideoCodec::Av1,
                width: frame.width,
                height: frame.height,
            };
            if to_peer.blocking_send(config).is_err() {
                return;
            }
            keyframe.store(true, Ordering::SeqCst);
            // A new encoder holds nothing back from the old one.
            repeats.clear();
        }
        let Some(enc) = encoder.as_mut() else { return };
        if enc.bitrate_kbps().is_some_and(|k| k != target_kbps) {
            enc.set_bitrate(target_kbps);
        }
        let force = keyframe.swap(false, Ordering::SeqCst);
        last_encode = Some(Instant::now());
        let packets = match enc.encode(&frame, capture_us, force) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "encoding failed");
                return;
            }
        };
        last = Some(frame);
        for p in packets {
            if awaiting == Some(p.capture_us) {
                awaiting = None;
            }
            let capture_us = if repeats.remove(&p.capture_us) {
                now_us()
            } else {
                p.capture_us
            };
            let bytes = p.data.len() as u64;
            let msg = Message::VideoPacket {
                seq,
                capture_us,
                keyframe: p.keyframe,
                data: p.data,
            };
            if let Ok(mut cc) = pacing.cc.lock() {
                cc.on_sent(pacing.now(), seq, bytes);
            }
            seq += 1;
            if to_peer.blocking_send(msg).is_err() {
                return;
            }
        }
        if last_report.elapsed() >= RATE_REPORT_EVERY {
            last_report = Instant::now();
            let stats = match pacing.cc.lock() {
                Ok(mut cc) => cc.stats(pacing.now()),
                Err(_) => return,
            };
            tracing::debug!(?stats, "congestion control");
            // Advisory: dropped rather than waited for when the channel is full.
            let _ = to_peer.try_send(Message::SendRate {
                target_kbps: stats.target_kbps,
                send_kbps: stats.send_kbps,
                fps: stats.fps,
                rtt_ms: stats.rtt_ms,
                queue_ms: stats.queue_ms,
            });
        }
    }
}
