//! Input scripts for `viewer session --send-input FILE`: drive clicks and typing from tests
//! and automation, one command per line. The script starts once the customer has allowed
//! control (the session asks for it first).
//!
//! ```text
//! # comments and blank lines are ignored
//! wait-frames 1        wait until this many pictures have been decoded in total
//! sleep 200            milliseconds
//! move 0.5 0.25        pointer to a normalised position on the remote screen
//! click left           also: down BUTTON, up BUTTON (left, middle, right, back, forward)
//! wheel 0 3            lines right and down
//! key Enter            press and release a physical key (W3C KeyboardEvent.code name)
//! keydown ShiftLeft    also: keyup NAME
//! type hello world     physical key presses for letters, digits, space and basic punctuation
//! text héllo           text input (characters without a key on the remote layout)
//! request-control      ask for control again (after the customer took it back) and wait
//!                      for the answer; a refusal stops the script
//! end                  end the session normally
//! ```

use sightline_core::messages::{InputEvent, MouseButton};
use std::time::Duration;

/// One step of a script.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Wait until at least this many frames have been decoded.
    WaitFrames(u64),
    /// Pause.
    Sleep(Duration),
    /// Send input events.
    Send(Vec<InputEvent>),
    /// Ask the customer for control unless it is granted, and wait for the answer.
    RequestControl,
    /// End the session.
    End,
}

/// A script line that cannot be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("input script line {line}: {message}")]
pub struct ScriptError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn button(name: &str) -> Option<MouseButton> {
    Some(match name {
        "left" => MouseButton::Left,
        "middle" => MouseButton::Middle,
        "right" => MouseButton::Right,
        "back" => MouseButton::Back,
        "forward" => MouseButton::Forward,
        _ => return None,
    })
}

/// Physical key (and whether Shift is needed) for a character on a US layout.
fn key_for(c: char) -> Option<(String, bool)> {
    let plain = |k: &str| Some((k.to_string(), false));
    let shifted = |k: &str| Some((k.to_string(), true));
    match c {
        'a'..='z' => Some((format!("Key{}", c.to_ascii_uppercase()), false)),
        'A'..='Z' => Some((format!("Key{c}"), true)),
        '0'..='9' => Some((format!("Digit{c}"), false)),
        ' ' => plain("Space"),
        '\n' => plain("Enter"),
        '\t' => plain("Tab"),
        '-' => plain("Minus"),
        '_' => shifted("Minus"),
        '=' => plain("Equal"),
        '+' => shifted("Equal"),
        '.' => plain("Period"),
        ',' => plain("Comma"),
        '/' => plain("Slash"),
        ';' => plain("Semicolon"),
        ':' => shifted("Semicolon"),
        '\'' => plain("Quote"),
        '!' => shifted("Digit1"),
        '?' => shifted("Slash"),
        _ => None,
    }
}

fn press(key: &str) -> [InputEvent; 2] {
    [
        InputEvent::Key {
            key: key.to_string(),
            pressed: true,
        },
        InputEvent::Key {
            key: key.to_string(),
            pressed: false,
        },
    ]
}

fn parse_f32(s: Option<&str>, what: &str) -> Result<f32, String> {
    let v: f32 = s
        .ok_or_else(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| format!("{what} is not a number"))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{what} is not finite"))
    }
}

/// Parses a whole script.
pub fn parse(text: &str) -> Result<Vec<Step>, ScriptError> {
    let mut steps = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let step = parse_line(line).map_err(|message| ScriptError {
            line: i + 1,
            message,
        })?;
        steps.push(step);
    }
    Ok(steps)
}

