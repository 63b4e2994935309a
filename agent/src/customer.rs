//! The customer's side of an attended session: what they type in the agent's terminal, how it
//! is read, and the summary printed at the end.
//!
//! Answers are deliberately strict: only `y` or `yes` allows anything; every other answer, an
//! empty line and the end of standard input (no terminal to ask on) mean no.

use serde_json::json;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

/// The customer's answer to a consent question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Allowed.
    Yes,
    /// Anything else.
    No,
}

/// Parses an answer: `y` or `yes` in any letter case is yes, everything else no.
pub fn parse_answer(line: &str) -> Answer {
    match line.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Answer::Yes,
        _ => Answer::No,
    }
}

/// What the customer can type while the screen is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Take keyboard and mouse back from the operator.
    RevokeControl,
    /// End the session.
    End,
    /// Show the keys again.
    Help,
}

/// Parses a line typed while sharing; `None` for an empty line.
pub fn parse_command(line: &str) -> Option<Command> {
    match line.trim().to_ascii_lowercase().as_str() {
        "" => None,
        "r" | "revoke" => Some(Command::RevokeControl),
        "e" | "end" | "q" | "quit" => Some(Command::End),
        _ => Some(Command::Help),
    }
}

/// How the terminal asks a consent question's answer (the window has buttons instead).
pub const ALLOW_PROMPT: &str = "Allow? Type y and Enter to allow, anything else to refuse";
/// The terminal's advice when the verification codes differ.
pub const MISMATCH_ADVICE: &str = "if it differs, press Ctrl-C: someone is in between";
/// The terminal's way out, said when connected.
pub const CTRL_C_ENDS: &str = "Press Ctrl-C to end the session.";

/// The keys, as the agent's window words them: its buttons, and the hotkeys that work anywhere.
pub fn keys_help_window(in_control: bool) -> String {
    let mut keys = String::new();
    if in_control {
        keys.push_str("Take back control (or press Ctrl+Alt+R anywhere); ");
    }
    keys.push_str("End session (or press Ctrl+Alt+Q anywhere)");
    keys
}

/// The terminal's text of an event in the window's words: what the terminal asks to type
/// becomes the window's buttons. Anything else is left as it is.
pub fn for_window(text: &str) -> String {
    let mut out = text
        .replace(&keys_help(true), &keys_help_window(true))
        .replace(&keys_help(false), &keys_help_window(false))
        .replace(
            MISMATCH_ADVICE,
            "if it differs, press End session: someone is in between",
        )
        .replace(CTRL_C_ENDS, "");
    if let Some(at) = out.find(ALLOW_PROMPT) {
        out.truncate(at);
        out.push_str("Allow?");
    }
    out.trim().to_owned()
}

/// The keys, as the terminal shows them.
pub fn keys_help(in_control: bool) -> String {
    let mut keys = String::new();
    if in_control {
        keys.push_str("type r + Enter (or press Ctrl+Alt+R anywhere) to take back control; ");
    }
    keys.push_str(
        "type e + Enter (or press Ctrl+Alt+Q anywhere, or Ctrl-C here) to end the session",
    );
    keys
}

/// Reads standard input line by line on its own thread. The channel closes at the end of input
/// (or a read error), which callers treat as "nobody can answer here".
pub fn stdin_lines() -> UnboundedReceiver<String> {
    let (tx, rx) = unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut line = String::new();
            loop {
                line.clear();
                match stdin.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if tx.send(line.trim_end().to_string()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        // Without the thread the channel closes at once: every question is answered no.
        tracing::warn!(error = %e, "cannot read the terminal");
    }
    rx
}

/// What the operator used during the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// The screen was shared.
    pub view: bool,
    /// Control was granted at least once.
    pub control: bool,
    /// The clipboard was shared (no clipboard feature exists yet, so always false).
    pub clipboard: bool,
}

impl Usage {
    /// Names of what was used.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.view, "view"),
            (self.control, "control"),
            (self.clipboard, "clipboard"),
        ]
        .iter()
        .filter(|(used, _)| *used)
        .map(|(_, n)| *n)
        .collect()
    }
}

