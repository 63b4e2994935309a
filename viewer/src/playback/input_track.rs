//! The operator's recorded input, for the window: a short description of each event ("key
//! KeyA ↓", "click Left", "text: hello"), the latest event and the operator's pointer at a
//! point of the recording, and the marks of the input row under the timeline (one per pixel
//! column and kind, however many events there are).

use sightline_core::messages::{InputEvent, MouseButton};

/// How many characters of typed text a description shows.
const TEXT_CHARS: usize = 40;

/// The kinds of input the input row tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InputKind {
    /// Pointer moves.
    Move,
    /// Buttons.
    Button,
    /// Keys.
    Key,
    /// Typed text.
    Text,
    /// The wheel.
    Wheel,
}

impl InputKind {
    /// The kind of `ev`.
    pub fn of(ev: &InputEvent) -> InputKind {
        match ev {
            InputEvent::PointerMove { .. } => InputKind::Move,
            InputEvent::Button { .. } => InputKind::Button,
            InputEvent::Key { .. } => InputKind::Key,
            InputEvent::Text { .. } => InputKind::Text,
            InputEvent::Wheel { .. } => InputKind::Wheel,
        }
    }
}

/// A short description of `ev` for the overlay and the input row's tooltips.
pub fn describe(ev: &InputEvent) -> String {
    let arrow = |pressed: bool| if pressed { "↓" } else { "↑" };
    match ev {
        InputEvent::PointerMove { x, y } => format!("pointer {x:.3}, {y:.3}"),
        InputEvent::Button { button, pressed } => {
            let verb = if *pressed { "click" } else { "release" };
            format!("{verb} {}", button_name(*button))
        }
        InputEvent::Key { key, pressed } => {
            format!("key {} {}", printable(key, TEXT_CHARS), arrow(*pressed))
        }
        InputEvent::Text { text } => format!("text: {}", printable(text, TEXT_CHARS)),
        InputEvent::Wheel { dx, dy } => format!("scroll {dx:+.1}, {dy:+.1}"),
    }
}

fn button_name(b: MouseButton) -> &'static str {
    match b {
        MouseButton::Left => "Left",
        MouseButton::Middle => "Middle",
        MouseButton::Right => "Right",
        MouseButton::Back => "Back",
        MouseButton::Forward => "Forward",
    }
}

