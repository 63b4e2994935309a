//! What the operator may do, enforced here on the customer's machine, per message and deny by
//! default. The operator's certificate, signed by the help desk's relay and verified in the
//! handshake, is the only source: a modified viewer can send anything, and this module decides
//! what of it reaches the screen.
//!
//! - Viewing needs `view`: without it the agent shares nothing and ends the session.
//! - Each input event needs `control` (and, with the consent work, the customer's yes); any
//!   other input is dropped and logged.
//! - Clipboard and file transfer have no messages yet, so nothing can use them.
//! - The session ends when the certificate's session limit is reached.

use sightline_core::cert::{CertBody, Permissions};
use sightline_core::messages::InputEvent;
use std::time::Duration;

/// The rights in force for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rights {
    /// Permissions from the certificate.
    pub permissions: Permissions,
    /// Longest session, if limited.
    pub max_session: Option<Duration>,
}

impl Rights {
    /// The rights a verified certificate grants.
    pub fn from_certificate(cert: &CertBody) -> Self {
        Self {
            permissions: cert.permissions,
            max_session: (cert.max_session_secs > 0)
                .then(|| Duration::from_secs(cert.max_session_secs)),
        }
    }

    /// Whether the operator may see the screen at all.
    pub fn may_view(&self) -> bool {
        self.permissions.allows(Permissions::VIEW)
    }

    /// Whether the operator may send keyboard and mouse input.
    pub fn may_control(&self) -> bool {
        self.permissions.allows(Permissions::CONTROL)
    }

    /// One line for the customer: what the operator may do, and for how long. Only rights that
    /// do something are named: `clipboard` and `file-transfer` are reserved permissions with no
    /// feature behind them, so announcing them would tell the customer something untrue.
    pub fn describe(&self) -> String {
        let mut what: Vec<&str> = Vec::new();
        if self.may_view() {
            what.push("see your screen");
        }
        if self.may_control() {
            what.push("use your keyboard and mouse");
        }
        let mut text = if what.is_empty() {
            "nothing (the session will end)".to_string()
        } else {
            what.join(", ")
        };
        if self.may_view() && !self.may_control() {
            text.push_str(" (view only: no keyboard or mouse)");
        }
        if let Some(limit) = self.max_session {
            text.push_str(&format!(
                "; for at most {} min",
                limit.as_secs().div_ceil(60)
            ));
        }
        text
    }
}

/// The per-message check between the session and the input injector.
#[derive(Debug)]
pub struct InputGate {
    may_control: bool,
    dropped: u64,
}

impl InputGate {
    /// A gate for an operator with `rights`.
    pub fn new(rights: &Rights) -> Self {
        Self {
            may_control: rights.may_control(),
            dropped: 0,
        }
    }

    /// Passes `event` on if the operator may control; otherwise drops and logs it (the first
    /// and then every power of two, so a flood cannot flood the log).
    pub fn admit(&mut self, event: InputEvent) -> Option<InputEvent> {
        if self.may_control {
            return Some(event);
        }
        self.dropped += 1;
        if self.dropped.is_power_of_two() {
            tracing::warn!(
                dropped = self.dropped,
                "input from an operator without the control permission dropped"
            );
        }
        None
    }

    /// Input events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_core::messages::MouseButton;

    fn rights(p: Permissions, secs: u64) -> Rights {
        Rights {
            permissions: p,
            max_session: (secs > 0).then(|| Duration::from_secs(secs)),
        }
    }

    fn crafted() -> Vec<InputEvent> {
        vec![
            InputEvent::PointerMove { x: 0.5, y: 0.5 },
            InputEvent::Button {
                button: MouseButton::Left,
                pressed: true,
            },
            InputEvent::Key {
                key: "KeyA".into(),
                pressed: true,
            },
            InputEvent::Text {
                text: "rm -rf ~\n".into(),
            },
        ]
    }

    #[test]
    fn view_only_input_never_reaches_the_injector() {
        let mut injected = Vec::new();
        let mut gate = InputGate::new(&rights(Permissions::VIEW, 0));
        for ev in crafted().into_iter().cycle().take(1000) {
            if let Some(ev) = gate.admit(ev) {
                injected.push(ev);
            }
        }
        assert!(injected.is_empty());
        assert_eq!(gate.dropped(), 1000);
        // Unknown permission bits grant nothing either.
        let mut gate = InputGate::new(&rights(Permissions(1 << 20), 0));
        assert!(crafted().into_iter().all(|ev| gate.admit(ev).is_none()));
        let mut gate = InputGate::new(&rights(Permissions::NONE, 0));
        assert!(crafted().into_iter().all(|ev| gate.admit(ev).is_none()));
    }

    #[test]
    fn control_permission_lets_input_through_unchanged() {
        let mut gate = InputGate::new(&rights(Permissions::VIEW.union(Permissions::CONTROL), 0));
        let passed: Vec<_> = crafted()
            .into_iter()
            .filter_map(|e| gate.admit(e))
            .collect();
        assert_eq!(passed, crafted());
        assert_eq!(gate.dropped(), 0);
    }

    #[test]
    fn the_customer_is_told_what_the_operator_may_do() {
        let full = rights(Permissions::VIEW.union(Permissions::CONTROL), 1800);
        assert_eq!(
            full.describe(),
            "see your screen, use your keyboard and mouse; for at most 30 min"
        );
        let view = rights(Permissions::VIEW, 0);
        assert_eq!(
            view.describe(),
            "see your screen (view only: no keyboard or mouse)"
        );
        assert!(!rights(Permissions::CONTROL, 0).may_view());
        // Reserved permissions with no feature behind them are never announced.
        let reserved = Permissions::CLIPBOARD.union(Permissions::FILE_TRANSFER);
        let everything = Permissions::VIEW
            .union(Permissions::CONTROL)
            .union(reserved);
        assert_eq!(
            rights(everything, 0).describe(),
            "see your screen, use your keyboard and mouse"
        );
        assert_eq!(
            rights(Permissions::VIEW.union(reserved), 0).describe(),
            "see your screen (view only: no keyboard or mouse)"
        );
        assert_eq!(
            rights(reserved, 0).describe(),
            "nothing (the session will end)"
        );
        assert_eq!(
            rights(Permissions::NONE, 0).describe(),
            "nothing (the session will end)"
        );
    }
}
