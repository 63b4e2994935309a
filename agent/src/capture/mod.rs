//! Screen capture: lists the monitors, captures one of them as BGRA pictures, says whether the
//! picture changed since the last capture (so the caller can skip encoding), and reports the
//! pointer separately from the picture (position every call, shape only when it changed).
//!
//! Backends, chosen by [`open`] and [`monitors`] for this platform and session:
//! - `portal` (Linux with `$WAYLAND_DISPLAY`): the desktop's screen-cast portal over D-Bus,
//!   the picture from PipeWire, which is loaded at run time (nothing linked). Where it cannot
//!   be used (no PipeWire, no session bus, no portal), the agent says so and falls back to X11
//!   when XWayland is there;
//! - [`x11`] (Linux with `$DISPLAY`): x11rb with MIT-SHM, plain `GetImage` as the fallback,
//!   XDamage to skip unchanged screens, XFixes for the pointer shape;
//! - `scap` (feature `scap`): the backend on macOS and Windows.
//!
//! Platform `cfg`s live here and in the backends only.

// A build with no backend at all (not Linux, `scap` off) keeps the shared helpers unused.
#![cfg_attr(not(any(target_os = "linux", feature = "scap")), allow(dead_code))]

mod cursor;
mod error;
mod history;
#[cfg(target_os = "linux")]
mod portal;
#[cfg(all(feature = "scap", not(target_os = "linux")))]
mod scap;
#[cfg(target_os = "linux")]
pub mod x11;

use std::sync::Arc;

use sightline_core::messages::CursorShape;
use sightline_media::BgraFrame;

pub use error::CaptureError;

/// One monitor of the local session, in the desktop's pixel coordinates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitor {
    /// Position in the list [`monitors`] returns; what [`open`] takes.
    pub index: usize,
    /// The name the platform gives it (`"DP-1"`, `"screen"`).
    pub name: String,
    /// Left edge in desktop pixels.
    pub x: i32,
    /// Top edge in desktop pixels.
    pub y: i32,
    /// Width in pixels (0 while unknown: the scap backend only learns it from the first
    /// picture).
    pub width: u32,
    /// Height in pixels (0 while unknown, as for `width`).
    pub height: u32,
    /// Whether this is the primary monitor (what `open(None)` picks).
    pub primary: bool,
}

/// Where the pointer is, relative to the captured monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct CursorState {
    /// Horizontal position of the pointer's hotspot, 0..=1 across the monitor (the centre of
    /// the pixel it is on), clamped to the monitor's edges when it is elsewhere.
    pub x: f32,
    /// Vertical position, as for `x`.
    pub y: f32,
    /// Whether the pointer is on this monitor. Backends that draw the pointer into the picture
    /// (scap) report `false` so the viewer does not draw it twice.
    pub visible: bool,
    /// The pointer image, only when it changed since the last call (always on the first).
    pub shape: Option<CursorShape>,
}

/// One captured picture.
///
/// The frame is shared (`Arc`): the capturer keeps the last one to detect changes, and when
/// nothing changed it hands back that same frame without copying it again. Drop your clone
/// before the next capture when you can, so that the capturer can reuse its buffer.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The whole monitor, BGRX (the fourth byte is undefined on X11 depth 24, alpha elsewhere).
    pub frame: Arc<BgraFrame>,
    /// Whether any pixel differs from the previous capture (true for the first capture and after
    /// a resize). When false, `frame` is the previous frame.
    pub changed: bool,
}

/// Captures one monitor. Not shared between threads: the capture loop owns it.
pub trait Capturer: Send {
    /// Which backend captures (`x11`, `portal`, `scap`), for the `sharing` event and the logs.
    fn backend(&self) -> &'static str;

    /// The captured monitor, with its current size (it follows resizes).
    fn monitor(&self) -> &Monitor;

    /// Captures the monitor now. `changed` tells whether any pixel differs from the previous
    /// capture, so the caller can skip encoding.
    fn capture(&mut self) -> Result<Captured, CaptureError>;

    /// The pointer's position on the monitor, and its shape when it changed since the last call.
    fn cursor(&mut self) -> Result<CursorState, CaptureError>;
}

/// The backend that serves this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    #[cfg(target_os = "linux")]
    X11,
    #[cfg(target_os = "linux")]
    Portal,
    #[cfg(all(feature = "scap", not(target_os = "linux")))]
    Scap,
}

