//! The X11 capture backend (x11rb, pure Rust, no Xlib).
//!
//! - Monitors: RandR 1.5 `GetMonitors`, else the whole root window ([`layout`]).
//! - Pixels: MIT-SHM `ShmGetImage` into a server-created segment, else `GetImage` ([`grab`]).
//! - Change detection: XDamage on the root window says *whether to look*; a row-by-row
//!   comparison with the last frame says *whether it changed* (damage that repaints the same
//!   pixels, or damage on another monitor, is no change). Without XDamage every capture compares.
//! - Resizes: RandR screen/CRTC/output notifications re-read the layout; the segment is re-made
//!   for the new size.
//! - Pointer: `QueryPointer` for the position, XFixes `GetCursorImage` for the shape when XFixes
//!   says the displayed cursor changed and its serial differs from the last one sent.

mod grab;
mod layout;
mod shm;

use sightline_core::messages::CursorShape;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::damage::{self, ConnectionExt as _};
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ConnectionExt as _, Screen};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::NONE;

use super::cursor::{normalise, shape_from_premultiplied_argb};
use super::history::FrameHistory;
use super::{choose, CaptureError, Captured, Capturer, CursorState, Monitor};
use grab::Grabber;

/// How to reach the X server and read it.
#[derive(Debug, Clone, Default)]
pub struct X11Options {
    /// Display name such as `":99"`; `None` uses `$DISPLAY`.
    pub display: Option<String>,
    /// Read pixels with plain `GetImage` even when MIT-SHM works (tests compare both paths).
    pub force_get_image: bool,
    /// Ignore XDamage and compare every capture with the last (tests cover both paths).
    pub ignore_damage: bool,
}

/// Lists the monitors of X display `display` (`None`: `$DISPLAY`).
pub fn monitors_on(display: Option<&str>) -> Result<Vec<Monitor>, CaptureError> {
    let (conn, screen) = connect(display)?;
    let randr = layout::has_randr_monitors(&conn)?;
    layout::list(&conn, &screen, randr)
}

/// Captures one monitor of an X display.
#[derive(Debug)]
pub struct X11Capturer {
    conn: RustConnection,
    screen: Screen,
    randr: bool,
    monitor: Monitor,
    grabber: Grabber,
    /// The XDamage object on the root window, when the server has XDamage.
    damage: Option<damage::Damage>,
    /// Damage arrived since the last capture (or no XDamage: always look).
    damaged: bool,
    /// RandR said the screen layout changed.
    layout_changed: bool,
    /// Whether XFixes (pointer shapes) is available.
    xfixes: bool,
    /// XFixes said the displayed pointer changed since the last shape was read.
    cursor_changed: bool,
    /// Serial of the last pointer shape returned.
    cursor_serial: Option<u32>,
    history: FrameHistory,
}

impl X11Capturer {
    /// Connects and prepares to capture monitor `monitor` (`None`: the primary).
    pub fn open(options: &X11Options, monitor: Option<usize>) -> Result<Self, CaptureError> {
        let (conn, screen) = connect(options.display.as_deref())?;
        layout::check_pixel_format(&conn, &screen)?;
        let randr = layout::has_randr_monitors(&conn)?;
        let monitor = choose(&layout::list(&conn, &screen, randr)?, monitor)?;
        let root = screen.root;

        if randr {
            let mask = randr::NotifyMask::SCREEN_CHANGE
                | randr::NotifyMask::CRTC_CHANGE
                | randr::NotifyMask::OUTPUT_CHANGE;
            conn.randr_select_input(root, mask)
                .map_err(|e| CaptureError::protocol("RRSelectInput", e))?;
        }
        let damage = if options.ignore_damage {
            None
        } else {
            start_damage(&conn, root)?
        };
        let xfixes = start_xfixes(&conn, root)?;
        let grabber = if !options.force_get_image && shm::available(&conn) {
            Grabber::Shm(None)
        } else {
            Grabber::GetImage
        };
        let mut capturer = X11Capturer {
            conn,
            screen,
            randr,
            monitor,
            grabber,
            damage,
            damaged: true,
            layout_changed: false,
            xfixes,
            cursor_changed: true,
            cursor_serial: None,
            history: FrameHistory::default(),
        };
        capturer.probe_shm();
        Ok(capturer)
    }

