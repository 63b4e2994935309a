//! Why capture failed.

use std::time::Duration;

/// A boxed error from a platform library, kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why listing monitors or capturing failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Neither `$DISPLAY` nor `$WAYLAND_DISPLAY` is set: there is no graphical session to
    /// capture (a service, or an SSH login).
    #[error("no graphical session to capture: neither DISPLAY nor WAYLAND_DISPLAY is set")]
    NoDisplay,
    /// The X server did not accept the connection.
    #[error("cannot open the X display {display}: {source}")]
    Connect {
        /// The display name as given (`:99`), or `$DISPLAY`'s value.
        display: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The monitor index is not in the list [`super::monitors`] returns.
    #[error("no monitor {0} (the agent monitors command lists them)")]
    NoMonitor(usize),
    /// The captured monitor went away (unplugged, or the screen was reconfigured).
    #[error("monitor {0:?} is gone (the screen layout changed)")]
    MonitorGone(String),
    /// The screen's pixels are not 32-bit little-endian BGRX (e.g. a depth-16 X server).
    #[error("unsupported screen pixel format: {0}")]
    PixelFormat(String),
    /// The display server failed a request or the connection broke.
    #[error("display server request {what} failed: {source}")]
    Protocol {
        /// Which request.
        what: &'static str,
        /// The library's error.
        #[source]
        source: BoxError,
    },
    /// The platform capture library (the portal, PipeWire, scap) failed or refused.
    #[error("screen capture failed: {0}")]
    Backend(String),
    /// The customer cancelled the desktop's own screen-sharing dialog (the Wayland portal's).
    #[error("the customer did not choose a screen to share in the desktop's dialog")]
    Declined,
    /// No picture has arrived yet, and that is no failure: some desktops (wlroots' portal)
    /// send the first one only once something on the screen changes. The caller tries again.
    #[error("no picture from the screen yet: the desktop sends the first one when something on the screen changes")]
    NoPictureYet,
    /// No picture arrived in time (the Wayland portal dialog not answered, a stalled stream).
    #[error("no picture from the screen capture within {0:?}")]
    Timeout(Duration),
    /// A Wayland desktop with no X11 display, whose screen-cast portal cannot be used.
    #[error("this Wayland desktop has no X11 display to fall back to, and its screen-cast portal cannot be used: {0}")]
    NoPortal(String),
    /// Capture is not possible in this build or session.
    #[error("screen capture is not available: {0}")]
    Unsupported(&'static str),
}

impl CaptureError {
    /// Wraps a platform library error for request `what`.
    pub(crate) fn protocol(what: &'static str, source: impl Into<BoxError>) -> Self {
        CaptureError::Protocol {
            what,
            source: source.into(),
        }
    }
}
