//! The on-screen session indicator and the customer's global hotkeys (X11 only for now).
//!
//! While the screen is shared, [`Indicator`] keeps a banner at the top edge of the shared monitor
//! that says who is watching and whether they control the keyboard and mouse. It is part of the
//! screen, so it also appears in the captured video: the operator sees what the customer sees.
//! The customer's global hotkeys come with it: Ctrl+Alt+R takes control back
//! ([`Hotkey::RevokeControl`]) and Ctrl+Alt+Q ends the session ([`Hotkey::EndSession`]).
//!
//! - The banner is an override-redirect window (no window manager can move, close or iconify
//!   it), the monitor's full width and [`BANNER_HEIGHT`] pixels high, solid [`BANNER_RGB`] with
//!   white text. It lets pointer input through to what lies below (an empty SHAPE input region,
//!   where the server has SHAPE 1.1), so the customer can still reach the top of the screen.
//!   It is raised whenever something covers it (VisibilityNotify) and checked every
//!   [`RAISE_EVERY`]; if another client unmaps, moves or destroys it, it is put back, and the
//!   agent is told ([`IndicatorEvent::Hidden`], then [`IndicatorEvent::Shown`] once it is back)
//!   so it can take control away and pause sharing while the customer cannot see the banner.
//!   If the banner's connection to the X server breaks (`xkill`, a killed connection), the
//!   thread ends with [`IndicatorEvent::Lost`].
//! - Text is drawn with a core X font ("-misc-fixed-bold-…-iso8859-1", else "fixed"), which
//!   covers Latin-1 only: characters outside Latin-1 are drawn as `?` and control characters
//!   are removed (see [`IndicatorText::status_line`]). The "●" in front of the text is drawn as
//!   a filled circle, not as a glyph.
//! - The hotkeys are passive key grabs on the root window (`GrabKey`), for every combination
//!   of CapsLock and NumLock, on the keycodes that carry the keysyms r/R and q/Q. A key that
//!   another program already grabbed is left out with a warning ([`Indicator::hotkeys`] lists
//!   the ones in effect, and the banner shows only those). The grabs follow keyboard mapping
//!   changes ([`IndicatorEvent::Hotkeys`] when the set in effect changes). A held key repeats:
//!   treat the hotkeys as idempotent.
//! - A thread with its own x11rb connection owns the window; dropping the [`Indicator`] removes
//!   the window, releases the grabs and joins the thread.
//!
//! Without an X display (`$DISPLAY` unset: a Wayland-only session, a service), and on macOS and
//! Windows, [`Indicator::start`] returns [`IndicatorError::NoX11Display`]; the agent then tells
//! the customer in its terminal instead. On XWayland the banner shows above X11 windows, and the
//! hotkeys work while an X11 window has the keyboard focus; the compositor decides the rest.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

/// The banner's background colour, `#D93A00` (orange-red; white text on it has a contrast
/// ratio of about 4.6:1).
pub const BANNER_RGB: [u8; 3] = [0xD9, 0x3A, 0x00];

/// The banner's height in pixels.
pub const BANNER_HEIGHT: u16 = 28;

/// How often the banner checks that it is still the topmost window.
pub const RAISE_EVERY: Duration = Duration::from_millis(250);

/// Names and organisations longer than this many characters are cut (with "...").
const MAX_NAME_CHARS: usize = 64;

/// A customer hotkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hotkey {
    /// Ctrl+Alt+R: take keyboard and mouse control back from the operator.
    RevokeControl,
    /// Ctrl+Alt+Q: end the session.
    EndSession,
}

impl Hotkey {
    /// Both hotkeys, in the order the banner lists them.
    pub const ALL: [Hotkey; 2] = [Hotkey::RevokeControl, Hotkey::EndSession];

    /// The key combination as the customer reads it: `"Ctrl+Alt+R"`.
    pub fn keys(self) -> &'static str {
        match self {
            Hotkey::RevokeControl => "Ctrl+Alt+R",
            Hotkey::EndSession => "Ctrl+Alt+Q",
        }
    }

    /// What it does, for the banner: `"take back control"`.
    pub fn action(self) -> &'static str {
        match self {
            Hotkey::RevokeControl => "take back control",
            Hotkey::EndSession => "end session",
        }
    }

    /// A shorter form of [`Hotkey::action`] for narrow monitors.
    fn short_action(self) -> &'static str {
        match self {
            Hotkey::RevokeControl => "revoke",
            Hotkey::EndSession => "end",
        }
    }

    /// The lower-case keysym of the letter (XK_r, XK_q); the upper-case one is this minus 0x20.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn keysym(self) -> u32 {
        match self {
            Hotkey::RevokeControl => 0x72,
            Hotkey::EndSession => 0x71,
        }
    }
}

/// What the indicator tells the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndicatorEvent {
    /// The customer pressed a hotkey.
    Hotkey(Hotkey),
    /// Another program hid, moved or destroyed the banner (what it did); the banner is being
    /// put back.
    Hidden(&'static str),
    /// The banner is in place and showing again after [`IndicatorEvent::Hidden`].
    Shown,
    /// The hotkeys in effect changed (a keyboard mapping change, a grab another program holds).
    Hotkeys(Vec<Hotkey>),
    /// The banner is gone for good: its connection to the X server broke (why). A new
    /// [`Indicator`] has to be started.
    Lost(String),
}

/// What the banner says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndicatorText {
    /// The operator's verified display name.
    pub operator: String,
    /// The operator's organisation (may be empty).
    pub organisation: String,
    /// Whether the operator controls the keyboard and mouse now.
    pub in_control: bool,
    /// The connection to the operator broke and is being repaired (control is suspended).
    pub reconnecting: bool,
    /// Whether the operator's certificate says the session is recorded: the banner says
    /// "· recorded" (required) or "· may be recorded" (optional).
    pub recording: sightline_core::cert::RecordingMode,
}

impl IndicatorText {
    /// The banner's message without the "●" in front:
    /// `"Sightline: Alice (Example Ltd) is viewing your screen"`, or `"… is controlling your
    /// screen"` while the operator is in control, `"… is reconnecting to your screen"` while the
    /// connection to the operator is being repaired; `" · recorded"` follows when the session
    /// is recorded (`" · may be recorded"` when the operator may choose to). Control characters are removed, surrounding
    /// white space is trimmed, an empty organisation is left out and names longer than 64
    /// characters are cut with "...". The result is Unicode (fit for a terminal); the banner
    /// draws it in Latin-1, with `?` for the characters outside it.
    pub fn status_line(&self) -> String {
        self.line(true, true)
    }

