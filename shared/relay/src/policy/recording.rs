//! `[recording]` in the policy file: whether sessions are recorded (`off`, `optional`,
//! `required`), for which auditors (their age X25519 recipients), and whether the operator's
//! input is recorded too. The rule travels in each operator certificate
//! ([`sightline_core::cert::RecordingPolicy`]); per-operator settings can only make it stricter
//! ([`effective_mode`]).
//!
//! Every recipient is parsed with the `age` crate when the policy is read, so a typo cannot
//! reach a certificate and leave recordings that nobody can open, and a mode other than `off`
//! without recipients is refused: there would be no one to record for.

use serde::{Deserialize, Deserializer};
use sightline_core::cert::{RecordingMode, RecordingPolicy};

/// Most recipients a policy may name (each travels in every certificate).
pub const MAX_RECIPIENTS: usize = 16;

/// `[recording]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingSection {
    /// `off`, `optional` or `required`.
    #[serde(deserialize_with = "mode_from_name")]
    pub mode: RecordingMode,
    /// The auditors' age X25519 recipients (`age1…`).
    pub recipients: Vec<String>,
    /// Whether the operator's keyboard and mouse input is recorded with the screen.
    pub include_input: bool,
}

impl Default for RecordingSection {
    fn default() -> Self {
        Self {
            mode: RecordingMode::Off,
            recipients: Vec::new(),
            include_input: true,
        }
    }
}

/// `off`, `optional` or `required` as a mode.
pub fn parse_mode(name: &str) -> Option<RecordingMode> {
    [
        RecordingMode::Off,
        RecordingMode::Optional,
        RecordingMode::Required,
    ]
    .into_iter()
    .find(|m| m.name() == name)
}

fn mode_from_name<'de, D: Deserializer<'de>>(d: D) -> Result<RecordingMode, D::Error> {
    let name = String::deserialize(d)?;
    parse_mode(&name).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "unknown recording mode {name:?}; use \"off\", \"optional\" or \"required\""
        ))
    })
}

/// Why `text` is not a standard age X25519 recipient, if it is not.
pub fn recipient_problem(text: &str) -> Option<String> {
    text.parse::<age::x25519::Recipient>()
        .err()
        .map(|e| format!("{text:?} is not an age X25519 recipient (age1…): {e}"))
}

impl RecordingSection {
    /// The first setting that makes no sense and why, if any.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if self.recipients.len() > MAX_RECIPIENTS {
            return Some((
                "recording.recipients",
                format!("at most {MAX_RECIPIENTS} recipients"),
            ));
        }
        if let Some(why) = self.recipients.iter().find_map(|r| recipient_problem(r)) {
            return Some(("recording.recipients", why));
        }
        if self.mode != RecordingMode::Off && self.recipients.is_empty() {
            return Some((
                "recording.mode",
                format!(
                    "{:?} needs at least one recipient in recording.recipients: recordings are \
                     encrypted to the auditors' age keys, and there are none",
                    self.mode.name()
                ),
            ));
        }
        None
    }

    /// Whether recordings can be made at all: there is someone to encrypt them to.
    pub fn has_recipients(&self) -> bool {
        !self.recipients.is_empty()
    }

    /// The rule a certificate carries for an operator whose effective mode is `mode`; no
    /// recipients when nothing is recorded.
    pub fn for_certificate(&self, mode: RecordingMode) -> RecordingPolicy {
        RecordingPolicy {
            mode,
            recipients: if mode == RecordingMode::Off {
                Vec::new()
            } else {
                self.recipients.clone()
            },
            include_input: self.include_input,
        }
    }
}

/// The mode an operator gets: the stricter of the policy's and the account's own setting
/// (`None`: follows the policy). An account's setting can never loosen the policy.
pub fn effective_mode(policy: RecordingMode, own: Option<RecordingMode>) -> RecordingMode {
    own.map_or(policy, |own| own.max(policy))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn recipient() -> String {
        age::x25519::Identity::generate().to_public().to_string()
    }

    #[test]
    fn modes_by_name_and_the_stricter_one_wins() {
        assert_eq!(parse_mode("required"), Some(RecordingMode::Required));
        assert_eq!(parse_mode("Required"), None);
        use RecordingMode::*;
        assert_eq!(effective_mode(Off, Some(Required)), Required);
        assert_eq!(effective_mode(Required, Some(Off)), Required);
        assert_eq!(effective_mode(Required, Some(Optional)), Required);
        assert_eq!(effective_mode(Optional, None), Optional);
    }

    #[test]
    fn recipients_are_checked_and_a_mode_needs_them() {
        let good = RecordingSection {
            mode: RecordingMode::Required,
            recipients: vec![recipient()],
            include_input: false,
        };
        assert_eq!(good.problem(), None);
        let none = RecordingSection {
            recipients: vec![],
            ..good.clone()
        };
        assert_eq!(none.problem().map(|p| p.0), Some("recording.mode"));
        // Off with recipients is fine: per-operator settings may turn recording on.
        let off = RecordingSection {
            mode: RecordingMode::Off,
            ..good.clone()
        };
        assert_eq!(off.problem(), None);
        let mut typo = good.clone();
        typo.recipients[0].pop();
        let (key, why) = typo.problem().unwrap();
        assert_eq!(key, "recording.recipients");
        assert!(why.contains("not an age X25519 recipient"), "{why}");
        let secret = RecordingSection {
            recipients: vec!["AGE-SECRET-KEY-1QQQQ".into()],
            ..good.clone()
        };
        assert!(secret.problem().is_some());
        let many = RecordingSection {
            recipients: vec![recipient(); MAX_RECIPIENTS + 1],
            ..good
        };
        assert!(many.problem().unwrap().1.contains("at most"));
    }

    #[test]
    fn a_certificate_carries_recipients_only_when_it_records() {
        let s = RecordingSection {
            mode: RecordingMode::Optional,
            recipients: vec![recipient()],
            include_input: true,
        };
        let off = s.for_certificate(RecordingMode::Off);
        assert!(off.recipients.is_empty());
        let on = s.for_certificate(RecordingMode::Required);
        assert_eq!(on.recipients, s.recipients);
        assert!(on.include_input);
    }
}