    /// Whether pixels come through MIT-SHM (false: the `GetImage` fallback).
    pub fn uses_shm(&self) -> bool {
        matches!(self.grabber, Grabber::Shm(_))
    }

    /// Whether XDamage gates the comparisons.
    pub fn uses_damage(&self) -> bool {
        self.damage.is_some()
    }

    /// Tries one MIT-SHM capture and falls back to `GetImage` if it fails: the extension can be
    /// advertised yet unusable (a remote server cannot pass the segment's file descriptor).
    fn probe_shm(&mut self) {
        if !self.uses_shm() {
            return;
        }
        let buf = Vec::new();
        if let Err(e) = self
            .grabber
            .grab(&self.conn, self.screen.root, &self.monitor, buf)
        {
            tracing::info!("MIT-SHM capture unusable ({e}); reading the screen with GetImage");
            self.grabber.release(&self.conn);
            self.grabber = Grabber::GetImage;
        }
    }

    /// Drains the server's events into the flags that capture and cursor act on.
    fn pump_events(&mut self) -> Result<(), CaptureError> {
        while let Some(event) = self
            .conn
            .poll_for_event()
            .map_err(|e| CaptureError::protocol("reading events", e))?
        {
            match event {
                Event::DamageNotify(_) => self.damaged = true,
                Event::RandrScreenChangeNotify(_) | Event::RandrNotify(_) => {
                    self.layout_changed = true;
                }
                Event::XfixesCursorNotify(_) => self.cursor_changed = true,
                Event::Error(e) => tracing::debug!("X error on the capture connection: {e:?}"),
                _ => {}
            }
        }
        if self.layout_changed {
            self.layout_changed = false;
            self.refresh_layout()?;
        }
        Ok(())
    }

    /// Re-reads the monitor's geometry after a layout change; the next capture reports a change
    /// and re-makes the segment if the size differs.
    fn refresh_layout(&mut self) -> Result<(), CaptureError> {
        let list = layout::list(&self.conn, &self.screen, self.randr)?;
        let now = list
            .into_iter()
            .find(|m| m.name == self.monitor.name)
            .ok_or_else(|| CaptureError::MonitorGone(self.monitor.name.clone()))?;
        if (now.x, now.y, now.width, now.height)
            != (
                self.monitor.x,
                self.monitor.y,
                self.monitor.width,
                self.monitor.height,
            )
        {
            tracing::info!(
                "monitor {} is now {}x{} at {},{}",
                now.name,
                now.width,
                now.height,
                now.x,
                now.y
            );
            self.history.reset();
            self.damaged = true;
        }
        // Keep the index the caller chose; only the geometry follows the server.
        self.monitor = Monitor {
            index: self.monitor.index,
            ..now
        };
        Ok(())
    }

    fn grab_once(&mut self) -> Result<sightline_media::BgraFrame, CaptureError> {
        let len = self.monitor.width as usize * self.monitor.height as usize * 4;
        let buf = self.history.buffer(len);
        self.grabber
            .grab(&self.conn, self.screen.root, &self.monitor, buf)
    }

    fn cursor_shape(&mut self) -> Result<Option<CursorShape>, CaptureError> {
        let img = self
            .conn
            .xfixes_get_cursor_image()
            .map_err(|e| CaptureError::protocol("XFixesGetCursorImage", e))?
            .reply()
            .map_err(|e| CaptureError::protocol("XFixesGetCursorImage", e))?;
        if self.cursor_serial == Some(img.cursor_serial) {
            return Ok(None);
        }
        self.cursor_serial = Some(img.cursor_serial);
        Ok(shape_from_premultiplied_argb(
            img.width,
            img.height,
            img.xhot,
            img.yhot,
            &img.cursor_image,
        ))
    }
}

