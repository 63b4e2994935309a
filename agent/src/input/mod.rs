//! Input injection: applies the operator's [`InputEvent`]s to the local session with enigo
//! (XTest through x11rb on Linux; SendInput on Windows; CGEvent on macOS).
//!
//! - Pointer positions arrive normalised to the captured monitor and land on its pixels.
//! - Keys arrive as *physical* keys (W3C `KeyboardEvent.code`) and are injected by raw key
//!   number ([`keymap`], per-platform numbering in `native`), so the local layout decides the
//!   character; text the operator's layout produced without a matching key arrives as `Text`.
//! - Every key and button this injector holds down is tracked, so [`Injector::release_all`]
//!   (and `Drop`) can lift them when a session ends mid-press: no stuck Shift after a disconnect.
//! - Text goes in one character at a time, so a stop ([`Injector::apply_until`]) takes effect
//!   between two characters, not after the whole text.
//! - The operator cannot press the customer's hotkeys ([`hotkeys`]).

mod hotkeys;
pub mod keymap;
mod native;

use std::collections::BTreeSet;
use std::fmt;

use enigo::{Axis, Button, Coordinate, Direction, Enigo, Keyboard, Mouse, Settings};
use sightline_core::messages::{InputEvent, MouseButton};

use crate::capture::Monitor;

/// The longest `Text` event accepted, in characters: X11 types text one mapped keysym at a time
/// with a delay each, so a huge paste would block the session for minutes.
pub const MAX_TEXT_CHARS: usize = 1024;
/// Wheel events beyond this many lines per event are clamped (a hostile or buggy peer must not
/// queue millions of clicks).
const MAX_WHEEL_LINES: f32 = 50.0;

/// Why an input event was not injected.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The platform's input injection could not be opened (no X display, no permission).
    #[error("cannot open input injection on {target}: {reason}")]
    Connect {
        /// Where: `the X display :99`, or `this session` for the default.
        target: String,
        /// enigo's reason.
        reason: String,
    },
    /// The key name is not a W3C `KeyboardEvent.code` this agent maps (the caller logs it and
    /// drops the event).
    #[error("unknown key {0:?}")]
    UnknownKey(String),
    /// The key exists but this platform's keyboard has no such key.
    #[error("key {0} does not exist on this platform")]
    NoSuchKeyHere(&'static str),
    /// A pointer position or wheel delta was NaN or infinite.
    #[error("{0} is not a finite number")]
    NotFinite(&'static str),
    /// A `Text` event longer than [`MAX_TEXT_CHARS`].
    #[error("text of {0} characters is longer than the {MAX_TEXT_CHARS} accepted")]
    TextTooLong(usize),
    /// The platform refused the event.
    #[error("injecting input failed: {0}")]
    Inject(#[from] enigo::InputError),
    /// Control ended while the event was being injected; the rest of it was not.
    #[error("control ended while injecting")]
    Stopped,
    /// The key or text would press one of the customer's hotkeys (Ctrl+Alt+R, Ctrl+Alt+Q).
    #[error("the operator may not press the customer's hotkeys")]
    CustomerHotkey,
}

/// Injects input for one captured monitor.
pub struct Injector {
    enigo: Enigo,
    /// The monitor's rectangle in desktop pixels.
    origin: (i32, i32),
    size: (u32, u32),
    /// Raw key numbers pressed and not yet released.
    held_keys: BTreeSet<u16>,
    /// Buttons pressed and not yet released.
    held_buttons: Vec<MouseButton>,
    /// Wheel fractions not yet sent as whole lines (x, y).
    wheel: (f32, f32),
    /// Keeps the operator off the customer's hotkeys.
    guard: hotkeys::HotkeyGuard,
}

impl fmt::Debug for Injector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Injector")
            .field("origin", &self.origin)
            .field("size", &self.size)
            .field("held_keys", &self.held_keys)
            .field("held_buttons", &self.held_buttons)
            .finish_non_exhaustive()
    }
}

impl Injector {
    /// Opens injection into this session (`$DISPLAY` on X11) for `monitor`'s geometry.
    pub fn new(monitor: &Monitor) -> Result<Self, InputError> {
        Self::with_display(monitor, None)
    }