    fn verb(&self) -> &'static str {
        if self.reconnecting {
            "reconnecting to"
        } else if self.in_control {
            "controlling"
        } else {
            "viewing"
        }
    }

    /// The message, with or without the "Sightline: " prefix and the organisation (the banner
    /// drops them on narrow monitors).
    fn line(&self, prefix: bool, organisation: bool) -> String {
        let operator = clean_name(&self.operator);
        let operator = if operator.is_empty() {
            "The operator".to_owned()
        } else {
            operator
        };
        let org = clean_name(&self.organisation);
        let verb = self.verb();
        let mut s = String::new();
        if prefix {
            s.push_str("Sightline: ");
        }
        s.push_str(&operator);
        if organisation && !org.is_empty() {
            s.push_str(" (");
            s.push_str(&org);
            s.push(')');
        }
        s.push_str(" is ");
        s.push_str(verb);
        s.push_str(" your screen");
        match self.recording {
            sightline_core::cert::RecordingMode::Off => {}
            sightline_core::cert::RecordingMode::Optional => s.push_str(" \u{b7} may be recorded"),
            sightline_core::cert::RecordingMode::Required => s.push_str(" \u{b7} recorded"),
        }
        s
    }
}

/// The keys part of the banner: `"Ctrl+Alt+R take back control · Ctrl+Alt+Q end session"`.
/// Only the hotkeys in `available` are listed, and the revoke key only while the operator is in
/// control. `short` uses the short action names.
fn keys_line(in_control: bool, available: &[Hotkey], short: bool) -> String {
    Hotkey::ALL
        .iter()
        .copied()
        .filter(|k| available.contains(k))
        .filter(|k| in_control || *k != Hotkey::RevokeControl)
        .map(|k| {
            let action = if short { k.short_action() } else { k.action() };
            format!("{} {action}", k.keys())
        })
        .collect::<Vec<_>>()
        .join(" \u{b7} ")
}

/// Removes control characters, trims, and cuts at [`MAX_NAME_CHARS`] characters.
fn clean_name(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).collect();
    let s = s.trim();
    if s.chars().count() <= MAX_NAME_CHARS {
        return s.to_owned();
    }
    let mut cut: String = s.chars().take(MAX_NAME_CHARS - 3).collect();
    cut.truncate(cut.trim_end().len());
    cut.push_str("...");
    cut
}

/// Encodes `s` for a core X font (ISO 8859-1): characters outside Latin-1 become `?`, control
/// characters (C0, DEL, C1) are removed.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .filter(|c| !c.is_control())
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// Where the banner's text goes, in pixels from the banner's left edge.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
struct Layout {
    /// The message (Latin-1), drawn at [`LEFT_TEXT_X`].
    left: Vec<u8>,
    /// The hotkeys (Latin-1), drawn at `right_x`.
    right: Vec<u8>,
    right_x: i32,
}

/// Margin at both ends of the banner.
const PAD: i32 = 8;
/// Diameter of the "●".
const DOT: i32 = 10;
/// Where the message starts (after the dot).
const LEFT_TEXT_X: i32 = PAD + DOT + 6;
/// The least space between the message and the keys.
const GAP: i32 = 24;
/// Core X text requests carry at most 255 bytes.
const MAX_TEXT_BYTES: usize = 255;

/// Lays the banner out for a `width`-pixel monitor; `measure` gives a Latin-1 string's width
/// in pixels. Tries, in order: everything; the message without the organisation; the short key
/// names; the message without "Sightline: "; and finally cuts the message with "...". The keys
/// are right-aligned.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn layout(
    text: &IndicatorText,
    available: &[Hotkey],
    width: u32,
    measure: &dyn Fn(&[u8]) -> u32,
) -> Layout {
    let width = i32::try_from(width).unwrap_or(i32::MAX);
    let px = |b: &[u8]| i32::try_from(measure(b)).unwrap_or(i32::MAX);
    let cap = |mut b: Vec<u8>| {
        b.truncate(MAX_TEXT_BYTES);
        b
    };
    let keys_full = cap(latin1(&keys_line(text.in_control, available, false)));
    let keys_short = cap(latin1(&keys_line(text.in_control, available, true)));
    let full = cap(latin1(&text.line(true, true)));
    let no_org = cap(latin1(&text.line(true, false)));
    let bare = cap(latin1(&text.line(false, false)));
    let place = |left: Vec<u8>, right: Vec<u8>| {
        let right_x = (width - PAD - px(&right)).max(LEFT_TEXT_X);
        Layout {
            left,
            right,
            right_x,
        }
    };
    let fits = |left: &[u8], right: &[u8]| {
        let gap = if right.is_empty() { 0 } else { GAP };
        LEFT_TEXT_X.saturating_add(px(left)).saturating_add(gap) <= width - PAD - px(right)
    };
    let candidates = [
        (&full, &keys_full),
        (&no_org, &keys_full),
        (&full, &keys_short),
        (&no_org, &keys_short),
        (&bare, &keys_short),
    ];
    for (left, right) in candidates {
        if fits(left, right) {
            return place(left.clone(), right.clone());
        }
    }
    // Cut the operator's name, keeping what they do; then cut the message from the end.
    let name = latin1(&clean_name(&text.operator));
    let suffix = latin1(&format!(" is {} your screen", text.verb()));
    for keep in (1..name.len()).rev() {
        let mut candidate = name[..keep].to_vec();
        while candidate.last() == Some(&b' ') {
            candidate.pop();
        }
        candidate.extend_from_slice(b"...");
        candidate.extend_from_slice(&suffix);
        candidate.truncate(MAX_TEXT_BYTES);
        if fits(&candidate, &keys_short) {
            return place(candidate, keys_short);
        }
    }
    let mut cut = bare.clone();
    while !cut.is_empty() {
        cut.pop();
        let mut candidate = cut.clone();
        while candidate.last() == Some(&b' ') {
            candidate.pop();
        }
        candidate.extend_from_slice(b"...");
        if fits(&candidate, &keys_short) {
            return place(candidate, keys_short);
        }
    }
    place(Vec::new(), keys_short)
}

