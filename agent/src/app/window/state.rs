//! What the agent's window shows, as a state machine fed by the session's events (the JSON
//! lines the agent behind it prints, each with the terminal's text) and by the customer's
//! clicks and keys, which become the lines a terminal customer would type. No drawing here:
//! [`super::ui`] draws it, and the tests drive it directly.

use serde_json::Value;
use std::time::{Duration, Instant};

/// Most lines of the session's story kept for the window.
const MAX_LOG: usize = 40;

/// Where the customer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Typing the code.
    EnterCode,
    /// The agent behind the window is reaching the relay and the operator.
    Connecting,
    /// In a session with an operator.
    Connected,
    /// The session (or the attempt) is over.
    Ended,
}

/// A consent question waiting for the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// `viewing` or `control`.
    pub what: String,
    /// The question as the terminal words it.
    pub text: String,
    /// When the agent stops waiting and takes it as a no.
    pub deadline: Instant,
}

/// Everything the window shows.
#[derive(Debug, Clone)]
pub struct WindowState {
    /// The help desk, from the agent's preconfigured settings, if any.
    pub help_desk: Option<String>,
    pub phase: Phase,
    /// The code field.
    pub code: String,
    /// Why the last attempt failed, shown above the code field.
    pub error: Option<String>,
    /// The session's story so far, the terminal's lines.
    pub log: Vec<String>,
    pub question: Option<Question>,
    /// Whether the operator holds keyboard and mouse.
    pub in_control: bool,
    /// Whether the screen is being shared.
    pub sharing: bool,
}

impl WindowState {
    /// A fresh window, at the code field.
    pub fn new(help_desk: Option<String>) -> Self {
        Self {
            help_desk,
            phase: Phase::EnterCode,
            code: String::new(),
            error: None,
            log: Vec::new(),
            question: None,
            in_control: false,
            sharing: false,
        }
    }

    /// The window's heading.
    pub fn title(&self) -> String {
        match &self.help_desk {
            Some(name) => format!("Remote support for {name}"),
            None => "Sightline remote support".to_owned(),
        }
    }

    /// The code as typed, if it has the ten digits of a session code (spaces and dashes
    /// ignored); else why not.
    pub fn submit_code(&mut self) -> Result<String, String> {
        let digits: String = self.code.chars().filter(char::is_ascii_digit).collect();
        let other = self
            .code
            .chars()
            .any(|c| !c.is_ascii_digit() && !c.is_whitespace() && c != '-');
        if other || digits.len() != 10 {
            let why = "A session code is 10 digits, like 123 456 7890: ask your help desk for it.";
            self.error = Some(why.to_owned());
            return Err(why.to_owned());
        }
        self.error = None;
        self.log.clear();
        self.phase = Phase::Connecting;
        Ok(digits)
    }

    /// One event from the agent behind the window.
    pub fn on_event(&mut self, event: &Value, now: Instant) {
        let name = event["event"].as_str().unwrap_or_default();
        let text =
            sightline_agent::customer::for_window(event["text"].as_str().unwrap_or_default());
        let text = text.as_str();
        match name {
            "bundle" => {
                if let Some(h) = event["help_desk"].as_str() {
                    self.help_desk = Some(h.to_owned());
                }
                return;
            }
            "route" => {
                if let Some(r) = event["route"].as_str() {
                    self.push(&format!("Connected to the relay over {r}"));
                }
                return;
            }
            "connected" => self.phase = Phase::Connected,
            "consent_request" => {
                let secs = event["timeout_secs"].as_u64().unwrap_or(60);
                self.question = Some(Question {
                    what: event["what"].as_str().unwrap_or_default().to_owned(),
                    text: text.to_owned(),
                    deadline: now + Duration::from_secs(secs),
                });
                return;
            }
            "consent" => {
                self.question = None;
                let allowed = event["allowed"].as_bool() == Some(true);
                match event["what"].as_str() {
                    Some("control") => self.in_control = allowed,
                    Some("viewing") if !allowed => self.sharing = false,
                    _ => {}
                }
            }
            "control" if event["granted"].as_bool() == Some(false) => self.in_control = false,
            "sharing" => self.sharing = true,
            "closed" => self.end(),
            "error" => {
                let message = event["message"].as_str().unwrap_or(text);
                self.error = Some(message.to_owned());
            }
            _ => {}
        }
        if !text.is_empty() {
            self.push(text);
        }
    }