    /// As [`Injector::new`], on X display `display` (`":99"`) instead of `$DISPLAY`; other
    /// platforms ignore it.
    pub fn with_display(monitor: &Monitor, display: Option<&str>) -> Result<Self, InputError> {
        let settings = Settings {
            x11_display: display.map(str::to_owned),
            // We track and release what we pressed ourselves (see `release_all`).
            release_keys_when_dropped: false,
            ..Settings::default()
        };
        let enigo = Enigo::new(&settings).map_err(|e| InputError::Connect {
            target: display.map_or_else(
                || "this session".to_owned(),
                |d| format!("the X display {d}"),
            ),
            reason: e.to_string(),
        })?;
        let mut injector = Injector {
            enigo,
            origin: (0, 0),
            size: (1, 1),
            held_keys: BTreeSet::new(),
            held_buttons: Vec::new(),
            wheel: (0.0, 0.0),
            guard: hotkeys::HotkeyGuard::new(display),
        };
        injector.set_monitor(monitor);
        Ok(injector)
    }

    /// Follows the captured monitor when it moves or resizes.
    pub fn set_monitor(&mut self, monitor: &Monitor) {
        self.origin = (monitor.x, monitor.y);
        self.size = (monitor.width.max(1), monitor.height.max(1));
    }

    /// Applies one event from the operator.
    pub fn apply(&mut self, event: &InputEvent) -> Result<(), InputError> {
        self.apply_until(event, &mut || false)
    }

    /// Applies one event from the operator, calling `keystroke` before each keystroke it
    /// makes (a key press, each character of a text): the caller may wait there (pacing), and
    /// once it answers `true` (stop) the rest is dropped and [`InputError::Stopped`] returned.
    pub fn apply_until(
        &mut self,
        event: &InputEvent,
        keystroke: &mut dyn FnMut() -> bool,
    ) -> Result<(), InputError> {
        match event {
            InputEvent::PointerMove { x, y } => {
                let (px, py) = self.to_pixels(*x, *y)?;
                self.enigo.move_mouse(px, py, Coordinate::Abs)?;
            }
            InputEvent::Button { button, pressed } => {
                if !*pressed && !self.held_buttons.contains(button) {
                    // As for keys: never lift a button the operator did not press.
                    return Ok(());
                }
                self.enigo
                    .button(enigo_button(*button), direction(*pressed))?;
                self.held_buttons.retain(|b| b != button);
                if *pressed {
                    self.held_buttons.push(*button);
                }
            }
            InputEvent::Wheel { dx, dy } => {
                if !dx.is_finite() || !dy.is_finite() {
                    return Err(InputError::NotFinite("the wheel delta"));
                }
                let lines_x = take_whole_lines(&mut self.wheel.0, *dx);
                let lines_y = take_whole_lines(&mut self.wheel.1, *dy);
                if lines_x != 0 {
                    self.enigo.scroll(lines_x, Axis::Horizontal)?;
                }
                if lines_y != 0 {
                    self.enigo.scroll(lines_y, Axis::Vertical)?;
                }
            }
            InputEvent::Key { key, pressed } => {
                let def = keymap::lookup(key).ok_or_else(|| InputError::UnknownKey(key.clone()))?;
                let raw = native::raw_keycode(&def).ok_or(InputError::NoSuchKeyHere(def.code))?;
                if *pressed
                    && self.guard.modifiers_held(&self.held_keys)
                    && self.guard.is_hotkey_letter(raw)
                {
                    return Err(InputError::CustomerHotkey);
                }
                if !*pressed && !self.held_keys.contains(&raw) {
                    // Not pressed by the operator (or pressed and dropped): a release would
                    // lift a key the customer may be holding.
                    return Ok(());
                }
                if *pressed && keystroke() {
                    return Err(InputError::Stopped);
                }
                self.enigo.raw(raw, direction(*pressed))?;
                if *pressed {
                    self.held_keys.insert(raw);
                } else {
                    self.held_keys.remove(&raw);
                }
            }
            InputEvent::Text { text } => {
                let chars = text.chars().count();
                if chars > MAX_TEXT_CHARS {
                    return Err(InputError::TextTooLong(chars));
                }
                if self.guard.modifiers_held(&self.held_keys) {
                    return Err(InputError::CustomerHotkey);
                }
                let mut one = [0u8; 4];
                for c in text.chars() {
                    if keystroke() {
                        return Err(InputError::Stopped);
                    }
                    self.enigo.text(c.encode_utf8(&mut one))?;
                }
            }
        }
        Ok(())
    }

