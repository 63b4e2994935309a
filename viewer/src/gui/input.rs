//! Operator input to wire input: turns one frame's egui events into [`InputEvent`]s while the
//! remote screen has control and the pointer, and remembers what it pressed so that every key
//! and button it sent down is sent up again, whatever happens locally (focus loss, pointer
//! leaving the picture, control revoked). The remote side never sees a stuck key from us.

use super::geometry;
use super::keymap::{self, MODIFIERS};
use eframe::egui::{Event, ImeEvent, Key, Modifiers, MouseWheelUnit, PointerButton, Rect, Vec2};
use sightline_core::messages::{InputEvent, MouseButton};

/// Points of smooth (touchpad) scrolling that count as one wheel line.
const POINTS_PER_LINE: f32 = 40.0;
/// Lines per page of page-wise scrolling.
const LINES_PER_PAGE: f32 = 10.0;

/// Keys kept for the local window rather than forwarded.
pub fn is_local_shortcut(key: Key) -> bool {
    key == Key::F11
}

/// Whether an event belongs to the keyboard (and is consumed while the remote screen has it).
pub fn is_keyboard_event(e: &Event) -> bool {
    matches!(
        e,
        Event::Key { .. }
            | Event::Text(_)
            | Event::Ime(_)
            | Event::Copy
            | Event::Cut
            | Event::Paste(_)
            | Event::PasteImage(_)
    )
}

/// egui's pointer buttons on the wire.
pub fn mouse_button(b: PointerButton) -> MouseButton {
    match b {
        PointerButton::Primary => MouseButton::Left,
        PointerButton::Secondary => MouseButton::Right,
        PointerButton::Middle => MouseButton::Middle,
        PointerButton::Extra1 => MouseButton::Back,
        PointerButton::Extra2 => MouseButton::Forward,
    }
}

/// A wheel delta in egui's convention (how the content moves) as wire lines (how far to
/// scroll: positive is right / down).
pub fn wheel_lines(unit: MouseWheelUnit, delta: Vec2) -> (f32, f32) {
    let per = match unit {
        MouseWheelUnit::Point => 1.0 / POINTS_PER_LINE,
        MouseWheelUnit::Line => 1.0,
        MouseWheelUnit::Page => LINES_PER_PAGE,
    };
    // `+ 0.0` turns the -0.0 of a zero delta into 0.0.
    (-delta.x * per + 0.0, -delta.y * per + 0.0)
}

/// What the picture looks like to the forwarder this frame.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The picture on screen.
    pub picture: Rect,
    /// Whether pointer input goes to the remote side (control granted, pointer over the
    /// picture and nothing covering it).
    pub pointer: bool,
    /// Whether keyboard input goes to the remote side (as above, and the window focused).
    pub keyboard: bool,
    /// Modifier state at the end of the frame.
    pub modifiers: Modifiers,
}

/// The state of what was forwarded: held keys and buttons, last pointer position.
#[derive(Debug, Default)]
pub struct InputForwarder {
    held_keys: Vec<&'static str>,
    held_buttons: Vec<MouseButton>,
    last_pos: Option<(f32, f32)>,
}

impl InputForwarder {
    /// Whether a button we sent down is still down (the drag continues outside the picture).
    pub fn buttons_held(&self) -> bool {
        !self.held_buttons.is_empty()
    }