impl Capturer for X11Capturer {
    fn backend(&self) -> &'static str {
        "x11"
    }

    fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    fn capture(&mut self) -> Result<Captured, CaptureError> {
        self.pump_events()?;
        if !self.damaged {
            if let Some(same) = self.history.unchanged() {
                return Ok(same);
            }
        }
        if let Some(d) = self.damage {
            // Subtract before reading: damage that lands after this point raises a new event,
            // so nothing drawn during the read is missed.
            self.conn
                .damage_subtract(d, NONE, NONE)
                .map_err(|e| CaptureError::protocol("DamageSubtract", e))?;
        }
        let frame = match self.grab_once() {
            Ok(frame) => frame,
            Err(first) => {
                // A resize can race its notification: re-read the layout and try once more.
                tracing::debug!("capture failed ({first}); re-reading the screen layout");
                self.refresh_layout()?;
                self.grab_once()?
            }
        };
        self.damaged = self.damage.is_none();
        Ok(self.history.submit(frame))
    }

    fn cursor(&mut self) -> Result<CursorState, CaptureError> {
        self.pump_events()?;
        let p = self
            .conn
            .query_pointer(self.screen.root)
            .map_err(|e| CaptureError::protocol("QueryPointer", e))?
            .reply()
            .map_err(|e| CaptureError::protocol("QueryPointer", e))?;
        let (x, y, on_monitor) = normalise(&self.monitor, i32::from(p.root_x), i32::from(p.root_y));
        let shape = if self.xfixes && self.cursor_changed {
            self.cursor_changed = false;
            self.cursor_shape()?
        } else {
            None
        };
        Ok(CursorState {
            x,
            y,
            visible: on_monitor && p.same_screen,
            shape,
        })
    }
}

/// Connects to `display` (`None`: `$DISPLAY`) and returns its default screen.
fn connect(display: Option<&str>) -> Result<(RustConnection, Screen), CaptureError> {
    let shown = || {
        display
            .map(str::to_owned)
            .or_else(|| std::env::var("DISPLAY").ok())
            .unwrap_or_else(|| "(DISPLAY unset)".to_owned())
    };
    let (conn, screen_num) = x11rb::connect(display).map_err(|e| CaptureError::Connect {
        display: shown(),
        source: Box::new(e),
    })?;
    let screen =
        conn.setup()
            .roots
            .get(screen_num)
            .cloned()
            .ok_or_else(|| CaptureError::Connect {
                display: shown(),
                source: format!("the server has no screen {screen_num}").into(),
            })?;
    Ok((conn, screen))
}

/// Watches the root window with XDamage, if the server has it.
fn start_damage(conn: &RustConnection, root: u32) -> Result<Option<damage::Damage>, CaptureError> {
    if !matches!(
        conn.extension_information(damage::X11_EXTENSION_NAME),
        Ok(Some(_))
    ) {
        return Ok(None);
    }
    // The version handshake is mandatory before any other DAMAGE request.
    conn.damage_query_version(1, 1)
        .map_err(|e| CaptureError::protocol("DamageQueryVersion", e))?
        .reply()
        .map_err(|e| CaptureError::protocol("DamageQueryVersion", e))?;
    let id = conn
        .generate_id()
        .map_err(|e| CaptureError::protocol("DamageCreate", e))?;
    conn.damage_create(id, root, damage::ReportLevel::NON_EMPTY)
        .map_err(|e| CaptureError::protocol("DamageCreate", e))?
        .check()
        .map_err(|e| CaptureError::protocol("DamageCreate", e))?;
    Ok(Some(id))
}

/// Asks XFixes for pointer-change events, if the server has XFixes 2 or later.
fn start_xfixes(conn: &RustConnection, root: u32) -> Result<bool, CaptureError> {
    if !matches!(
        conn.extension_information(xfixes::X11_EXTENSION_NAME),
        Ok(Some(_))
    ) {
        return Ok(false);
    }
    let v = conn
        .xfixes_query_version(4, 0)
        .map_err(|e| CaptureError::protocol("XFixesQueryVersion", e))?
        .reply()
        .map_err(|e| CaptureError::protocol("XFixesQueryVersion", e))?;
    if v.major_version < 2 {
        return Ok(false);
    }
    conn.xfixes_select_cursor_input(root, xfixes::CursorNotifyMask::DISPLAY_CURSOR)
        .map_err(|e| CaptureError::protocol("XFixesSelectCursorInput", e))?;
    Ok(true)
}