fn parse_line(line: &str) -> Result<Step, String> {
    let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
    let mut args = rest.split_whitespace();
    let one_button = |args: &mut std::str::SplitWhitespace| {
        let name = args.next().ok_or("missing button")?;
        button(name).ok_or_else(|| format!("unknown button {name:?}"))
    };
    Ok(match cmd {
        "wait-frames" => Step::WaitFrames(
            args.next()
                .and_then(|n| n.parse().ok())
                .ok_or("wait-frames needs a count")?,
        ),
        "sleep" => Step::Sleep(Duration::from_millis(
            args.next()
                .and_then(|n| n.parse().ok())
                .ok_or("sleep needs milliseconds")?,
        )),
        "move" => {
            let x = parse_f32(args.next(), "x")?;
            let y = parse_f32(args.next(), "y")?;
            Step::Send(vec![InputEvent::PointerMove { x, y }])
        }
        "click" => {
            let b = one_button(&mut args)?;
            Step::Send(vec![
                InputEvent::Button {
                    button: b,
                    pressed: true,
                },
                InputEvent::Button {
                    button: b,
                    pressed: false,
                },
            ])
        }
        "down" => Step::Send(vec![InputEvent::Button {
            button: one_button(&mut args)?,
            pressed: true,
        }]),
        "up" => Step::Send(vec![InputEvent::Button {
            button: one_button(&mut args)?,
            pressed: false,
        }]),
        "wheel" => {
            let dx = parse_f32(args.next(), "dx")?;
            let dy = parse_f32(args.next(), "dy")?;
            Step::Send(vec![InputEvent::Wheel { dx, dy }])
        }
        "key" => Step::Send(press(args.next().ok_or("key needs a name")?).to_vec()),
        "keydown" => Step::Send(vec![InputEvent::Key {
            key: args.next().ok_or("keydown needs a name")?.to_string(),
            pressed: true,
        }]),
        "keyup" => Step::Send(vec![InputEvent::Key {
            key: args.next().ok_or("keyup needs a name")?.to_string(),
            pressed: false,
        }]),
        "type" => {
            let mut events = Vec::new();
            for c in rest.chars() {
                let (key, shift) =
                    key_for(c).ok_or_else(|| format!("no key for {c:?}; use `text`"))?;
                if shift {
                    events.push(InputEvent::Key {
                        key: "ShiftLeft".into(),
                        pressed: true,
                    });
                }
                events.extend(press(&key));
                if shift {
                    events.push(InputEvent::Key {
                        key: "ShiftLeft".into(),
                        pressed: false,
                    });
                }
            }
            Step::Send(events)
        }
        "text" => Step::Send(vec![InputEvent::Text {
            text: rest.to_string(),
        }]),
        "request-control" => Step::RequestControl,
        "end" => Step::End,
        other => return Err(format!("unknown command {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        let s = parse("# hi\n\nwait-frames 2\nsleep 5\nmove 0.5 1\nclick right\ntype Hi\ntext é\nkey Enter\nend\n").unwrap();
        assert_eq!(s[0], Step::WaitFrames(2));
        assert_eq!(s[1], Step::Sleep(Duration::from_millis(5)));
        assert_eq!(
            s[2],
            Step::Send(vec![InputEvent::PointerMove { x: 0.5, y: 1.0 }])
        );
        let Step::Send(typed) = &s[4] else {
            panic!("type is a send")
        };
        assert_eq!(typed.len(), 6); // shift down, H down/up, shift up, I down/up
        assert_eq!(s[7], Step::End);
    }

    #[test]
    fn parses_request_control() {
        let s = parse("click left\nrequest-control\n  request-control\nend\n").unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s[1], Step::RequestControl);
        assert_eq!(s[2], Step::RequestControl);
        assert_eq!(s[3], Step::End);
        let err = parse("request control").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("unknown command"), "{}", err.message);
    }

    #[test]
    fn reports_bad_lines_with_numbers() {
        assert_eq!(parse("move 1\n").unwrap_err().line, 1);
        assert!(parse("\nfly away")
            .unwrap_err()
            .message
            .contains("unknown command"));
        assert!(parse("move NaN 1").is_err());
        assert!(parse("type ü").is_err());
        assert!(parse("click sideways").is_err());
    }
}
