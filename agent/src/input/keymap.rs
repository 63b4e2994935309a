//! Physical keys: W3C `KeyboardEvent.code` names to the platforms' key numbers.
//!
//! The operator's viewer sends which *physical* key moved, not which character it typed, so the
//! remote keyboard layout decides the character (a French operator on a German machine types
//! what the German layout puts on that key). Each entry gives the Linux evdev code
//! (`linux/input-event-codes.h`, X keycode = evdev + 8; also the PC set-1 scancode for codes up
//! to 88) and the macOS virtual key code (`kVK_*` of `Events.h`) where the Mac has that key.

/// One physical key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDef {
    /// The W3C `KeyboardEvent.code` name.
    pub code: &'static str,
    /// Linux evdev code.
    pub evdev: u16,
    /// macOS virtual key code, when the Mac keyboard has the key.
    pub mac: Option<u16>,
}

/// Looks up a W3C `KeyboardEvent.code` name (case-sensitive, as browsers and egui send them).
pub fn lookup(code: &str) -> Option<KeyDef> {
    KEYS.iter()
        .find(|(name, _, _)| *name == code)
        .map(|&(code, evdev, mac)| KeyDef { code, evdev, mac })
}

const NO_MAC: Option<u16> = None;

#[rustfmt::skip]
const KEYS: &[(&str, u16, Option<u16>)] = &[
    // Letters.
    ("KeyA", 30, Some(0x00)), ("KeyB", 48, Some(0x0B)), ("KeyC", 46, Some(0x08)),
    ("KeyD", 32, Some(0x02)), ("KeyE", 18, Some(0x0E)), ("KeyF", 33, Some(0x03)),
    ("KeyG", 34, Some(0x05)), ("KeyH", 35, Some(0x04)), ("KeyI", 23, Some(0x22)),
    ("KeyJ", 36, Some(0x26)), ("KeyK", 37, Some(0x28)), ("KeyL", 38, Some(0x25)),
    ("KeyM", 50, Some(0x2E)), ("KeyN", 49, Some(0x2D)), ("KeyO", 24, Some(0x1F)),
    ("KeyP", 25, Some(0x23)), ("KeyQ", 16, Some(0x0C)), ("KeyR", 19, Some(0x0F)),
    ("KeyS", 31, Some(0x01)), ("KeyT", 20, Some(0x11)), ("KeyU", 22, Some(0x20)),
    ("KeyV", 47, Some(0x09)), ("KeyW", 17, Some(0x0D)), ("KeyX", 45, Some(0x07)),
    ("KeyY", 21, Some(0x10)), ("KeyZ", 44, Some(0x06)),
    // Digit row.
    ("Digit1", 2, Some(0x12)), ("Digit2", 3, Some(0x13)), ("Digit3", 4, Some(0x14)),
    ("Digit4", 5, Some(0x15)), ("Digit5", 6, Some(0x17)), ("Digit6", 7, Some(0x16)),
    ("Digit7", 8, Some(0x1A)), ("Digit8", 9, Some(0x1C)), ("Digit9", 10, Some(0x19)),
    ("Digit0", 11, Some(0x1D)),
    // Punctuation and editing in the main block.
    ("Enter", 28, Some(0x24)), ("Escape", 1, Some(0x35)), ("Backspace", 14, Some(0x33)),
    ("Tab", 15, Some(0x30)), ("Space", 57, Some(0x31)), ("Minus", 12, Some(0x1B)),
    ("Equal", 13, Some(0x18)), ("BracketLeft", 26, Some(0x21)), ("BracketRight", 27, Some(0x1E)),
    ("Backslash", 43, Some(0x2A)), ("Semicolon", 39, Some(0x29)), ("Quote", 40, Some(0x27)),
    ("Backquote", 41, Some(0x32)), ("Comma", 51, Some(0x2B)), ("Period", 52, Some(0x2F)),
    ("Slash", 53, Some(0x2C)), ("CapsLock", 58, Some(0x39)),
    ("IntlBackslash", 86, Some(0x0A)), ("IntlRo", 89, Some(0x5E)), ("IntlYen", 124, Some(0x5D)),
    // Function keys.
    ("F1", 59, Some(0x7A)), ("F2", 60, Some(0x78)), ("F3", 61, Some(0x63)),
    ("F4", 62, Some(0x76)), ("F5", 63, Some(0x60)), ("F6", 64, Some(0x61)),
    ("F7", 65, Some(0x62)), ("F8", 66, Some(0x64)), ("F9", 67, Some(0x65)),
    ("F10", 68, Some(0x6D)), ("F11", 87, Some(0x67)), ("F12", 88, Some(0x6F)),
    ("F13", 183, Some(0x69)), ("F14", 184, Some(0x6B)), ("F15", 185, Some(0x71)),
    ("F16", 186, Some(0x6A)), ("F17", 187, Some(0x40)), ("F18", 188, Some(0x4F)),
    ("F19", 189, Some(0x50)), ("F20", 190, Some(0x5A)), ("F21", 191, NO_MAC),
    ("F22", 192, NO_MAC), ("F23", 193, NO_MAC), ("F24", 194, NO_MAC),
    // Navigation.
    ("ArrowUp", 103, Some(0x7E)), ("ArrowDown", 108, Some(0x7D)),
    ("ArrowLeft", 105, Some(0x7B)), ("ArrowRight", 106, Some(0x7C)),
    ("Home", 102, Some(0x73)), ("End", 107, Some(0x77)), ("PageUp", 104, Some(0x74)),
    ("PageDown", 109, Some(0x79)), ("Insert", 110, Some(0x72)), ("Delete", 111, Some(0x75)),
    // Modifiers ("OSLeft"/"OSRight": older Firefox names for the Meta keys).
    ("ShiftLeft", 42, Some(0x38)), ("ShiftRight", 54, Some(0x3C)),
    ("ControlLeft", 29, Some(0x3B)), ("ControlRight", 97, Some(0x3E)),
    ("AltLeft", 56, Some(0x3A)), ("AltRight", 100, Some(0x3D)),
    ("MetaLeft", 125, Some(0x37)), ("MetaRight", 126, Some(0x36)),
    ("OSLeft", 125, Some(0x37)), ("OSRight", 126, Some(0x36)),
    ("ContextMenu", 127, Some(0x6E)),
    // System keys the Mac lacks (NumLock is the Mac's keypad Clear).
    ("PrintScreen", 99, NO_MAC), ("ScrollLock", 70, NO_MAC), ("Pause", 119, NO_MAC),
    ("NumLock", 69, Some(0x47)),
    // Numeric keypad.
    ("Numpad0", 82, Some(0x52)), ("Numpad1", 79, Some(0x53)), ("Numpad2", 80, Some(0x54)),
    ("Numpad3", 81, Some(0x55)), ("Numpad4", 75, Some(0x56)), ("Numpad5", 76, Some(0x57)),
    ("Numpad6", 77, Some(0x58)), ("Numpad7", 71, Some(0x59)), ("Numpad8", 72, Some(0x5B)),
    ("Numpad9", 73, Some(0x5C)), ("NumpadAdd", 78, Some(0x45)),
    ("NumpadSubtract", 74, Some(0x4E)), ("NumpadMultiply", 55, Some(0x43)),
    ("NumpadDivide", 98, Some(0x4B)), ("NumpadDecimal", 83, Some(0x41)),
    ("NumpadEnter", 96, Some(0x4C)), ("NumpadEqual", 117, Some(0x51)),
    ("NumpadComma", 121, Some(0x5F)),
    // Media keys.
    ("AudioVolumeMute", 113, Some(0x4A)), ("AudioVolumeDown", 114, Some(0x49)),
    ("AudioVolumeUp", 115, Some(0x48)),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn names_are_unique_and_codes_unique_except_aliases() {
        let mut names = HashSet::new();
        let mut by_evdev: HashMap<u16, &str> = HashMap::new();
        for &(name, evdev, _) in KEYS {
            assert!(names.insert(name), "{name} twice");
            if let Some(other) = by_evdev.insert(evdev, name) {
                let alias = matches!(
                    (other, name),
                    ("MetaLeft", "OSLeft") | ("MetaRight", "OSRight")
                );
                assert!(alias, "{name} and {other} share evdev {evdev}");
            }
            // X11 keycodes are 8 bits.
            assert!(evdev + 8 <= 255, "{name}");
        }
        let mac: Vec<u16> = KEYS
            .iter()
            .filter(|(n, _, _)| !n.starts_with("OS"))
            .filter_map(|k| k.2)
            .collect();
        let unique: HashSet<_> = mac.iter().collect();
        assert_eq!(unique.len(), mac.len(), "macOS codes repeat");
    }

    #[test]
    fn the_keys_the_viewer_sends_are_all_there() {
        let mut required: Vec<String> = Vec::new();
        required.extend(('A'..='Z').map(|c| format!("Key{c}")));
        required.extend((0..=9).map(|d| format!("Digit{d}")));
        required.extend((1..=12).map(|n| format!("F{n}")));
        required.extend((0..=9).map(|d| format!("Numpad{d}")));
        for name in [
            "Enter",
            "Escape",
            "Backspace",
            "Tab",
            "Space",
            "Minus",
            "Equal",
            "BracketLeft",
            "BracketRight",
            "Backslash",
            "Semicolon",
            "Quote",
            "Backquote",
            "Comma",
            "Period",
            "Slash",
            "CapsLock",
            "ArrowUp",
            "ArrowDown",
            "ArrowLeft",
            "ArrowRight",
            "Home",
            "End",
            "PageUp",
            "PageDown",
            "Insert",
            "Delete",
            "ShiftLeft",
            "ShiftRight",
            "ControlLeft",
            "ControlRight",
            "AltLeft",
            "AltRight",
            "MetaLeft",
            "MetaRight",
            "NumpadAdd",
            "NumpadSubtract",
            "NumpadMultiply",
            "NumpadDivide",
            "NumpadDecimal",
            "NumpadEnter",
        ] {
            required.push(name.to_owned());
        }
        for name in &required {
            assert!(lookup(name).is_some(), "{name} missing");
        }
    }

    #[test]
    fn known_codes() {
        assert_eq!(lookup("KeyA").map(|k| k.evdev), Some(30));
        assert_eq!(lookup("KeyH").map(|k| k.evdev), Some(35));
        assert_eq!(lookup("Escape").map(|k| k.evdev), Some(1));
        assert_eq!(lookup("ArrowUp").map(|k| k.evdev), Some(103));
        assert_eq!(
            lookup("ShiftLeft").map(|k| (k.evdev, k.mac)),
            Some((42, Some(0x38)))
        );
        assert_eq!(lookup("KeyQ").and_then(|k| k.mac), Some(0x0C));
        assert!(lookup("keya").is_none());
        assert!(lookup("Unidentified").is_none());
    }
}