/// Why the indicator could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum IndicatorError {
    /// No X11 display: `$DISPLAY` is unset or empty (a Wayland-only session, a service, an SSH
    /// login), or the platform is not Linux. The banner is X11-only for now.
    #[error(
        "the on-screen session banner needs an X11 display and DISPLAY is not set \
         (Wayland, macOS and Windows sessions are not supported yet)"
    )]
    NoX11Display,
    /// The X server did not accept the connection.
    #[error("cannot open the X display {display}: {source}")]
    Connect {
        /// The display name as given (`:99`), or `$DISPLAY`'s value.
        display: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The monitor area cannot hold the banner (zero width, or outside X's 16-bit coordinates).
    #[error("cannot show the banner on a monitor {width} pixels wide at {x},{y}")]
    Geometry {
        /// Left edge, desktop pixels.
        x: i32,
        /// Top edge, desktop pixels.
        y: i32,
        /// Width in pixels.
        width: u32,
    },
    /// The X server failed a request or the connection broke.
    #[error("X server request {what} failed: {source}")]
    Protocol {
        /// Which request.
        what: &'static str,
        /// The library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The indicator's thread could not be started.
    #[error("cannot start the session banner's thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// What the caller asks of the indicator's thread.
#[derive(Debug)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
enum Command {
    SetText(IndicatorText),
    Stop,
}

/// The banner on the shared monitor plus the customer's hotkeys; both go away on drop.
#[derive(Debug)]
pub struct Indicator {
    commands: mpsc::Sender<Command>,
    thread: Option<JoinHandle<()>>,
    /// The hotkeys in effect (grabbed), kept up to date by the thread.
    hotkeys: Arc<Mutex<Vec<Hotkey>>>,
}

impl Indicator {
    /// The banner window's name (WM_NAME and _NET_WM_NAME).
    pub const WINDOW_NAME: &'static str = "Sightline session indicator";

    /// The banner window's WM_CLASS (instance and class).
    pub const WINDOW_CLASS: &'static str = "sightline-indicator";

    /// Shows the banner at the top of the monitor area (`x`, `y`, `width` in desktop pixels: the
    /// capture [`Monitor`](crate::capture::Monitor)'s) on the X display named by `$DISPLAY`,
    /// and grabs the hotkeys; presses and the banner's fate are sent on `events`. Blocks for a
    /// few round trips to the
    /// X server. A hotkey another program holds is left out (with a warning), not an error.
    ///
    /// Errors: [`IndicatorError::NoX11Display`] without `$DISPLAY` and off Linux; the others
    /// when the X server cannot be reached or refuses the window.
    pub fn start(
        x: i32,
        y: i32,
        width: u32,
        text: IndicatorText,
        events: UnboundedSender<IndicatorEvent>,
    ) -> Result<Indicator, IndicatorError> {
        Self::start_on(None, x, y, width, text, events)
    }

    /// [`Indicator::start`] on X display `display` (`None`: `$DISPLAY`).
    pub fn start_on(
        display: Option<&str>,
        x: i32,
        y: i32,
        width: u32,
        text: IndicatorText,
        events: UnboundedSender<IndicatorEvent>,
    ) -> Result<Indicator, IndicatorError> {
        #[cfg(target_os = "linux")]
        {
            x11::start(display, x, y, width, text, events)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (display, x, y, width, text, events);
            Err(IndicatorError::NoX11Display)
        }
    }

    /// Changes what the banner says (redrawn within a few milliseconds).
    pub fn set_text(&self, text: IndicatorText) {
        if self.commands.send(Command::SetText(text)).is_err() {
            tracing::debug!("the session banner is gone; new text not shown");
        }
    }

    /// The hotkeys in effect now: those whose keys no other program had grabbed.
    pub fn hotkeys(&self) -> Vec<Hotkey> {
        match self.hotkeys.lock() {
            Ok(list) => list.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether the banner is still up: false once its X connection broke (the X server went
    /// away, or another client killed the connection), which the log explains.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Indicator {
    /// Unmaps and destroys the window and releases the grabs (on the thread, which then ends),
    /// and waits for the thread.
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::warn!("the session banner's thread panicked");
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod x11 {
    //! The X11 side: connection, window, drawing, grabs and the event loop.

    use std::collections::HashMap;
    use std::sync::mpsc::{self, TryRecvError};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use tokio::sync::mpsc::UnboundedSender;
    use x11rb::connection::{Connection, RequestConnection};
    use x11rb::protocol::shape::{self, ConnectionExt as _};
    use x11rb::protocol::xproto::{
        Arc as XArc, AtomEnum, ChangeGCAux, ClipOrdering, ConfigureWindowAux, ConnectionExt as _,
        CreateGCAux, CreateWindowAux, EventMask, Font, Gcontext, GrabMode, Keycode, Mapping,
        ModMask, Pixmap, PropMode, Rectangle, StackMode, Visibility, Window, WindowClass,
    };
    use x11rb::protocol::Event;
    use x11rb::rust_connection::RustConnection;
    use x11rb::wrapper::ConnectionExt as _;
    use x11rb::COPY_FROM_PARENT;

    use super::{
        layout, Command, Hotkey, Indicator, IndicatorError, IndicatorEvent, IndicatorText,
        BANNER_HEIGHT, BANNER_RGB, DOT, LEFT_TEXT_X, PAD, RAISE_EVERY,
    };

    /// How long the thread sleeps when there is nothing to do.
    const TICK: Duration = Duration::from_millis(15);
    /// The least time between two raises prompted by VisibilityNotify (two clients that both
    /// insist on the top would otherwise raise each other in a busy loop).
    const MIN_RAISE_GAP: Duration = Duration::from_millis(100);
    /// Core fonts tried in order; "fixed" exists on every X server.
    const FONTS: [&str; 3] = [
        "-misc-fixed-bold-r-normal--13-*-*-*-c-*-iso8859-1",
        "-misc-fixed-medium-r-normal--13-*-*-*-c-*-iso8859-1",
        "fixed",
    ];
    const XK_ALT_L: u32 = 0xffe9;
    const XK_ALT_R: u32 = 0xffea;
    const XK_NUM_LOCK: u32 = 0xff7f;

    fn proto<E>(what: &'static str) -> impl FnOnce(E) -> IndicatorError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        move |e| IndicatorError::Protocol {
            what,
            source: Box::new(e),
        }
    }

    pub(super) fn start(
        display: Option<&str>,
        x: i32,
        y: i32,
        width: u32,
        text: IndicatorText,
        events: UnboundedSender<IndicatorEvent>,
    ) -> Result<Indicator, IndicatorError> {
        let display = match display {
            Some(d) => d.to_owned(),
            None => match std::env::var("DISPLAY") {
                Ok(d) if !d.is_empty() => d,
                _ => return Err(IndicatorError::NoX11Display),
            },
        };
        let geometry = Geometry::new(x, y, width)?;
        let (conn, screen_num) =
            x11rb::connect(Some(&display)).map_err(|e| IndicatorError::Connect {
                display: display.clone(),
                source: Box::new(e),
            })?;
        let screen =
            conn.setup()
                .roots
                .get(screen_num)
                .cloned()
                .ok_or_else(|| IndicatorError::Connect {
                    display: display.clone(),
                    source: format!("the server has no screen {screen_num}").into(),
                })?;

        let [r, g, b] = BANNER_RGB;
        let banner_pixel = conn
            .alloc_color(
                screen.default_colormap,
                u16::from(r) * 257,
                u16::from(g) * 257,
                u16::from(b) * 257,
            )
            .map_err(proto("AllocColor"))?
            .reply()
            .map_err(proto("AllocColor"))?
            .pixel;
        let font = open_font(&conn)?;
        let metrics = FontMetrics::query(&conn, font)?;

        let pixmap = conn.generate_id().map_err(proto("CreatePixmap"))?;
        conn.create_pixmap(
            screen.root_depth,
            pixmap,
            screen.root,
            geometry.width,
            BANNER_HEIGHT,
        )
        .map_err(proto("CreatePixmap"))?
        .check()
        .map_err(proto("CreatePixmap"))?;
        let gc = conn.generate_id().map_err(proto("CreateGC"))?;
        conn.create_gc(
            gc,
            pixmap,
            &CreateGCAux::new()
                .foreground(screen.white_pixel)
                .background(banner_pixel)
                .font(font)
                .graphics_exposures(0),
        )
        .map_err(proto("CreateGC"))?
        .check()
        .map_err(proto("CreateGC"))?;

        let atoms = Atoms::intern(&conn)?;
        let shape_input = shape_input_available(&conn);
        let mut banner = Banner {
            conn,
            root: screen.root,
            geometry,
            window: x11rb::NONE,
            pixmap,
            gc,
            font,
            metrics,
            banner_pixel,
            text_pixel: screen.white_pixel,
            text,
            grabs: Grabs::default(),
            available: Arc::new(Mutex::new(Vec::new())),
            events,
            atoms,
            shape_input,
            mapped: false,
            misplaced: false,
            hidden: false,
        };
        banner.grab_keys()?;
        banner.render()?;
        banner.create_window(true)?;
        banner
            .conn
            .get_input_focus()
            .map_err(proto("GetInputFocus"))?
            .reply()
            .map_err(proto("GetInputFocus"))?;

        let available = Arc::clone(&banner.available);
        let (commands, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sightline-indicator".to_owned())
            .spawn(move || {
                let result = banner.run(&rx);
                banner.close();
                if let Err(e) = result {
                    tracing::warn!("the on-screen session banner stopped: {e}");
                    let _ = banner.events.send(IndicatorEvent::Lost(e.to_string()));
                }
            })
            .map_err(IndicatorError::Thread)?;
        Ok(Indicator {
            commands,
            thread: Some(thread),
            hotkeys: available,
        })
    }

    /// The banner's place in X's 16-bit coordinates.
    #[derive(Debug, Clone, Copy)]
    struct Geometry {
        x: i16,
        y: i16,
        width: u16,
    }

    impl Geometry {
        fn new(x: i32, y: i32, width: u32) -> Result<Geometry, IndicatorError> {
            let bad = || IndicatorError::Geometry { x, y, width };
            let g = Geometry {
                x: i16::try_from(x).map_err(|_| bad())?,
                y: i16::try_from(y).map_err(|_| bad())?,
                width: u16::try_from(width).map_err(|_| bad())?,
            };
            if g.width == 0 {
                return Err(bad());
            }
            Ok(g)
        }
    }

    /// Opens the first of [`FONTS`] the server has.
    fn open_font(conn: &RustConnection) -> Result<Font, IndicatorError> {
        let mut last = None;
        for name in FONTS {
            let id = conn.generate_id().map_err(proto("OpenFont"))?;
            match conn
                .open_font(id, name.as_bytes())
                .map_err(proto("OpenFont"))?
                .check()
            {
                Ok(()) => {
                    tracing::debug!("session banner font: {name}");
                    return Ok(id);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => proto("OpenFont")(e),
            None => IndicatorError::Protocol {
                what: "OpenFont",
                source: "no font to try".into(),
            },
        })
    }

    /// What the layout needs of the font: glyph widths and the line's ascent and descent.
    #[derive(Debug)]
    struct FontMetrics {
        ascent: i16,
        descent: i16,
        /// Width of bytes 0..=255 (8-bit text is row 0 of a matrix font).
        widths: [u32; 256],
    }

    impl FontMetrics {
        fn query(conn: &RustConnection, font: Font) -> Result<FontMetrics, IndicatorError> {
            let q = conn
                .query_font(font)
                .map_err(proto("QueryFont"))?
                .reply()
                .map_err(proto("QueryFont"))?;
            let fallback = u32::try_from(q.max_bounds.character_width.max(0)).unwrap_or(0);
            let mut widths = [fallback; 256];
            // 8-bit text addresses row 0; fonts without one draw nothing we could measure.
            if q.min_byte1 == 0 && !q.char_infos.is_empty() {
                for (byte, w) in widths.iter_mut().enumerate() {
                    let byte = u16::try_from(byte).unwrap_or(u16::MAX);
                    if byte < q.min_char_or_byte2 || byte > q.max_char_or_byte2 {
                        continue;
                    }
                    let i = usize::from(byte - q.min_char_or_byte2);
                    if let Some(info) = q.char_infos.get(i) {
                        *w = u32::try_from(info.character_width.max(0)).unwrap_or(0);
                    }
                }
            }
            Ok(FontMetrics {
                ascent: q.font_ascent,
                descent: q.font_descent,
                widths,
            })
        }

        fn measure(&self, text: &[u8]) -> u32 {
            text.iter().map(|&b| self.widths[usize::from(b)]).sum()
        }
    }

    /// The atoms the window's properties need.
    #[derive(Debug, Clone, Copy)]
    struct Atoms {
        utf8_string: u32,
        net_wm_name: u32,
        net_wm_window_type: u32,
        net_wm_window_type_notification: u32,
    }

    impl Atoms {
        fn intern(conn: &RustConnection) -> Result<Atoms, IndicatorError> {
            let names = [
                "UTF8_STRING",
                "_NET_WM_NAME",
                "_NET_WM_WINDOW_TYPE",
                "_NET_WM_WINDOW_TYPE_NOTIFICATION",
            ];
            let mut cookies = Vec::with_capacity(names.len());
            for name in names {
                cookies.push(
                    conn.intern_atom(false, name.as_bytes())
                        .map_err(proto("InternAtom"))?,
                );
            }
            let mut atoms = Vec::with_capacity(names.len());
            for cookie in cookies {
                atoms.push(cookie.reply().map_err(proto("InternAtom"))?.atom);
            }
            match atoms[..] {
                [utf8_string, net_wm_name, net_wm_window_type, net_wm_window_type_notification] => {
                    Ok(Atoms {
                        utf8_string,
                        net_wm_name,
                        net_wm_window_type,
                        net_wm_window_type_notification,
                    })
                }
                _ => Err(IndicatorError::Protocol {
                    what: "InternAtom",
                    source: "wrong number of atoms".into(),
                }),
            }
        }
    }

    /// Whether SHAPE 1.1 (input shapes) is there, to let the pointer through the banner.
    fn shape_input_available(conn: &RustConnection) -> bool {
        if !matches!(
            conn.extension_information(shape::X11_EXTENSION_NAME),
            Ok(Some(_))
        ) {
            return false;
        }
        match conn.shape_query_version().map(|c| c.reply()) {
            Ok(Ok(v)) => (v.major_version, v.minor_version) >= (1, 1),
            _ => false,
        }
    }

    /// The passive grabs in effect.
    #[derive(Debug, Default)]
    struct Grabs {
        /// Every (keycode, modifiers) grabbed, to release them.
        grabbed: Vec<(Keycode, ModMask)>,
        /// Which hotkey a grabbed keycode stands for.
        keys: HashMap<Keycode, Hotkey>,
        /// The keyboard mapping the grabs were made for.
        keyboard: Option<Keyboard>,
    }

    /// The keyboard facts the grabs need.
    #[derive(Debug, PartialEq, Eq)]
    struct Keyboard {
        /// Keycodes carrying each hotkey's letter.
        letters: Vec<(Hotkey, Vec<Keycode>)>,
        alt: ModMask,
        num_lock: ModMask,
    }

    impl Keyboard {
        fn read(conn: &RustConnection) -> Result<Keyboard, IndicatorError> {
            let setup = conn.setup();
            let (min, max) = (setup.min_keycode, setup.max_keycode);
            let count = u8::try_from(u16::from(max.saturating_sub(min)) + 1).unwrap_or(u8::MAX);
            let map = conn
                .get_keyboard_mapping(min, count)
                .map_err(proto("GetKeyboardMapping"))?
                .reply()
                .map_err(proto("GetKeyboardMapping"))?;
            let per = usize::from(map.keysyms_per_keycode.max(1));
            let keycodes_with = |syms: &[u32]| -> Vec<Keycode> {
                map.keysyms
                    .chunks(per)
                    .enumerate()
                    .filter(|(_, row)| row.iter().any(|s| syms.contains(s)))
                    .filter_map(|(i, _)| u8::try_from(i).ok().and_then(|i| min.checked_add(i)))
                    .collect()
            };
            let letters = Hotkey::ALL
                .iter()
                .map(|&k| (k, keycodes_with(&[k.keysym(), k.keysym() - 0x20])))
                .collect();

            let mods = conn
                .get_modifier_mapping()
                .map_err(proto("GetModifierMapping"))?
                .reply()
                .map_err(proto("GetModifierMapping"))?;
            let per_mod = usize::from(mods.keycodes_per_modifier().max(1));
            let alt_keys = keycodes_with(&[XK_ALT_L, XK_ALT_R]);
            let num_keys = keycodes_with(&[XK_NUM_LOCK]);
            let bits = [
                ModMask::SHIFT,
                ModMask::LOCK,
                ModMask::CONTROL,
                ModMask::M1,
                ModMask::M2,
                ModMask::M3,
                ModMask::M4,
                ModMask::M5,
            ];
            let modifier_of = |keys: &[Keycode]| {
                mods.keycodes
                    .chunks(per_mod)
                    .zip(bits)
                    .skip(3) // Shift, Lock and Control are fixed.
                    .find(|(codes, _)| codes.iter().any(|c| *c != 0 && keys.contains(c)))
                    .map(|(_, bit)| bit)
            };
            Ok(Keyboard {
                letters,
                alt: modifier_of(&alt_keys).unwrap_or(ModMask::M1),
                num_lock: modifier_of(&num_keys).unwrap_or(ModMask::M2),
            })
        }
    }

    /// The banner's state, owned by the thread.
    #[derive(Debug)]
    struct Banner {
        conn: RustConnection,
        root: Window,
        geometry: Geometry,
        window: Window,
        /// The banner's picture; also the window's background, so the server repaints exposed
        /// parts itself.
        pixmap: Pixmap,
        gc: Gcontext,
        font: Font,
        metrics: FontMetrics,
        banner_pixel: u32,
        text_pixel: u32,
        text: IndicatorText,
        grabs: Grabs,
        available: Arc<Mutex<Vec<Hotkey>>>,
        events: UnboundedSender<IndicatorEvent>,
        atoms: Atoms,
        shape_input: bool,
        /// The window is mapped (MapNotify seen, no UnmapNotify since).
        mapped: bool,
        /// Another program moved or resized it, and it is not back in place yet.
        misplaced: bool,
        /// The agent was told the banner is hidden and not yet that it shows again.
        hidden: bool,
    }

    impl Banner {
        fn available(&self) -> Vec<Hotkey> {
            match self.available.lock() {
                Ok(list) => list.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            }
        }

        /// Grabs the hotkeys on the root window for the keyboard mapping now; a hotkey whose
        /// grab fails (another client holds one of its combinations) is left out with a
        /// warning. Returns whether the grabs changed: nothing is done while the keycodes and
        /// modifiers stay the same (the server also sends MappingNotify whenever input switches
        /// between devices, e.g. between the keyboard and the operator's injected keys). Keys
        /// that stay grabbed are never released in between, so no press slips through.
        fn grab_keys(&mut self) -> Result<bool, IndicatorError> {
            let keyboard = Keyboard::read(&self.conn)?;
            if self.grabs.keyboard.as_ref() == Some(&keyboard) {
                return Ok(false);
            }
            let old = std::mem::take(&mut self.grabs.grabbed);
            self.grabs.keys.clear();
            let base = ModMask::CONTROL | keyboard.alt;
            let locks = [
                ModMask::from(0u16),
                ModMask::LOCK,
                keyboard.num_lock,
                ModMask::LOCK | keyboard.num_lock,
            ];
            let mut available = Vec::new();
            for (hotkey, keycodes) in &keyboard.letters {
                if keycodes.is_empty() {
                    tracing::warn!(
                        "no key produces the letter for {} in this keyboard layout; \
                         that hotkey is not available",
                        hotkey.keys()
                    );
                    continue;
                }
                let mut combos = Vec::new();
                for &code in keycodes {
                    for &lock in &locks {
                        combos.push((code, base | lock));
                    }
                }
                let mut cookies = Vec::with_capacity(combos.len());
                for &(code, mods) in &combos {
                    cookies.push(
                        self.conn
                            .grab_key(
                                true,
                                self.root,
                                mods,
                                code,
                                GrabMode::ASYNC,
                                GrabMode::ASYNC,
                            )
                            .map_err(proto("GrabKey"))?,
                    );
                }
                let mut ok = Vec::new();
                let mut failed = None;
                for (cookie, combo) in cookies.into_iter().zip(&combos) {
                    match cookie.check() {
                        Ok(()) => ok.push(*combo),
                        Err(x11rb::errors::ReplyError::X11Error(e)) => failed = Some(e),
                        Err(e) => return Err(proto("GrabKey")(e)),
                    }
                }
                if let Some(e) = failed {
                    tracing::warn!(
                        "another program holds {} ({:?}); that hotkey is not available",
                        hotkey.keys(),
                        e.error_kind
                    );
                    for (code, mods) in ok {
                        self.conn
                            .ungrab_key(code, self.root, mods)
                            .map_err(proto("UngrabKey"))?;
                    }
                    continue;
                }
                for &code in keycodes {
                    self.grabs.keys.insert(code, *hotkey);
                }
                self.grabs.grabbed.extend(ok);
                available.push(*hotkey);
            }
            for (code, mods) in old {
                if !self.grabs.grabbed.contains(&(code, mods)) {
                    self.conn
                        .ungrab_key(code, self.root, mods)
                        .map_err(proto("UngrabKey"))?;
                }
            }
            self.grabs.keyboard = Some(keyboard);
            match self.available.lock() {
                Ok(mut list) => *list = available,
                Err(poisoned) => *poisoned.into_inner() = available,
            }
            Ok(true)
        }

        fn ungrab_keys(&mut self) -> Result<(), IndicatorError> {
            for (code, mods) in std::mem::take(&mut self.grabs.grabbed) {
                self.conn
                    .ungrab_key(code, self.root, mods)
                    .map_err(proto("UngrabKey"))?;
            }
            self.grabs.keys.clear();
            self.grabs.keyboard = None;
            Ok(())
        }

        /// Draws the banner into its pixmap and repaints the window from it.
        fn render(&self) -> Result<(), IndicatorError> {
            let width = self.geometry.width;
            let height = BANNER_HEIGHT;
            let l = layout(
                &self.text,
                &self.available(),
                u32::from(width),
                &|b: &[u8]| self.metrics.measure(b),
            );
            let c = &self.conn;
            c.change_gc(self.gc, &ChangeGCAux::new().foreground(self.banner_pixel))
                .map_err(proto("ChangeGC"))?;
            c.poly_fill_rectangle(
                self.pixmap,
                self.gc,
                &[Rectangle {
                    x: 0,
                    y: 0,
                    width,
                    height,
                }],
            )
            .map_err(proto("PolyFillRectangle"))?;
            c.change_gc(self.gc, &ChangeGCAux::new().foreground(self.text_pixel))
                .map_err(proto("ChangeGC"))?;
            let h = i32::from(height);
            let dot = u16::try_from(DOT).unwrap_or(10);
            c.poly_fill_arc(
                self.pixmap,
                self.gc,
                &[XArc {
                    x: i16::try_from(PAD).unwrap_or(8),
                    y: i16::try_from((h - DOT) / 2).unwrap_or(0),
                    width: dot,
                    height: dot,
                    angle1: 0,
                    angle2: 360 * 64,
                }],
            )
            .map_err(proto("PolyFillArc"))?;
            let (ascent, descent) = (
                i32::from(self.metrics.ascent),
                i32::from(self.metrics.descent),
            );
            let baseline = i16::try_from((h + ascent - descent) / 2).unwrap_or(0);
            for (x, s) in [(LEFT_TEXT_X, &l.left), (l.right_x, &l.right)] {
                if s.is_empty() {
                    continue;
                }
                let x = i16::try_from(x).unwrap_or(i16::MAX);
                let s = &s[..s.len().min(super::MAX_TEXT_BYTES)];
                c.image_text8(self.pixmap, self.gc, x, baseline, s)
                    .map_err(proto("ImageText8"))?;
            }
            if self.window != x11rb::NONE {
                c.clear_area(false, self.window, 0, 0, 0, 0)
                    .map_err(proto("ClearArea"))?;
            }
            Ok(())
        }

        /// Creates, names and maps the banner window (again, after another client destroyed
        /// it). With `check`, waits for the server to accept it.
        fn create_window(&mut self, check: bool) -> Result<(), IndicatorError> {
            let c = &self.conn;
            let window = c.generate_id().map_err(proto("CreateWindow"))?;
            let g = self.geometry;
            let aux = CreateWindowAux::new()
                .background_pixmap(self.pixmap)
                .border_pixel(self.banner_pixel)
                .override_redirect(1)
                .event_mask(
                    EventMask::EXPOSURE
                        | EventMask::VISIBILITY_CHANGE
                        | EventMask::STRUCTURE_NOTIFY,
                );
            let cookie = c
                .create_window(
                    COPY_FROM_PARENT as u8,
                    window,
                    self.root,
                    g.x,
                    g.y,
                    g.width,
                    BANNER_HEIGHT,
                    0,
                    WindowClass::INPUT_OUTPUT,
                    COPY_FROM_PARENT,
                    &aux,
                )
                .map_err(proto("CreateWindow"))?;
            if check {
                cookie.check().map_err(proto("CreateWindow"))?;
            }
            self.window = window;
            let name = Indicator::WINDOW_NAME.as_bytes();
            c.change_property8(
                PropMode::REPLACE,
                window,
                AtomEnum::WM_NAME,
                AtomEnum::STRING,
                name,
            )
            .map_err(proto("ChangeProperty"))?;
            c.change_property8(
                PropMode::REPLACE,
                window,
                self.atoms.net_wm_name,
                self.atoms.utf8_string,
                name,
            )
            .map_err(proto("ChangeProperty"))?;
            let class = format!("{0}\0{0}\0", Indicator::WINDOW_CLASS);
            c.change_property8(
                PropMode::REPLACE,
                window,
                AtomEnum::WM_CLASS,
                AtomEnum::STRING,
                class.as_bytes(),
            )
            .map_err(proto("ChangeProperty"))?;
            c.change_property32(
                PropMode::REPLACE,
                window,
                self.atoms.net_wm_window_type,
                AtomEnum::ATOM,
                &[self.atoms.net_wm_window_type_notification],
            )
            .map_err(proto("ChangeProperty"))?;
            if self.shape_input {
                // An empty input region: clicks reach whatever lies below the banner.
                c.shape_rectangles(
                    shape::SO::SET,
                    shape::SK::INPUT,
                    ClipOrdering::UNSORTED,
                    window,
                    0,
                    0,
                    &[],
                )
                .map_err(proto("ShapeRectangles"))?;
            }
            c.map_window(window).map_err(proto("MapWindow"))?;
            self.raise()?;
            Ok(())
        }

        fn raise(&self) -> Result<(), IndicatorError> {
            self.conn
                .configure_window(
                    self.window,
                    &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE),
                )
                .map_err(proto("ConfigureWindow"))?;
            Ok(())
        }

        /// Raises the banner unless it is already the topmost child of the root window (a
        /// needless restack would still send ConfigureNotify to every window manager).
        fn keep_on_top(&self) -> Result<(), IndicatorError> {
            let tree = self
                .conn
                .query_tree(self.root)
                .map_err(proto("QueryTree"))?
                .reply()
                .map_err(proto("QueryTree"))?;
            if tree.children.last() != Some(&self.window) {
                self.raise()?;
            }
            Ok(())
        }

        /// The event loop; returns when told to stop or when the caller's side is gone.
        fn run(&mut self, commands: &mpsc::Receiver<Command>) -> Result<(), IndicatorError> {
            let mut next_check = Instant::now() + RAISE_EVERY;
            let mut last_raise: Option<Instant> = None;
            let mut covered = false;
            loop {
                loop {
                    match commands.try_recv() {
                        Ok(Command::SetText(text)) => {
                            if text != self.text {
                                self.text = text;
                                self.render()?;
                            }
                        }
                        Ok(Command::Stop) | Err(TryRecvError::Disconnected) => return Ok(()),
                        Err(TryRecvError::Empty) => break,
                    }
                }
                while let Some(event) = self.conn.poll_for_event().map_err(proto("events"))? {
                    covered |= self.handle(event)?;
                }
                let now = Instant::now();
                let may_raise = last_raise.is_none_or(|t| now.duration_since(t) >= MIN_RAISE_GAP);
                if covered && may_raise {
                    self.raise()?;
                    covered = false;
                    last_raise = Some(now);
                    next_check = now + RAISE_EVERY;
                } else if now >= next_check {
                    self.keep_on_top()?;
                    next_check = now + RAISE_EVERY;
                }
                self.conn.flush().map_err(proto("flush"))?;
                std::thread::sleep(TICK);
            }
        }

        /// Acts on one event; returns whether the banner is covered and should be raised.
        fn handle(&mut self, event: Event) -> Result<bool, IndicatorError> {
            match event {
                Event::KeyPress(e) => {
                    if let Some(&hotkey) = self.grabs.keys.get(&e.detail) {
                        tracing::info!("hotkey {} pressed", hotkey.keys());
                        self.tell(IndicatorEvent::Hotkey(hotkey));
                    }
                }
                Event::MapNotify(e) if e.window == self.window => {
                    self.mapped = true;
                    self.shown_again();
                }
                Event::VisibilityNotify(e) if e.window == self.window => {
                    return Ok(e.state != Visibility::UNOBSCURED);
                }
                Event::Expose(e) if e.window == self.window => {
                    self.conn
                        .clear_area(
                            false,
                            self.window,
                            i16::try_from(e.x).unwrap_or(0),
                            i16::try_from(e.y).unwrap_or(0),
                            e.width,
                            e.height,
                        )
                        .map_err(proto("ClearArea"))?;
                }
                Event::UnmapNotify(e) if e.window == self.window => {
                    tracing::warn!("another program hid the session banner; showing it again");
                    self.mapped = false;
                    self.hide("hidden");
                    self.conn
                        .map_window(self.window)
                        .map_err(proto("MapWindow"))?;
                    return Ok(true);
                }
                Event::DestroyNotify(e) if e.window == self.window => {
                    tracing::warn!("another program destroyed the session banner; recreating it");
                    self.mapped = false;
                    self.hide("destroyed");
                    self.create_window(false)?;
                }
                Event::ConfigureNotify(e) if e.window == self.window => {
                    let g = self.geometry;
                    if (e.x, e.y, e.width, e.height) == (g.x, g.y, g.width, BANNER_HEIGHT)
                        && e.border_width == 0
                    {
                        self.misplaced = false;
                        self.shown_again();
                    } else {
                        tracing::warn!("another program moved the session banner; moving it back");
                        self.misplaced = true;
                        self.hide("moved");
                        self.conn
                            .configure_window(
                                self.window,
                                &ConfigureWindowAux::new()
                                    .x(i32::from(g.x))
                                    .y(i32::from(g.y))
                                    .width(u32::from(g.width))
                                    .height(u32::from(BANNER_HEIGHT))
                                    .border_width(0)
                                    .stack_mode(StackMode::ABOVE),
                            )
                            .map_err(proto("ConfigureWindow"))?;
                    }
                }
                Event::MappingNotify(e) => self.mapping_changed(e.request)?,
                Event::Error(e) => {
                    tracing::warn!("X error on the session banner's connection: {e:?}");
                }
                _ => {}
            }
            Ok(false)
        }

        /// Follows a keyboard or modifier mapping change.
        fn mapping_changed(&mut self, request: Mapping) -> Result<(), IndicatorError> {
            let before = self.available();
            if request != Mapping::POINTER && self.grab_keys()? {
                tracing::debug!("keyboard mapping changed; hotkeys grabbed again");
                self.render()?;
                let now = self.available();
                if now != before {
                    self.tell(IndicatorEvent::Hotkeys(now));
                }
            }
            Ok(())
        }

        fn tell(&self, event: IndicatorEvent) {
            if self.events.send(event).is_err() {
                tracing::debug!("nobody listens to the session banner any more");
            }
        }

        /// Another program hid, destroyed or moved the banner (`what`).
        fn hide(&mut self, what: &'static str) {
            if !self.hidden {
                self.hidden = true;
                self.tell(IndicatorEvent::Hidden(what));
            }
        }

        /// Tells the agent the banner shows again once it is mapped and in place.
        fn shown_again(&mut self) {
            if self.hidden && self.mapped && !self.misplaced {
                self.hidden = false;
                tracing::info!("the session banner shows again");
                self.tell(IndicatorEvent::Shown);
            }
        }

        /// Releases the grabs and removes the window; waits until the server has done it.
        fn close(&mut self) {
            let result = (|| -> Result<(), IndicatorError> {
                self.ungrab_keys()?;
                let c = &self.conn;
                c.unmap_window(self.window).map_err(proto("UnmapWindow"))?;
                c.destroy_window(self.window)
                    .map_err(proto("DestroyWindow"))?;
                c.free_gc(self.gc).map_err(proto("FreeGC"))?;
                c.free_pixmap(self.pixmap).map_err(proto("FreePixmap"))?;
                c.close_font(self.font).map_err(proto("CloseFont"))?;
                c.get_input_focus()
                    .map_err(proto("GetInputFocus"))?
                    .reply()
                    .map_err(proto("GetInputFocus"))?;
                Ok(())
            })();
            if let Err(e) = result {
                tracing::debug!("removing the session banner: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn the_banner_says_when_the_session_is_recorded() {
        use sightline_core::cert::RecordingMode;
        let mut t = text("Alice", "Help Desk", false);
        assert!(!t.status_line().contains("recorded"));
        t.recording = RecordingMode::Required;
        assert_eq!(
            t.status_line(),
            "Sightline: Alice (Help Desk) is viewing your screen \u{b7} recorded"
        );
        t.recording = RecordingMode::Optional;
        assert!(t.status_line().ends_with("\u{b7} may be recorded"));
    }

    fn text(operator: &str, organisation: &str, in_control: bool) -> IndicatorText {
        IndicatorText {
            operator: operator.to_owned(),
            organisation: organisation.to_owned(),
            in_control,
            reconnecting: false,
            recording: Default::default(),
        }
    }

    /// A monospace font 7 pixels per character (like -misc-fixed-bold-…-13).
    fn mono(b: &[u8]) -> u32 {
        u32::try_from(b.len()).unwrap() * 7
    }

    fn s(b: &[u8]) -> String {
        b.iter().map(|&c| char::from(c)).collect()
    }

    #[test]
    fn the_banner_says_when_the_connection_is_being_repaired() {
        let mut t = text("Alice", "Example Ltd", true);
        t.reconnecting = true;
        assert_eq!(
            t.status_line(),
            "Sightline: Alice (Example Ltd) is reconnecting to your screen"
        );
    }

    #[test]
    fn latin1_keeps_latin1_and_marks_the_rest() {
        assert_eq!(
            latin1("Zoë Müller · 50 €"),
            b"Zo\xeb M\xfcller \xb7 50 ?".to_vec()
        );
        assert_eq!(latin1("Łukasz 李"), b"?ukasz ?".to_vec());
        // Emoji (outside the BMP) are one character, one '?'.
        assert_eq!(latin1("a😀b"), b"a?b".to_vec());
        // Bidi overrides cannot reorder the banner: they become '?'.
        assert_eq!(latin1("x\u{202e}y"), b"x?y".to_vec());
    }

    #[test]
    fn latin1_strips_control_characters() {
        assert_eq!(
            latin1("a\nb\tc\u{7}d\u{7f}e\u{85}f\u{9b}g"),
            b"abcdefg".to_vec()
        );
        assert_eq!(latin1("\u{1b}[31mred"), b"[31mred".to_vec());
    }

    #[test]
    fn status_line_says_who_and_what() {
        assert_eq!(
            text("Alice Example", "Example Ltd", false).status_line(),
            "Sightline: Alice Example (Example Ltd) is viewing your screen"
        );
        assert_eq!(
            text("Alice Example", "Example Ltd", true).status_line(),
            "Sightline: Alice Example (Example Ltd) is controlling your screen"
        );
        assert_eq!(
            text(" Bob\n", "  ", false).status_line(),
            "Sightline: Bob is viewing your screen"
        );
        assert_eq!(
            text("", "", true).status_line(),
            "Sightline: The operator is controlling your screen"
        );
        let long = "x".repeat(100);
        let line = text(&long, "Org", false).status_line();
        assert_eq!(
            line,
            format!(
                "Sightline: {}... (Org) is viewing your screen",
                "x".repeat(61)
            )
        );
    }

    #[test]
    fn keys_line_lists_the_grabbed_keys_and_revoke_only_in_control() {
        let both = [Hotkey::RevokeControl, Hotkey::EndSession];
        assert_eq!(
            keys_line(true, &both, false),
            "Ctrl+Alt+R take back control \u{b7} Ctrl+Alt+Q end session"
        );
        assert_eq!(keys_line(false, &both, false), "Ctrl+Alt+Q end session");
        assert_eq!(
            keys_line(true, &both, true),
            "Ctrl+Alt+R revoke \u{b7} Ctrl+Alt+Q end"
        );
        assert_eq!(
            keys_line(true, &[Hotkey::EndSession], false),
            "Ctrl+Alt+Q end session"
        );
        assert_eq!(keys_line(true, &[], false), "");
    }

    #[test]
    fn layout_right_aligns_the_keys_on_a_wide_monitor() {
        let both = Hotkey::ALL;
        let l = layout(&text("Alice", "Example Ltd", true), &both, 1920, &mono);
        assert_eq!(
            s(&l.left),
            "Sightline: Alice (Example Ltd) is controlling your screen"
        );
        assert_eq!(
            s(&l.right),
            "Ctrl+Alt+R take back control \u{b7} Ctrl+Alt+Q end session"
        );
        assert_eq!(l.right_x, 1920 - PAD - mono(&l.right) as i32);
        let l = layout(&text("Alice", "Example Ltd", false), &both, 1920, &mono);
        assert_eq!(s(&l.right), "Ctrl+Alt+Q end session");
    }

    #[test]
    fn layout_shortens_on_narrow_monitors_and_never_overlaps() {
        let t = text("Alice Example", "Example Support Ltd", true);
        let both = Hotkey::ALL;
        let l = layout(&t, &both, 800, &mono);
        assert_eq!(
            s(&l.left),
            "Sightline: Alice Example is controlling your screen"
        );
        assert_eq!(
            s(&l.right),
            "Ctrl+Alt+R take back control \u{b7} Ctrl+Alt+Q end session"
        );
        let l = layout(&t, &both, 640, &mono);
        assert_eq!(s(&l.left), "Alice Example is controlling your screen");
        assert_eq!(s(&l.right), "Ctrl+Alt+R revoke \u{b7} Ctrl+Alt+Q end");
        let l = layout(&t, &both, 560, &mono);
        assert_eq!(s(&l.left), "Alice Ex... is controlling your screen");
        let l = layout(&t, &both, 400, &mono);
        assert_eq!(s(&l.left), "Alice Exampl...");
        for width in [200u32, 300, 400, 500, 640, 800, 1024, 1280] {
            let l = layout(&t, &both, width, &mono);
            if !l.left.is_empty() {
                assert!(
                    LEFT_TEXT_X + mono(&l.left) as i32 + GAP <= l.right_x,
                    "overlap at {width}: {l:?}"
                );
            }
            assert!(l.right_x >= LEFT_TEXT_X);
        }
        // Far too narrow for any message: only the keys.
        let l = layout(&t, &both, 120, &mono);
        assert!(l.left.is_empty());
        assert_eq!(s(&l.right), "Ctrl+Alt+R revoke \u{b7} Ctrl+Alt+Q end");
    }

    #[test]
    fn layout_draws_latin1_bytes_within_the_request_limit() {
        let t = text("Zoë 李", "Ü", false);
        let l = layout(&t, &Hotkey::ALL, 1920, &mono);
        assert_eq!(
            l.left,
            b"Sightline: Zo\xeb ? (\xdc) is viewing your screen".to_vec()
        );
        let huge = "é".repeat(1000);
        let l = layout(&text(&huge, &huge, true), &Hotkey::ALL, 60_000, &mono);
        assert!(l.left.len() <= MAX_TEXT_BYTES && l.right.len() <= MAX_TEXT_BYTES);
    }

    #[test]
    fn hotkey_names() {
        assert_eq!(Hotkey::RevokeControl.keys(), "Ctrl+Alt+R");
        assert_eq!(Hotkey::EndSession.keys(), "Ctrl+Alt+Q");
        assert_eq!(Hotkey::RevokeControl.keysym(), 0x72);
        assert_eq!(Hotkey::EndSession.keysym(), 0x71);
    }
}
