//! Physical key names: egui's [`Key`] to the W3C `KeyboardEvent.code` names that
//! [`InputEvent::Key`](sightline_core::messages::InputEvent::Key) carries. The agent maps those
//! names to its own platform's key codes, so what travels is layout-independent.

use eframe::egui::Key;

/// The W3C `KeyboardEvent.code` name of a physical key, or `None` for egui keys that name a
/// character rather than a key position (`Colon`, `Pipe`, ...) or that have no W3C code.
pub fn code_name(key: Key) -> Option<&'static str> {
    letter(key)
        .or_else(|| digit(key))
        .or_else(|| function(key))
        .or_else(|| other(key))
}

/// Whether the key is a modifier (Shift, Control, Alt, Meta on either side).
pub fn is_modifier_name(name: &str) -> bool {
    MODIFIERS.iter().any(|m| m.left == name || m.right == name)
}

/// One modifier as both egui's modifier flags and the two physical keys that set it.
#[derive(Debug, Clone, Copy)]
pub struct ModifierKeys {
    /// Name of the left-hand key (the one synthesised when only the flag is known).
    pub left: &'static str,
    /// Name of the right-hand key.
    pub right: &'static str,
    /// Reads this modifier's flag.
    pub flag: fn(&eframe::egui::Modifiers) -> bool,
    /// Whether the flag is reported on every platform; Meta (the Super/Windows key) is only
    /// reported as `mac_cmd` on macOS, so elsewhere a clear flag proves nothing.
    pub flag_reliable: bool,
}

/// The modifiers egui reports, in the order they are pressed when synthesised.
pub const MODIFIERS: [ModifierKeys; 4] = [
    ModifierKeys {
        left: "ControlLeft",
        right: "ControlRight",
        flag: |m| m.ctrl,
        flag_reliable: true,
    },
    ModifierKeys {
        left: "ShiftLeft",
        right: "ShiftRight",
        flag: |m| m.shift,
        flag_reliable: true,
    },
    ModifierKeys {
        left: "AltLeft",
        right: "AltRight",
        flag: |m| m.alt,
        flag_reliable: true,
    },
    ModifierKeys {
        left: "MetaLeft",
        right: "MetaRight",
        flag: |m| m.mac_cmd,
        flag_reliable: false,
    },
];

fn letter(key: Key) -> Option<&'static str> {
    Some(match key {
        Key::A => "KeyA",
        Key::B => "KeyB",
        Key::C => "KeyC",
        Key::D => "KeyD",
        Key::E => "KeyE",
        Key::F => "KeyF",
        Key::G => "KeyG",
        Key::H => "KeyH",
        Key::I => "KeyI",
        Key::J => "KeyJ",
        Key::K => "KeyK",
        Key::L => "KeyL",
        Key::M => "KeyM",
        Key::N => "KeyN",
        Key::O => "KeyO",
        Key::P => "KeyP",
        Key::Q => "KeyQ",
        Key::R => "KeyR",
        Key::S => "KeyS",
        Key::T => "KeyT",
        Key::U => "KeyU",
        Key::V => "KeyV",
        Key::W => "KeyW",
        Key::X => "KeyX",
        Key::Y => "KeyY",
        Key::Z => "KeyZ",
        _ => return None,
    })
}

fn digit(key: Key) -> Option<&'static str> {
    Some(match key {
        Key::Num0 => "Digit0",
        Key::Num1 => "Digit1",
        Key::Num2 => "Digit2",
        Key::Num3 => "Digit3",
        Key::Num4 => "Digit4",
        Key::Num5 => "Digit5",
        Key::Num6 => "Digit6",
        Key::Num7 => "Digit7",
        Key::Num8 => "Digit8",
        Key::Num9 => "Digit9",
        _ => return None,
    })
}

fn function(key: Key) -> Option<&'static str> {
    Some(match key {
        Key::F1 => "F1",
        Key::F2 => "F2",
        Key::F3 => "F3",
        Key::F4 => "F4",
        Key::F5 => "F5",
        Key::F6 => "F6",
        Key::F7 => "F7",
        Key::F8 => "F8",
        Key::F9 => "F9",
        Key::F10 => "F10",
        Key::F11 => "F11",
        Key::F12 => "F12",
        Key::F13 => "F13",
        Key::F14 => "F14",
        Key::F15 => "F15",
        Key::F16 => "F16",
        Key::F17 => "F17",
        Key::F18 => "F18",
        Key::F19 => "F19",
        Key::F20 => "F20",
        Key::F21 => "F21",
        Key::F22 => "F22",
        Key::F23 => "F23",
        Key::F24 => "F24",
        _ => return None,
    })
}