/// Text from the file as one short line: control characters shown as escapes, cut after
/// `max` characters.
pub fn printable(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .flat_map(char::escape_debug)
        .collect();
    // escape_debug also escapes quotes, which read oddly here.
    out = out.replace("\\\"", "\"").replace("\\'", "'");
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// Events at or before `at_us` (inputs are in time order).
fn up_to(inputs: &[(u64, InputEvent)], at_us: u64) -> &[(u64, InputEvent)] {
    &inputs[..inputs.partition_point(|(t, _)| *t <= at_us)]
}

/// The latest event other than a pointer move at or before `at_us`, if it is at most
/// `within_us` old: what the overlay shows.
pub fn latest(
    inputs: &[(u64, InputEvent)],
    at_us: u64,
    within_us: u64,
) -> Option<&(u64, InputEvent)> {
    up_to(inputs, at_us)
        .iter()
        .rev()
        .take_while(|(t, _)| at_us - t <= within_us)
        .find(|(_, ev)| InputKind::of(ev) != InputKind::Move)
}

/// Where the operator's pointer was at `at_us` (normalised), if it had moved by then.
pub fn operator_pointer(inputs: &[(u64, InputEvent)], at_us: u64) -> Option<(f32, f32)> {
    up_to(inputs, at_us)
        .iter()
        .rev()
        .find_map(|(_, ev)| match ev {
            InputEvent::PointerMove { x, y } => Some((*x, *y)),
            _ => None,
        })
}

/// The event other than a pointer move nearest to `at_us`, no further than `within_us`.
pub fn near(inputs: &[(u64, InputEvent)], at_us: u64, within_us: u64) -> Option<&InputEvent> {
    inputs
        .iter()
        .filter(|(t, ev)| t.abs_diff(at_us) <= within_us && InputKind::of(ev) != InputKind::Move)
        .min_by_key(|(t, _)| t.abs_diff(at_us))
        .map(|(_, ev)| ev)
}

/// The input row's marks on `columns` pixel columns: each (column, kind) once, in order.
pub fn columns(
    inputs: &[(u64, InputEvent)],
    duration_us: u64,
    columns: usize,
) -> Vec<(usize, InputKind)> {
    if columns == 0 {
        return Vec::new();
    }
    let last = columns - 1;
    let mut marks: Vec<(usize, InputKind)> = inputs
        .iter()
        .map(|(t, ev)| {
            let column = match duration_us {
                0 => 0,
                d => (u128::from((*t).min(d)) * last as u128 / u128::from(d)) as usize,
            };
            (column, InputKind::of(ev))
        })
        .collect();
    marks.sort_unstable();
    marks.dedup();
    marks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str, pressed: bool) -> InputEvent {
        InputEvent::Key {
            key: k.into(),
            pressed,
        }
    }

    fn moved(x: f32, y: f32) -> InputEvent {
        InputEvent::PointerMove { x, y }
    }

    #[test]
    fn events_are_described_briefly() {
        assert_eq!(describe(&key("KeyA", true)), "key KeyA ↓");
        assert_eq!(describe(&key("ShiftLeft", false)), "key ShiftLeft ↑");
        let click = InputEvent::Button {
            button: MouseButton::Left,
            pressed: true,
        };
        assert_eq!(describe(&click), "click Left");
        let text = InputEvent::Text {
            text: "hello".into(),
        };
        assert_eq!(describe(&text), "text: hello");
        let odd = InputEvent::Text {
            text: format!("a\nb\u{1b}\"{}", "x".repeat(60)),
        };
        let d = describe(&odd);
        assert!(d.starts_with("text: a\\nb\\u{1b}\"xxx"), "{d}");
        assert!(d.ends_with('…') && d.chars().count() < 60, "{d}");
        let wheel = InputEvent::Wheel { dx: 0.0, dy: 3.0 };
        assert_eq!(describe(&wheel), "scroll +0.0, +3.0");
        assert_eq!(describe(&moved(0.5, 0.25)), "pointer 0.500, 0.250");
    }

    #[test]
    fn the_latest_event_and_the_operators_pointer() {
        let inputs = vec![
            (1_000, moved(0.1, 0.2)),
            (2_000, key("KeyA", true)),
            (3_000, moved(0.3, 0.4)),
            (9_000, key("KeyB", true)),
        ];
        let (at, ev) = latest(&inputs, 5_000, 10_000).unwrap();
        assert_eq!((*at, ev), (2_000, &key("KeyA", true)), "moves are skipped");
        assert!(latest(&inputs, 5_000, 2_000).is_none(), "too old");
        assert!(latest(&inputs, 500, 10_000).is_none(), "nothing yet");
        assert_eq!(latest(&inputs, 9_000, 0).unwrap().0, 9_000);
        assert_eq!(operator_pointer(&inputs, 2_500), Some((0.1, 0.2)));
        assert_eq!(operator_pointer(&inputs, 99_000), Some((0.3, 0.4)));
        assert_eq!(operator_pointer(&inputs, 999), None);
        assert_eq!(near(&inputs, 8_000, 1_500), Some(&key("KeyB", true)));
        assert_eq!(near(&inputs, 3_000, 500), None, "moves are not named");
    }

    #[test]
    fn marks_are_one_per_column_and_kind() {
        let mut inputs: Vec<(u64, InputEvent)> = (0..10_000u64)
            .map(|i| (i * 1_000, moved(0.0, 0.0)))
            .collect();
        inputs.push((5_000_000, key("KeyA", true)));
        inputs.push((5_000_100, key("KeyA", false)));
        inputs.push((20_000_000, key("Enter", true)));
        inputs.sort_by_key(|(t, _)| *t);
        let marks = columns(&inputs, 10_000_000, 101);
        assert_eq!(marks.iter().filter(|m| m.1 == InputKind::Move).count(), 100);
        let keys: Vec<_> = marks.iter().filter(|m| m.1 == InputKind::Key).collect();
        assert_eq!(
            keys,
            [&(50, InputKind::Key), &(100, InputKind::Key)],
            "past the end: last column"
        );
        assert!(columns(&inputs, 10_000_000, 0).is_empty());
        assert_eq!(columns(&inputs[..1], 0, 10), [(0, InputKind::Move)]);
    }
}
