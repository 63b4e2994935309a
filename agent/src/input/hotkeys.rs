//! Keeps the operator's input off the customer's hotkeys (Ctrl+Alt+R takes control back,
//! Ctrl+Alt+Q ends the session; see `crate::indicator`). The hotkeys only ever take rights
//! away, so an operator pressing them could not gain anything; but the agent reports them as
//! the customer's own action, and it must never report the operator's keys as the customer's.
//! So, while the operator holds a Ctrl and an Alt key, the injector refuses:
//! - a press of any key that carries the letter r or q in the keyboard layout in use (read from
//!   the X server at that moment on X11, since layouts differ: AZERTY puts q where QWERTY has a);
//! - any text (X11 types text through whatever key carries each letter).

use super::keymap;
use super::native;

/// Keysyms of the hotkeys' letters: r, R, q, Q.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const HOTKEY_KEYSYMS: [u32; 4] = [0x72, 0x52, 0x71, 0x51];

/// Raw key numbers of the physical keys named `names`.
fn raw_codes(names: &[&str]) -> Vec<u16> {
    names
        .iter()
        .filter_map(|n| keymap::lookup(n))
        .filter_map(|def| native::raw_keycode(&def))
        .collect()
}

/// Decides which of the operator's key presses would press a customer hotkey.
#[derive(Debug)]
pub(super) struct HotkeyGuard {
    ctrl: Vec<u16>,
    alt: Vec<u16>,
    #[cfg(target_os = "linux")]
    display: Option<String>,
    #[cfg(target_os = "linux")]
    conn: Option<x11rb::rust_connection::RustConnection>,
}

impl HotkeyGuard {
    /// A guard for the X display `display` (`None`: `$DISPLAY`); other platforms ignore it.
    pub(super) fn new(display: Option<&str>) -> Self {
        #[cfg(not(target_os = "linux"))]
        let _ = display;
        Self {
            ctrl: raw_codes(&["ControlLeft", "ControlRight"]),
            alt: raw_codes(&["AltLeft", "AltRight"]),
            #[cfg(target_os = "linux")]
            display: display.map(str::to_owned),
            #[cfg(target_os = "linux")]
            conn: None,
        }
    }

    /// Whether the keys the operator holds (`held`) include a Ctrl and an Alt.
    pub(super) fn modifiers_held(&self, held: &std::collections::BTreeSet<u16>) -> bool {
        self.ctrl.iter().any(|k| held.contains(k)) && self.alt.iter().any(|k| held.contains(k))
    }

    /// Whether the key with raw number `raw` types r or q in the layout in use. When the layout
    /// cannot be read, every key counts (refusing a key is the safe side).
    pub(super) fn is_hotkey_letter(&mut self, raw: u16) -> bool {
        #[cfg(target_os = "linux")]
        {
            match self.keysyms_of(raw) {
                Ok(syms) => syms.iter().any(|s| HOTKEY_KEYSYMS.contains(s)),
                Err(e) => {
                    tracing::warn!("cannot read the keyboard layout ({e}); key refused");
                    self.conn = None;
                    true
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            raw_codes(&["KeyR", "KeyQ"]).contains(&raw)
        }
    }

    /// The keysyms X maps to keycode `raw` now.
    #[cfg(target_os = "linux")]
    fn keysyms_of(&mut self, raw: u16) -> Result<Vec<u32>, String> {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::ConnectionExt;
        let Ok(code) = u8::try_from(raw) else {
            return Ok(Vec::new());
        };
        if self.conn.is_none() {
            let (conn, _) = x11rb::connect(self.display.as_deref()).map_err(|e| e.to_string())?;
            self.conn = Some(conn);
        }
        let Some(conn) = &self.conn else {
            return Err("no connection".into());
        };
        let setup = conn.setup();
        if code < setup.min_keycode || code > setup.max_keycode {
            return Ok(Vec::new());
        }
        let map = conn
            .get_keyboard_mapping(code, 1)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| e.to_string())?;
        Ok(map.keysyms)
    }
}
