//! The screen-cast portal backend for Wayland desktops (GNOME, KDE, sway and the other
//! wlroots desktops): the portal's handshake over D-Bus ([`dbus`], zbus), then the picture from
//! PipeWire ([`pipewire`], `libpipewire-0.3.so.0` loaded at run time). Nothing is linked: an
//! agent built with it starts on any Linux desktop, and uses the portal where the desktop has
//! one.
//!
//! Opening it may show the desktop's own screen-sharing dialog (GNOME and KDE ask which screen
//! to share); [`open`] waits for the customer's answer.

mod dbus;
mod latest;
mod pipewire;
mod pod;

use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::history::FrameHistory;
use super::{choose, CaptureError, Captured, Capturer, CursorState, Monitor};
use latest::Latest;

/// How long `open` waits for the portal: the customer answers the desktop's dialog meanwhile.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a `capture` waits for the first picture before saying there is none yet (the
/// capture loop then tries again: wlroots' portal sends a picture only once the screen changes
/// when an earlier cast already had the unchanged one).
const FIRST_FRAME_WAIT: Duration = Duration::from_secs(1);

/// Whether this session can use the portal: PipeWire loads, the session bus answers and the
/// desktop offers screen casting; the reason when not. A yes is remembered for the process;
/// a no is asked again next time (a kiosk may start before the desktop's portal does).
pub(super) fn available() -> Result<(), String> {
    static AVAILABLE: OnceLock<()> = OnceLock::new();
    if AVAILABLE.get().is_some() {
        return Ok(());
    }
    pipewire::available()?;
    drop(dbus::probe()?);
    let _ = AVAILABLE.set(());
    Ok(())
}

/// The portal picks the monitor (or the customer does, in its dialog): one entry, its size
/// unknown until the stream starts.
pub(super) fn monitors() -> Vec<Monitor> {
    vec![Monitor {
        index: 0,
        name: "chosen by the desktop's screen-sharing portal".to_owned(),
        x: 0,
        y: 0,
        width: 0,
        height: 0,
        primary: true,
    }]
}

/// Captures the monitor the portal shares.
pub(super) struct PortalCapturer {
    monitor: Monitor,
    latest: Arc<Latest>,
    history: FrameHistory,
    /// Dropped first: stops PipeWire's thread, then the session closes.
    _stream: pipewire::Stream,
    _session: dbus::Session,
}

impl std::fmt::Debug for PortalCapturer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalCapturer")
            .field("monitor", &self.monitor)
            .finish_non_exhaustive()
    }
}

impl PortalCapturer {
    /// Asks the portal for a monitor (waiting for the customer's answer in the desktop's
    /// dialog) and starts its stream.
    pub(super) fn open(monitor: Option<usize>) -> Result<Self, CaptureError> {
        let mut monitor = choose(&monitors(), monitor)?;
        available().map_err(CaptureError::Backend)?;
        // The handshake blocks on the customer; a thread keeps `open`'s wait bounded. If the
        // wait ends first, the thread's late session is dropped, which closes it.
        let (tx, rx) = sync_channel(1);
        std::thread::Builder::new()
            .name("portal-handshake".to_owned())
            .spawn(move || {
                let _ = tx.send(dbus::open());
            })
            .map_err(|e| CaptureError::Backend(format!("cannot start the portal thread: {e}")))?;
        let session = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(session)) => session,
            Ok(Err(dbus::Refusal::Cancelled)) => return Err(CaptureError::Declined),
            Ok(Err(dbus::Refusal::Failed(why))) => return Err(CaptureError::Backend(why)),
            Err(RecvTimeoutError::Timeout) => return Err(CaptureError::Timeout(START_TIMEOUT)),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(CaptureError::Backend("the portal thread failed".to_owned()))
            }
        };
        if let Some((width, height)) = session.size {
            (monitor.width, monitor.height) = (width, height);
        }
        let latest = Arc::new(Latest::default());
        let fd = session.pipewire_remote().map_err(CaptureError::Backend)?;
        let stream = pipewire::Stream::connect(fd, session.node, Arc::clone(&latest))
            .map_err(CaptureError::Backend)?;
        tracing::info!(
            "capturing through the screen-cast portal (PipeWire node {})",
            session.node
        );
        Ok(PortalCapturer {
            monitor,
            latest,
            history: FrameHistory::default(),
            _stream: stream,
            _session: session,
        })
    }
}

impl Capturer for PortalCapturer {
    fn backend(&self) -> &'static str {
        "portal"
    }

    fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    fn capture(&mut self) -> Result<Captured, CaptureError> {
        let wait = match self.history.unchanged() {
            None => FIRST_FRAME_WAIT,
            Some(_) => Duration::ZERO,
        };
        match self.latest.take(wait).map_err(CaptureError::Backend)? {
            Some(frame) => {
                self.monitor.width = frame.width;
                self.monitor.height = frame.height;
                Ok(self.history.submit(frame))
            }
            None => self.history.unchanged().ok_or(CaptureError::NoPictureYet),
        }
    }

    fn cursor(&mut self) -> Result<CursorState, CaptureError> {
        // The portal draws the pointer into the picture where it can (cursor_mode embedded);
        // the viewer must not draw a second one.
        Ok(CursorState {
            x: 0.0,
            y: 0.0,
            visible: false,
            shape: None,
        })
    }
}