    /// Translates one frame of events. Events that arrive while a channel is inactive are
    /// dropped, except releases of what we pressed.
    pub fn translate(&mut self, events: &[Event], target: Target) -> Vec<InputEvent> {
        let mut out = Vec::new();
        // True right after a key press we named, so the text it typed is not sent twice.
        let mut after_named_press = false;
        for event in events {
            let was_after_press = std::mem::take(&mut after_named_press);
            match event {
                // Moves count inside the picture, and anywhere during a drag that started there
                // (clamped to the edge); leaving for the toolbar does not drag the remote
                // pointer to the border.
                Event::PointerMoved(pos)
                    if (target.pointer && target.picture.contains(*pos)) || self.buttons_held() =>
                {
                    self.move_to(geometry::normalise(*pos, target.picture), &mut out);
                }
                Event::PointerButton {
                    pos,
                    button,
                    pressed,
                    ..
                } => {
                    let button = mouse_button(*button);
                    if *pressed {
                        if target.pointer
                            && target.picture.contains(*pos)
                            && !self.held_buttons.contains(&button)
                        {
                            self.move_to(geometry::normalise(*pos, target.picture), &mut out);
                            self.held_buttons.push(button);
                            out.push(InputEvent::Button {
                                button,
                                pressed: true,
                            });
                        }
                    } else if let Some(i) = self.held_buttons.iter().position(|b| *b == button) {
                        self.move_to(geometry::normalise(*pos, target.picture), &mut out);
                        self.held_buttons.remove(i);
                        out.push(InputEvent::Button {
                            button,
                            pressed: false,
                        });
                    }
                }
                Event::MouseWheel { unit, delta, .. } if target.pointer => {
                    let (dx, dy) = wheel_lines(*unit, *delta);
                    if dx != 0.0 || dy != 0.0 {
                        out.push(InputEvent::Wheel { dx, dy });
                    }
                }
                Event::Key {
                    key,
                    physical_key,
                    pressed,
                    modifiers,
                    ..
                } => {
                    let local =
                        is_local_shortcut(*key) || physical_key.is_some_and(is_local_shortcut);
                    let name = physical_key
                        .and_then(keymap::code_name)
                        .or_else(|| keymap::code_name(*key));
                    if let (Some(name), false) = (name, local) {
                        if *pressed {
                            if target.keyboard {
                                self.press(name, *modifiers, &mut out);
                            }
                            after_named_press = true;
                        } else {
                            self.release(name, &mut out);
                        }
                    }
                }
                // Clipboard shortcuts arrive as commands instead of key presses; the key-up
                // still comes as a key event, so forward the press.
                Event::Copy if target.keyboard => self.press("KeyC", target.modifiers, &mut out),
                Event::Cut if target.keyboard => self.press("KeyX", target.modifiers, &mut out),
                Event::Paste(_) if target.keyboard => {
                    self.press("KeyV", target.modifiers, &mut out);
                }
                Event::Text(text) if target.keyboard && !was_after_press && !text.is_empty() => {
                    out.push(InputEvent::Text { text: text.clone() });
                }
                Event::Ime(ImeEvent::Commit(text)) if target.keyboard && !text.is_empty() => {
                    out.push(InputEvent::Text { text: text.clone() });
                }
                Event::WindowFocused(false) => out.extend(self.release_all()),
                _ => {}
            }
        }
        if !target.keyboard {
            out.extend(self.release_keys());
        }
        out
    }

    /// Sends up everything we sent down (keys first, modifiers last, then buttons).
    pub fn release_all(&mut self) -> Vec<InputEvent> {
        let mut out = self.release_keys();
        for button in self.held_buttons.drain(..) {
            out.push(InputEvent::Button {
                button,
                pressed: false,
            });
        }
        self.last_pos = None;
        out
    }

    fn release_keys(&mut self) -> Vec<InputEvent> {
        let mut keys = std::mem::take(&mut self.held_keys);
        // Plain keys before modifiers, so the release never reads as a new shortcut.
        keys.sort_by_key(|k| keymap::is_modifier_name(k));
        keys.into_iter()
            .map(|key| InputEvent::Key {
                key: key.to_string(),
                pressed: false,
            })
            .collect()
    }

    fn move_to(&mut self, pos: (f32, f32), out: &mut Vec<InputEvent>) {
        if self.last_pos != Some(pos) {
            self.last_pos = Some(pos);
            out.push(InputEvent::PointerMove { x: pos.0, y: pos.1 });
        }
    }

    fn press(&mut self, name: &'static str, modifiers: Modifiers, out: &mut Vec<InputEvent>) {
        if !keymap::is_modifier_name(name) {
            self.sync_modifiers(modifiers, out);
        }
        // Held already: an auto-repeat. The remote system repeats held keys itself.
        if !self.held_keys.contains(&name) {
            self.held_keys.push(name);
            out.push(InputEvent::Key {
                key: name.to_string(),
                pressed: true,
            });
        }
    }

    fn release(&mut self, name: &'static str, out: &mut Vec<InputEvent>) {
        if let Some(i) = self.held_keys.iter().position(|k| *k == name) {
            self.held_keys.remove(i);
            out.push(InputEvent::Key {
                key: name.to_string(),
                pressed: false,
            });
        }
    }