fn other(key: Key) -> Option<&'static str> {
    Some(match key {
        Key::ArrowDown => "ArrowDown",
        Key::ArrowLeft => "ArrowLeft",
        Key::ArrowRight => "ArrowRight",
        Key::ArrowUp => "ArrowUp",
        Key::Escape => "Escape",
        Key::Tab => "Tab",
        Key::Backspace => "Backspace",
        Key::Enter => "Enter",
        Key::Space => "Space",
        Key::Insert => "Insert",
        Key::Delete => "Delete",
        Key::Home => "Home",
        Key::End => "End",
        Key::PageUp => "PageUp",
        Key::PageDown => "PageDown",
        Key::Copy => "Copy",
        Key::Cut => "Cut",
        Key::Paste => "Paste",
        Key::Comma => "Comma",
        Key::Backslash => "Backslash",
        Key::Slash => "Slash",
        Key::OpenBracket => "BracketLeft",
        Key::CloseBracket => "BracketRight",
        Key::Backtick => "Backquote",
        Key::Minus => "Minus",
        Key::Period => "Period",
        // egui only reports a physical `Plus` for the keypad's plus key.
        Key::Plus => "NumpadAdd",
        Key::Equals => "Equal",
        Key::Semicolon => "Semicolon",
        Key::Quote => "Quote",
        Key::ShiftLeft => "ShiftLeft",
        Key::ShiftRight => "ShiftRight",
        Key::ControlLeft => "ControlLeft",
        Key::ControlRight => "ControlRight",
        Key::AltLeft => "AltLeft",
        Key::AltRight => "AltRight",
        Key::SuperLeft => "MetaLeft",
        Key::SuperRight => "MetaRight",
        Key::IntlBackslash => "IntlBackslash",
        Key::CapsLock => "CapsLock",
        Key::NumLock => "NumLock",
        Key::ScrollLock => "ScrollLock",
        Key::PrintScreen => "PrintScreen",
        Key::Pause => "Pause",
        Key::Menu => "ContextMenu",
        Key::Fn => "Fn",
        Key::Eject => "Eject",
        Key::Help => "Help",
        Key::Power => "Power",
        Key::Sleep => "Sleep",
        Key::BrowserBack => "BrowserBack",
        Key::BrowserForward => "BrowserForward",
        Key::BrowserRefresh => "BrowserRefresh",
        Key::BrowserSearch => "BrowserSearch",
        Key::BrowserHome => "BrowserHome",
        Key::BrowserFavorites => "BrowserFavorites",
        Key::BrowserStop => "BrowserStop",
        Key::MediaPlayPause => "MediaPlayPause",
        Key::MediaTrackNext => "MediaTrackNext",
        Key::MediaTrackPrevious => "MediaTrackPrevious",
        Key::MediaStop => "MediaStop",
        Key::AudioVolumeMute => "AudioVolumeMute",
        Key::AudioVolumeDown => "AudioVolumeDown",
        Key::AudioVolumeUp => "AudioVolumeUp",
        Key::LaunchMail => "LaunchMail",
        Key::LaunchApp1 => "LaunchApp1",
        Key::LaunchApp2 => "LaunchApp2",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_digits_and_function_keys() {
        assert_eq!(code_name(Key::A), Some("KeyA"));
        assert_eq!(code_name(Key::Z), Some("KeyZ"));
        assert_eq!(code_name(Key::Num0), Some("Digit0"));
        assert_eq!(code_name(Key::Num9), Some("Digit9"));
        assert_eq!(code_name(Key::F1), Some("F1"));
        assert_eq!(code_name(Key::F12), Some("F12"));
        assert_eq!(code_name(Key::F35), None);
    }

    #[test]
    fn navigation_and_editing_keys() {
        let cases = [
            (Key::Enter, "Enter"),
            (Key::Escape, "Escape"),
            (Key::Backspace, "Backspace"),
            (Key::Tab, "Tab"),
            (Key::Space, "Space"),
            (Key::ArrowUp, "ArrowUp"),
            (Key::ArrowDown, "ArrowDown"),
            (Key::ArrowLeft, "ArrowLeft"),
            (Key::ArrowRight, "ArrowRight"),
            (Key::Home, "Home"),
            (Key::End, "End"),
            (Key::PageUp, "PageUp"),
            (Key::PageDown, "PageDown"),
            (Key::Insert, "Insert"),
            (Key::Delete, "Delete"),
        ];
        for (key, name) in cases {
            assert_eq!(code_name(key), Some(name), "{key:?}");
        }
    }

    #[test]
    fn punctuation_uses_position_names() {
        let cases = [
            (Key::Minus, "Minus"),
            (Key::Equals, "Equal"),
            (Key::OpenBracket, "BracketLeft"),
            (Key::CloseBracket, "BracketRight"),
            (Key::Backslash, "Backslash"),
            (Key::Semicolon, "Semicolon"),
            (Key::Quote, "Quote"),
            (Key::Backtick, "Backquote"),
            (Key::Comma, "Comma"),
            (Key::Period, "Period"),
            (Key::Slash, "Slash"),
        ];
        for (key, name) in cases {
            assert_eq!(code_name(key), Some(name), "{key:?}");
        }
    }

    #[test]
    fn character_only_keys_have_no_code() {
        for key in [
            Key::Colon,
            Key::Pipe,
            Key::Questionmark,
            Key::Exclamationmark,
        ] {
            assert_eq!(code_name(key), None, "{key:?}");
        }
        assert_eq!(code_name(Key::OpenCurlyBracket), None);
    }

    #[test]
    fn modifiers_map_to_both_sides() {
        assert_eq!(code_name(Key::ShiftLeft), Some("ShiftLeft"));
        assert_eq!(code_name(Key::ControlRight), Some("ControlRight"));
        assert_eq!(code_name(Key::SuperLeft), Some("MetaLeft"));
        assert!(is_modifier_name("AltRight"));
        assert!(is_modifier_name("MetaLeft"));
        assert!(!is_modifier_name("KeyA"));
    }

    #[test]
    fn every_named_key_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for key in Key::ALL {
            if let Some(name) = code_name(*key) {
                assert!(seen.insert(name), "{name} named twice");
            }
        }
        assert!(seen.len() > 100);
    }
}