    /// The agent behind the window exited: back to the code field after a failed attempt
    /// (a mistyped code), or the end of the session.
    pub fn on_exit(&mut self) {
        self.question = None;
        self.in_control = false;
        self.sharing = false;
        self.phase = if self.phase == Phase::Connecting && self.error.is_some() {
            Phase::EnterCode
        } else {
            Phase::Ended
        };
    }

    /// The line that answers the open question (`y` or `n`), closing it.
    pub fn answer(&mut self, yes: bool) -> Option<&'static str> {
        self.question.take().map(|_| if yes { "y" } else { "n" })
    }

    /// The line that takes control back, when the operator has it.
    pub fn take_back(&self) -> Option<&'static str> {
        self.in_control.then_some("r")
    }

    /// The line that ends the session, while there is one to end.
    pub fn end_line(&self) -> Option<&'static str> {
        matches!(self.phase, Phase::Connecting | Phase::Connected).then_some("e")
    }

    /// Seconds left to answer the open question.
    pub fn seconds_left(&self, now: Instant) -> Option<u64> {
        self.question
            .as_ref()
            .map(|q| q.deadline.saturating_duration_since(now).as_secs())
    }

    fn end(&mut self) {
        self.phase = Phase::Ended;
        self.question = None;
    }

    fn push(&mut self, text: &str) {
        self.log.push(text.to_owned());
        if self.log.len() > MAX_LOG {
            self.log.remove(0);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_session_from_code_to_end() {
        let t0 = Instant::now();
        let mut s = WindowState::new(None);
        s.on_event(&json!({"event": "bundle", "help_desk": "Example IT"}), t0);
        assert_eq!(s.title(), "Remote support for Example IT");
        s.code = "123 456-7890".into();
        assert_eq!(s.submit_code().unwrap(), "1234567890");
        assert_eq!(s.phase, Phase::Connecting);
        s.on_event(
            &json!({"event": "connected", "text": "Connected to Alice"}),
            t0,
        );
        assert_eq!(s.phase, Phase::Connected);
        s.on_event(
            &json!({"event": "consent_request", "what": "viewing", "timeout_secs": 60,
                    "text": "Alice wants to see your screen."}),
            t0,
        );
        assert_eq!(s.seconds_left(t0 + Duration::from_secs(15)), Some(45));
        assert_eq!(s.answer(true), Some("y"));
        assert_eq!(s.answer(true), None, "one answer per question");
        s.on_event(
            &json!({"event": "consent", "what": "control", "allowed": true, "text": "x"}),
            t0,
        );
        assert_eq!(s.take_back(), Some("r"));
        s.on_event(
            &json!({"event": "control", "granted": false, "by": "customer"}),
            t0,
        );
        assert_eq!(s.take_back(), None);
        assert_eq!(s.end_line(), Some("e"));
        s.on_event(&json!({"event": "closed", "text": "Session ended."}), t0);
        s.on_exit();
        assert_eq!(s.phase, Phase::Ended);
        assert_eq!(s.end_line(), None);
        assert!(s.log.iter().any(|l| l == "Session ended."));
    }

    #[test]
    fn a_wrong_code_goes_back_to_the_field_with_the_reason() {
        let mut s = WindowState::new(None);
        s.code = "12345".into();
        assert!(s.submit_code().is_err());
        assert_eq!(s.phase, Phase::EnterCode);
        s.code = "123 456 789a".into();
        assert!(s.submit_code().is_err());
        s.code = "1234567890".into();
        s.submit_code().unwrap();
        s.on_event(
            &json!({"event": "error", "message": "no session with this code"}),
            Instant::now(),
        );
        s.on_exit();
        assert_eq!(s.phase, Phase::EnterCode);
        assert_eq!(s.error.as_deref(), Some("no session with this code"));
    }

    #[test]
    fn a_question_left_unanswered_closes_when_the_agent_says_so() {
        let t0 = Instant::now();
        let mut s = WindowState::new(None);
        s.on_event(
            &json!({"event": "consent_request", "what": "control", "timeout_secs": 5}),
            t0,
        );
        assert_eq!(s.seconds_left(t0 + Duration::from_secs(9)), Some(0));
        s.on_event(
            &json!({"event": "consent", "what": "control", "allowed": false, "timed_out": true}),
            t0,
        );
        assert!(s.question.is_none());
        assert!(!s.in_control);
    }
}