    /// Brings the remote modifiers in line with egui's modifier flags before a key press:
    /// some platforms report modifiers only as flags, and a release may have happened while
    /// the window did not have the keyboard.
    fn sync_modifiers(&mut self, modifiers: Modifiers, out: &mut Vec<InputEvent>) {
        for m in MODIFIERS {
            let down = (m.flag)(&modifiers);
            let held: Vec<&'static str> = self
                .held_keys
                .iter()
                .copied()
                .filter(|k| *k == m.left || *k == m.right)
                .collect();
            if down && held.is_empty() {
                self.held_keys.push(m.left);
                out.push(InputEvent::Key {
                    key: m.left.to_string(),
                    pressed: true,
                });
            } else if !down && m.flag_reliable {
                for k in held {
                    self.release(k, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eframe::egui::{pos2, vec2, TouchPhase};

    fn target(active: bool) -> Target {
        Target {
            picture: Rect::from_min_max(pos2(100.0, 100.0), pos2(300.0, 200.0)),
            pointer: active,
            keyboard: active,
            modifiers: Modifiers::NONE,
        }
    }

    fn key(key: Key, pressed: bool, modifiers: Modifiers) -> Event {
        Event::Key {
            key,
            physical_key: Some(key),
            pressed,
            repeat: false,
            modifiers,
        }
    }

    fn k(name: &str, pressed: bool) -> InputEvent {
        InputEvent::Key {
            key: name.into(),
            pressed,
        }
    }

    fn button(x: f32, y: f32, pressed: bool) -> Event {
        Event::PointerButton {
            pos: pos2(x, y),
            button: PointerButton::Primary,
            pressed,
            modifiers: Modifiers::NONE,
        }
    }

    #[test]
    fn pointer_moves_are_normalised_and_deduplicated() {
        let mut f = InputForwarder::default();
        let ev = [
            Event::PointerMoved(pos2(200.0, 150.0)),
            Event::PointerMoved(pos2(200.0, 150.0)),
            Event::PointerMoved(pos2(300.0, 100.0)),
            // Leaving the picture without a button held is not a remote move.
            Event::PointerMoved(pos2(400.0, 0.0)),
        ];
        let out = f.translate(&ev, target(true));
        assert_eq!(
            out,
            vec![
                InputEvent::PointerMove { x: 0.5, y: 0.5 },
                InputEvent::PointerMove { x: 1.0, y: 0.0 }
            ]
        );
    }

    #[test]
    fn nothing_is_sent_without_control() {
        let mut f = InputForwarder::default();
        let ev = [
            Event::PointerMoved(pos2(200.0, 150.0)),
            button(200.0, 150.0, true),
            key(Key::A, true, Modifiers::NONE),
            Event::Text("a".into()),
        ];
        assert!(f.translate(&ev, target(false)).is_empty());
    }

    #[test]
    fn clicks_outside_the_picture_stay_local() {
        let mut f = InputForwarder::default();
        assert!(f
            .translate(&[button(50.0, 50.0, true)], target(true))
            .is_empty());
        assert!(f
            .translate(&[button(50.0, 50.0, false)], target(true))
            .is_empty());
    }

    #[test]
    fn a_drag_released_outside_still_releases() {
        let mut f = InputForwarder::default();
        let out = f.translate(&[button(100.0, 100.0, true)], target(true));
        assert_eq!(
            out,
            vec![
                InputEvent::PointerMove { x: 0.0, y: 0.0 },
                InputEvent::Button {
                    button: MouseButton::Left,
                    pressed: true
                }
            ]
        );
        assert!(f.buttons_held());
        let out = f.translate(
            &[
                Event::PointerMoved(pos2(500.0, 150.0)),
                button(500.0, 150.0, false),
            ],
            target(false),
        );
        assert_eq!(
            out,
            vec![
                InputEvent::PointerMove { x: 1.0, y: 0.5 },
                InputEvent::Button {
                    button: MouseButton::Left,
                    pressed: false
                }
            ]
        );
        assert!(!f.buttons_held());
    }

    #[test]
    fn wheel_is_in_lines_with_down_positive() {
        let mut f = InputForwarder::default();
        let ev = Event::MouseWheel {
            unit: MouseWheelUnit::Line,
            delta: vec2(0.0, 1.0),
            phase: TouchPhase::Move,
            source: eframe::egui::MouseWheelSource::Unknown,
            modifiers: Modifiers::NONE,
        };
        let out = f.translate(&[ev], target(true));
        assert_eq!(out, vec![InputEvent::Wheel { dx: 0.0, dy: -1.0 }]);
        // No -0.0 on the wire for an axis that did not move.
        assert!(matches!(out[0], InputEvent::Wheel { dx, .. } if dx.is_sign_positive()));
        assert_eq!(
            wheel_lines(MouseWheelUnit::Point, vec2(-80.0, 0.0)),
            (2.0, 0.0)
        );
        assert_eq!(
            wheel_lines(MouseWheelUnit::Page, vec2(0.0, -1.0)),
            (0.0, 10.0)
        );
    }

    #[test]
    fn text_after_a_named_key_is_not_sent_twice() {
        let mut f = InputForwarder::default();
        let ev = [
            key(Key::A, true, Modifiers::NONE),
            Event::Text("a".into()),
            key(Key::A, false, Modifiers::NONE),
            Event::Ime(ImeEvent::Commit("日本".into())),
            Event::Text("é".into()),
        ];
        let out = f.translate(&ev, target(true));
        assert_eq!(
            out,
            vec![
                k("KeyA", true),
                k("KeyA", false),
                InputEvent::Text {
                    text: "日本".into()
                },
                InputEvent::Text { text: "é".into() },
            ]
        );
    }

    #[test]
    fn modifier_keys_are_forwarded_once() {
        let mut f = InputForwarder::default();
        let shift = Modifiers::SHIFT;
        let ev = [
            key(Key::ShiftLeft, true, shift),
            key(Key::A, true, shift),
            key(Key::A, true, shift), // auto-repeat
            key(Key::A, false, shift),
            key(Key::ShiftLeft, false, Modifiers::NONE),
        ];
        let out = f.translate(&ev, target(true));
        assert_eq!(
            out,
            vec![
                k("ShiftLeft", true),
                k("KeyA", true),
                k("KeyA", false),
                k("ShiftLeft", false)
            ]
        );
    }

    #[test]
    fn modifier_flags_without_key_events_are_synthesised() {
        let mut f = InputForwarder::default();
        let ev = [
            key(Key::C, true, Modifiers::CTRL),
            key(Key::C, false, Modifiers::CTRL),
        ];
        let out = f.translate(&ev, target(true));
        assert_eq!(
            out,
            vec![k("ControlLeft", true), k("KeyC", true), k("KeyC", false)]
        );
        // Ctrl is let go while the window does not see it: the next key press catches up.
        let out = f.translate(&[key(Key::B, true, Modifiers::NONE)], target(true));
        assert_eq!(out, vec![k("ControlLeft", false), k("KeyB", true)]);
    }

    #[test]
    fn clipboard_commands_become_key_presses() {
        let mut f = InputForwarder::default();
        let mut t = target(true);
        t.modifiers = Modifiers::CTRL;
        let ev = [Event::Copy, key(Key::C, false, Modifiers::CTRL)];
        let out = f.translate(&ev, t);
        assert_eq!(
            out,
            vec![k("ControlLeft", true), k("KeyC", true), k("KeyC", false)]
        );
    }

    #[test]
    fn f11_stays_local() {
        let mut f = InputForwarder::default();
        assert!(f
            .translate(&[key(Key::F11, true, Modifiers::NONE)], target(true))
            .is_empty());
    }

    #[test]
    fn losing_the_keyboard_releases_held_keys() {
        let mut f = InputForwarder::default();
        let ev = [
            key(Key::ShiftLeft, true, Modifiers::SHIFT),
            key(Key::Z, true, Modifiers::SHIFT),
        ];
        f.translate(&ev, target(true));
        let out = f.translate(&[], target(false));
        assert_eq!(out, vec![k("KeyZ", false), k("ShiftLeft", false)]);
        assert!(f.translate(&[], target(false)).is_empty());
    }

    #[test]
    fn focus_loss_releases_everything() {
        let mut f = InputForwarder::default();
        f.translate(
            &[
                button(150.0, 150.0, true),
                key(Key::Q, true, Modifiers::NONE),
            ],
            target(true),
        );
        let out = f.translate(&[Event::WindowFocused(false)], target(true));
        assert_eq!(
            out,
            vec![
                k("KeyQ", false),
                InputEvent::Button {
                    button: MouseButton::Left,
                    pressed: false
                }
            ]
        );
    }
}