/// The end-of-session summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Operator's display name.
    pub operator: String,
    /// Operator's organisation.
    pub organisation: String,
    /// Connection time, Unix seconds.
    pub started: u64,
    /// End time, Unix seconds.
    pub ended: u64,
    /// What was used.
    pub used: Usage,
    /// Why it ended.
    pub reason: String,
}

impl Summary {
    /// Seconds from connection to end.
    pub fn duration_secs(&self) -> u64 {
        self.ended.saturating_sub(self.started)
    }

    /// The summary for the terminal.
    pub fn text(&self) -> String {
        let org = if self.organisation.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.organisation)
        };
        let used = self.used.names();
        let used = if used.is_empty() {
            "nothing (the screen was never shared)".to_string()
        } else {
            used.join(", ")
        };
        let d = self.duration_secs();
        format!(
            "Session summary: {}{org}, from {} to {} ({}m {:02}s); used: {used}; {}.",
            self.operator,
            sightline_net::cli::utc(self.started),
            sightline_net::cli::utc(self.ended),
            d / 60,
            d % 60,
            self.reason
        )
    }

    /// The summary as a JSON event.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "event": "summary",
            "operator": self.operator,
            "organisation": self.organisation,
            "started": self.started,
            "ended": self.ended,
            "duration_secs": self.duration_secs(),
            "used": self.used.names(),
            "reason": self.reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_allows() {
        for yes in ["y", "Y", "yes", " YES ", "Yes\r"] {
            assert_eq!(parse_answer(yes), Answer::Yes, "{yes:?}");
        }
        for no in ["", "n", "no", "yess", "y y", "ok", "sure", "\u{1b}[A"] {
            assert_eq!(parse_answer(no), Answer::No, "{no:?}");
        }
    }

    #[test]
    fn commands() {
        assert_eq!(parse_command("r"), Some(Command::RevokeControl));
        assert_eq!(parse_command(" Revoke "), Some(Command::RevokeControl));
        assert_eq!(parse_command("e"), Some(Command::End));
        assert_eq!(parse_command("quit"), Some(Command::End));
        assert_eq!(parse_command(""), None);
        assert_eq!(parse_command("what"), Some(Command::Help));
        assert!(keys_help(true).contains("Ctrl+Alt+R"));
        // The window's words: buttons, not typing; the hotkeys stay.
        let asked = format!("\nAlice wants to see your screen.\n{ALLOW_PROMPT} (60 s to answer): ");
        assert_eq!(
            for_window(&asked),
            "Alice wants to see your screen.\nAllow?"
        );
        let status = format!("Status: Alice is watching. Keys: {}.", keys_help(false));
        assert_eq!(
            for_window(&status),
            "Status: Alice is watching. Keys: End session (or press Ctrl+Alt+Q anywhere)."
        );
        let connected = format!("Code: 1234 ({MISMATCH_ADVICE})\n{CTRL_C_ENDS}");
        assert_eq!(
            for_window(&connected),
            "Code: 1234 (if it differs, press End session: someone is in between)"
        );
        assert!(!for_window(&keys_help(true)).contains("Enter"));
        assert_eq!(for_window("Session ended."), "Session ended.");
        assert!(!keys_help(false).contains("Ctrl+Alt+R"));
        assert!(keys_help(false).contains("Ctrl+Alt+Q"));
    }

    #[test]
    fn summary_says_who_when_how_long_and_what() {
        let s = Summary {
            operator: "Dana Operator".into(),
            organisation: "Example Help Desk".into(),
            started: 1_700_000_000,
            ended: 1_700_000_125,
            used: Usage {
                view: true,
                control: true,
                clipboard: false,
            },
            reason: "ended by customer".into(),
        };
        assert_eq!(
            s.text(),
            "Session summary: Dana Operator (Example Help Desk), from 2023-11-14 22:13:20 UTC \
             to 2023-11-14 22:15:25 UTC (2m 05s); used: view, control; ended by customer."
        );
        let j = s.json();
        assert_eq!(j["duration_secs"], 125);
        assert_eq!(j["used"], json!(["view", "control"]));
        let never = Summary {
            used: Usage::default(),
            ..s
        };
        assert!(never.text().contains("used: nothing"));
    }
}