/// Set by an unattended kiosk: with both `$DISPLAY` and `$WAYLAND_DISPLAY`, capture through
/// X11 (XWayland) rather than the portal, whose desktop dialog would wait for a person who is
/// not there.
static UNATTENDED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// For the rest of the process, nobody is at the screen to answer the desktop's screen-sharing
/// dialog (the LAN-only kiosk): X11 is preferred wherever it is there.
pub fn set_unattended() {
    UNATTENDED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Picks the backend: on a Wayland desktop the screen-cast portal when it can be used, else
/// X11 through XWayland (said once, with the reason); X11 when only `$DISPLAY` is set; scap on
/// macOS and Windows.
fn backend() -> Result<Backend, CaptureError> {
    #[cfg(target_os = "linux")]
    {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        let unattended = UNATTENDED.load(std::sync::atomic::Ordering::Relaxed);
        if set("WAYLAND_DISPLAY") {
            let why = if unattended && set("DISPLAY") {
                "an unattended kiosk: nobody would answer the desktop's dialog".to_owned()
            } else {
                match portal::available() {
                    Ok(()) => return Ok(Backend::Portal),
                    Err(why) if !set("DISPLAY") => return Err(CaptureError::NoPortal(why)),
                    Err(why) => why,
                }
            };
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                tracing::warn!("Wayland desktop, but its screen-cast portal is not used ({why}): falling back to X11 (XWayland); windows of Wayland programs may look black to the operator");
            });
        }
        if set("DISPLAY") {
            return Ok(Backend::X11);
        }
        Err(CaptureError::NoDisplay)
    }
    #[cfg(all(not(target_os = "linux"), feature = "scap"))]
    {
        Ok(Backend::Scap)
    }
    #[cfg(all(not(target_os = "linux"), not(feature = "scap")))]
    {
        Err(CaptureError::Unsupported(
            "screen capture on this platform needs the agent built with the `scap` feature",
        ))
    }
}

/// Lists the monitors of this session, primary flagged. Index `i` of the list is monitor `i`
/// for [`open`].
pub fn monitors() -> Result<Vec<Monitor>, CaptureError> {
    match backend()? {
        #[cfg(target_os = "linux")]
        Backend::X11 => x11::monitors_on(None),
        #[cfg(target_os = "linux")]
        Backend::Portal => Ok(portal::monitors()),
        #[cfg(all(feature = "scap", not(target_os = "linux")))]
        Backend::Scap => scap::monitors(),
    }
}

/// Opens a capturer for monitor `monitor` of [`monitors`], or the primary one for `None`.
pub fn open(monitor: Option<usize>) -> Result<Box<dyn Capturer>, CaptureError> {
    match backend()? {
        #[cfg(target_os = "linux")]
        Backend::X11 => Ok(Box::new(x11::X11Capturer::open(
            &x11::X11Options::default(),
            monitor,
        )?)),
        #[cfg(target_os = "linux")]
        Backend::Portal => Ok(Box::new(portal::PortalCapturer::open(monitor)?)),
        #[cfg(all(feature = "scap", not(target_os = "linux")))]
        Backend::Scap => Ok(Box::new(scap::ScapCapturer::open(monitor)?)),
    }
}

/// The monitor that [`open`] with `wanted` would capture, without capturing anything.
pub fn find(wanted: Option<usize>) -> Result<Monitor, CaptureError> {
    choose(&monitors()?, wanted)
}

/// Picks `wanted` from `list`, or the primary (else the first) monitor for `None`.
fn choose(list: &[Monitor], wanted: Option<usize>) -> Result<Monitor, CaptureError> {
    let found = match wanted {
        Some(i) => list.get(i),
        None => list.iter().find(|m| m.primary).or_else(|| list.first()),
    };
    found
        .cloned()
        .ok_or(CaptureError::NoMonitor(wanted.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mon(index: usize, primary: bool) -> Monitor {
        Monitor {
            index,
            name: format!("M{index}"),
            x: 0,
            y: 0,
            width: 10,
            height: 10,
            primary,
        }
    }

    #[test]
    fn choose_picks_primary_or_index() {
        let list = [mon(0, false), mon(1, true)];
        assert_eq!(choose(&list, None).unwrap().index, 1);
        assert_eq!(choose(&list, Some(0)).unwrap().index, 0);
        let err = choose(&list, Some(2)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no monitor 2 (the agent monitors command lists them)"
        );
        assert_eq!(choose(&[mon(0, false)], None).unwrap().index, 0);
        assert!(choose(&[], None).is_err());
    }
}
