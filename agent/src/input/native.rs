//! The number enigo's `raw` wants for a physical key on this platform: the X keycode on Linux
//! (evdev + 8, the fixed offset of the evdev/XKB keycode scheme), the PC set-1 scancode on
//! Windows (`0xE0xx` for extended keys), the virtual key code on macOS.

use super::keymap::KeyDef;

/// The platform's raw key number for `key`, or `None` where the platform lacks the key.
#[cfg(target_os = "linux")]
pub(super) fn raw_keycode(key: &KeyDef) -> Option<u16> {
    Some(key.evdev + 8)
}

/// The platform's raw key number for `key`, or `None` where the platform lacks the key.
#[cfg(target_os = "macos")]
pub(super) fn raw_keycode(key: &KeyDef) -> Option<u16> {
    key.mac
}

/// The platform's raw key number for `key`, or `None` where the platform lacks the key.
#[cfg(target_os = "windows")]
pub(super) fn raw_keycode(key: &KeyDef) -> Option<u16> {
    windows_scancode(key.evdev)
}

/// The platform's raw key number for `key`, or `None` where the platform lacks the key.
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
pub(super) fn raw_keycode(key: &KeyDef) -> Option<u16> {
    // Other Unixes run X11 with the same evdev-derived keycodes as Linux (xf86-input-evdev,
    // libinput); a server with the old `kbd` driver numbers keys differently.
    Some(key.evdev + 8)
}

/// Set-1 scancode for an evdev code: equal for the original AT keys (1..=88), `0xE0`-prefixed
/// for the extended keys, a few others by table.
#[cfg_attr(not(target_os = "windows"), allow(dead_code))]
fn windows_scancode(evdev: u16) -> Option<u16> {
    const EXT: u16 = 0xE000;
    Some(match evdev {
        1..=88 => evdev,
        89 => 0x73,                        // IntlRo
        96 => EXT | 0x1C,                  // NumpadEnter
        97 => EXT | 0x1D,                  // ControlRight
        98 => EXT | 0x35,                  // NumpadDivide
        99 => EXT | 0x37,                  // PrintScreen
        100 => EXT | 0x38,                 // AltRight
        102 => EXT | 0x47,                 // Home
        103 => EXT | 0x48,                 // ArrowUp
        104 => EXT | 0x49,                 // PageUp
        105 => EXT | 0x4B,                 // ArrowLeft
        106 => EXT | 0x4D,                 // ArrowRight
        107 => EXT | 0x4F,                 // End
        108 => EXT | 0x50,                 // ArrowDown
        109 => EXT | 0x51,                 // PageDown
        110 => EXT | 0x52,                 // Insert
        111 => EXT | 0x53,                 // Delete
        113 => EXT | 0x20,                 // AudioVolumeMute
        114 => EXT | 0x2E,                 // AudioVolumeDown
        115 => EXT | 0x30,                 // AudioVolumeUp
        117 => 0x59,                       // NumpadEqual
        121 => 0x7E,                       // NumpadComma
        124 => 0x7D,                       // IntlYen
        125 => EXT | 0x5B,                 // MetaLeft
        126 => EXT | 0x5C,                 // MetaRight
        127 => EXT | 0x5D,                 // ContextMenu
        183..=193 => 0x64 + (evdev - 183), // F13..F23
        194 => 0x76,                       // F24
        _ => return None,                  // Pause needs an E1 sequence enigo cannot send
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_scancodes() {
        assert_eq!(windows_scancode(30), Some(0x1E)); // KeyA
        assert_eq!(windows_scancode(103), Some(0xE048)); // ArrowUp
        assert_eq!(windows_scancode(183), Some(0x64)); // F13
        assert_eq!(windows_scancode(119), None); // Pause
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn x_keycode_is_evdev_plus_8() {
        let a = super::super::keymap::lookup("KeyA").map(|k| raw_keycode(&k));
        assert_eq!(a, Some(Some(38)));
    }
}