    /// Releases every key and button this injector holds down. Tries them all; returns the
    /// first failure.
    pub fn release_all(&mut self) -> Result<(), InputError> {
        let mut first_error = None;
        for raw in std::mem::take(&mut self.held_keys) {
            if let Err(e) = self.enigo.raw(raw, Direction::Release) {
                first_error.get_or_insert(InputError::from(e));
            }
        }
        for button in std::mem::take(&mut self.held_buttons) {
            if let Err(e) = self.enigo.button(enigo_button(button), Direction::Release) {
                first_error.get_or_insert(InputError::from(e));
            }
        }
        self.wheel = (0.0, 0.0);
        first_error.map_or(Ok(()), Err)
    }

    /// Whether any key or button is held down by this injector.
    pub fn holds_anything(&self) -> bool {
        !self.held_keys.is_empty() || !self.held_buttons.is_empty()
    }

    /// A normalised position to desktop pixels on the monitor.
    fn to_pixels(&self, x: f32, y: f32) -> Result<(i32, i32), InputError> {
        if !x.is_finite() || !y.is_finite() {
            return Err(InputError::NotFinite("the pointer position"));
        }
        Ok((
            self.origin.0 + axis_pixel(x, self.size.0),
            self.origin.1 + axis_pixel(y, self.size.1),
        ))
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        if let Err(e) = self.release_all() {
            tracing::debug!("releasing held input on drop: {e}");
        }
    }
}

/// The pixel under normalised position `v` on an axis `len` pixels long: pixel `i` covers
/// `[i/len, (i+1)/len)`, clamped to the monitor.
fn axis_pixel(v: f32, len: u32) -> i32 {
    let len = f64::from(len.max(1));
    let px = (f64::from(v) * len).floor().clamp(0.0, len - 1.0);
    px as i32
}

/// Adds `delta` lines to the accumulator and takes out the whole lines, keeping the fraction.
fn take_whole_lines(acc: &mut f32, delta: f32) -> i32 {
    *acc = (*acc + delta).clamp(-MAX_WHEEL_LINES, MAX_WHEEL_LINES);
    let whole = acc.trunc();
    *acc -= whole;
    whole as i32
}

fn direction(pressed: bool) -> Direction {
    if pressed {
        Direction::Press
    } else {
        Direction::Release
    }
}

fn enigo_button(button: MouseButton) -> Button {
    match button {
        MouseButton::Left => Button::Left,
        MouseButton::Middle => Button::Middle,
        MouseButton::Right => Button::Right,
        MouseButton::Back => Button::Back,
        MouseButton::Forward => Button::Forward,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_positions_map_to_pixels() {
        assert_eq!(axis_pixel(0.5, 1024), 512);
        assert_eq!(axis_pixel(0.0, 1024), 0);
        assert_eq!(axis_pixel(1.0, 1024), 1023);
        assert_eq!(axis_pixel(-3.0, 1024), 0);
        assert_eq!(axis_pixel(7.0, 768), 767);
        // The centre of pixel i, as the capture reports it, maps back to pixel i.
        for i in [0u32, 1, 99, 100, 511, 767] {
            let centre = ((f64::from(i) + 0.5) / 768.0) as f32;
            assert_eq!(axis_pixel(centre, 768), i as i32);
        }
    }

    #[test]
    fn wheel_fractions_accumulate() {
        let mut acc = 0.0;
        assert_eq!(take_whole_lines(&mut acc, 0.4), 0);
        assert_eq!(take_whole_lines(&mut acc, 0.4), 0);
        assert_eq!(take_whole_lines(&mut acc, 0.4), 1);
        assert!((acc - 0.2).abs() < 1e-5);
        assert_eq!(take_whole_lines(&mut acc, -2.5), -2);
        assert_eq!(take_whole_lines(&mut acc, 1e9), 50);
    }
}
